// meta.json of a block: what it holds (time range, stats, files) and where it came from
// (compaction level, sources, WAL segment). Also ULIDs, which name blocks.

import { readFileSync, renameSync } from "node:fs";
import { basename, join } from "node:path";
import { writeDurable } from "../durable.ts";

export const META_FILE = "meta.json";
export const BLOCK_VERSION = 1;

export interface BlockFile {
  relPath: string;
  sizeBytes: number;
}

export interface BlockMeta {
  ulid: string;
  /** Time range of the block's profiles in ms, both ends inclusive. */
  minTime: number;
  maxTime: number;
  stats: { numSeries: number; numProfiles: number; numSamples: number };
  compaction: { level: number; sources: string[] };
  version: 1;
  /** Every file of the block except meta.json itself, with its size. */
  files: BlockFile[];
  /** The WAL segments this block makes redundant: all up to and including throughSegment. */
  wal?: { throughSegment: number };
}

/**
 * A block whose files are missing, truncated or unreadable. Carries the block directory and the
 * file so the caller (the ingester) can quarantine the block and log what was wrong.
 */
export class BlockCorruptError extends Error {
  constructor(
    readonly blockDir: string,
    readonly file: string,
    detail: string,
  ) {
    super(`block ${basename(blockDir)}: ${file}: ${detail}`);
    this.name = "BlockCorruptError";
  }
}

/** Writes meta.json durably: a temporary file, fsynced, then renamed over the old one. */
export function writeMeta(dir: string, meta: BlockMeta): void {
  const path = join(dir, META_FILE);
  const tmp = path + ".tmp";
  writeDurable(tmp, JSON.stringify(meta, null, 2) + "\n");
  renameSync(tmp, path);
}

/** Reads and validates meta.json; throws BlockCorruptError saying what is wrong. */
export function readMeta(dir: string): BlockMeta {
  let text: string;
  try {
    text = readFileSync(join(dir, META_FILE), "utf8");
  } catch (e) {
    throw new BlockCorruptError(dir, META_FILE, (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : String(e));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BlockCorruptError(dir, META_FILE, `not JSON: ${(e as Error).message}`);
  }
  const problem = validateMeta(raw);
  if (problem) throw new BlockCorruptError(dir, META_FILE, problem);
  return raw as BlockMeta;
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** The first thing wrong with a parsed meta.json, or null when it is a valid BlockMeta. */
function validateMeta(m: unknown): string | null {
  if (!isObj(m)) return "not an object";
  if (m.version !== BLOCK_VERSION) return `unsupported version ${JSON.stringify(m.version)} (want ${BLOCK_VERSION})`;
  if (typeof m.ulid !== "string" || !isUlid(m.ulid)) return `invalid ulid ${JSON.stringify(m.ulid)}`;
  if (!isInt(m.minTime) || !isInt(m.maxTime) || m.minTime > m.maxTime) return `invalid time range [${m.minTime}, ${m.maxTime}]`;
  const s = m.stats;
  if (!isObj(s) || !isInt(s.numSeries) || !isInt(s.numProfiles) || !isInt(s.numSamples) || s.numSeries < 0 || s.numProfiles < 0 || s.numSamples < 0)
    return "invalid stats";
  const c = m.compaction;
  if (!isObj(c) || !isInt(c.level) || c.level < 1 || !Array.isArray(c.sources) || !c.sources.every((x) => typeof x === "string"))
    return "invalid compaction";
  if (!Array.isArray(m.files)) return "invalid files";
  for (const f of m.files) {
    if (!isObj(f) || typeof f.relPath !== "string" || f.relPath === "" || f.relPath.startsWith("/") || f.relPath.split("/").includes(".."))
      return `invalid file entry ${JSON.stringify(f)}`;
    if (!isInt(f.sizeBytes) || f.sizeBytes < 0) return `invalid size of ${f.relPath}`;
  }
  if (m.wal !== undefined && (!isObj(m.wal) || !isInt(m.wal.throughSegment))) return "invalid wal";
  return null;
}

// Crockford's base32: no I, L, O, U.
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

export function isUlid(s: string): boolean {
  return ULID_RE.test(s);
}

/** A ULID: 48-bit ms timestamp then 80 random bits, 26 Crockford base32 characters. */
export function newUlid(timeMs: number = Date.now()): string {
  if (!Number.isSafeInteger(timeMs) || timeMs < 0 || timeMs >= 2 ** 48) throw new RangeError(`ULID time out of range: ${timeMs}`);
  let out = "";
  let t = timeMs;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  // 80 bits = 16 characters of 5 bits; take them from 10 random bytes.
  const r = crypto.getRandomValues(new Uint8Array(10));
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < r.length; i++) {
    acc = (acc << 8) | r[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** The timestamp (ms) encoded in a ULID. */
export function ulidTime(ulid: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + CROCKFORD.indexOf(ulid[i]);
  return t;
}
