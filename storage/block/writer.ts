// writeBlock: cuts a head into an immutable block on disk. Everything is written to <ULID>.tmp,
// fsynced, and renamed into place, so a block directory either is complete or does not exist.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { failpoint } from "../failpoint.ts";
import type { Head, MemSeries } from "../head/head.ts";
import { encodeBlockSymbols } from "./block-symbols.ts";
import { BLOCK_VERSION, newUlid, writeMeta, type BlockMeta } from "./meta.ts";
import {
  COL_SERIES,
  COL_STACK,
  COL_TIME,
  COL_VALUE,
  DEFAULT_ROW_GROUP_SIZE,
  INDEX_FILE,
  PAGE_SIZE,
  PROFILES_ENCODING,
  PROFILES_FILE,
  PROFILES_SCHEMA,
  SYMBOLS_FILE,
  parquetCompressors,
} from "./schema.ts";
import { buildSeriesIndex, type SeriesToIndex } from "./series-index.ts";

export interface WriteBlockOptions {
  ulid?: string;
  /** Compaction level: 1 for a block cut from a head. */
  level?: number;
  /** ULIDs of the blocks this one replaces; defaults to its own ULID. */
  sources?: string[];
  /** The last WAL segment whose records the block holds. */
  walThroughSegment?: number;
  rowGroupSize?: number;
}

/** Writes `head` as a block under `blocksDir` and returns its meta. The head is not modified. */
export async function writeBlock(head: Head, blocksDir: string, opts: WriteBlockOptions = {}): Promise<BlockMeta> {
  const series = head.series.filter((s) => s.timeMs.length > 0);
  if (series.length === 0) throw new Error("writeBlock: the head holds no profiles");
  const ulid = opts.ulid ?? newUlid();
  const dir = join(blocksDir, ulid);
  if (existsSync(dir)) throw new Error(`writeBlock: block ${ulid} already exists in ${blocksDir}`);
  const tmp = dir + ".tmp";
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    // Symbols first: the rows need the block's stack ids.
    const used = new Uint8Array(head.symbols.stackCount);
    for (const s of series) for (const ids of s.stacks) for (let i = 0; i < ids.length; i++) used[ids[i]] = 1;
    const { bytes: symbolBytes, stackMap } = encodeBlockSymbols(head.symbols, used);
    writeDurable(join(tmp, SYMBOLS_FILE), symbolBytes);

    const { indexed, numSamples, minTime, maxTime } = await writeProfiles(join(tmp, PROFILES_FILE), series, stackMap, opts.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE);
    writeDurable(join(tmp, INDEX_FILE), buildSeriesIndex(indexed));

    const files = [PROFILES_FILE, INDEX_FILE, SYMBOLS_FILE].map((relPath) => ({ relPath, sizeBytes: statSync(join(tmp, relPath)).size }));
    const meta: BlockMeta = {
      ulid,
      minTime,
      maxTime,
      stats: { numSeries: series.length, numProfiles: indexed.reduce((n, s) => n + s.timeMs.length, 0), numSamples },
      compaction: { level: opts.level ?? 1, sources: opts.sources ?? [ulid] },
      version: BLOCK_VERSION,
      files,
      ...(opts.walThroughSegment !== undefined ? { wal: { throughSegment: opts.walThroughSegment } } : {}),
    };
    writeMeta(tmp, meta);
    fsyncPath(tmp);
    failpoint("block-before-rename");
    renameSync(tmp, dir);
    fsyncPath(blocksDir);
    return meta;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Row indexes of a series in time order (stable: equal times keep their append order). */
function timeOrder(s: MemSeries): number[] {
  const order = s.timeMs.map((_, i) => i);
  if (!s.sorted) order.sort((a, b) => s.timeMs[a] - s.timeMs[b] || a - b);
  return order;
}

/**
 * Streams every sample into profiles.parquet, one row group at a time, and returns what the
 * series index needs. Samples of a profile are ordered by block stack id: consecutive profiles of
 * a service then repeat long runs of ids, which zstd compresses to almost nothing.
 */
async function writeProfiles(path: string, series: MemSeries[], stackMap: Uint32Array, rowGroupSize: number) {
  const sink = new FileSink(path);
  try {
    return await streamProfiles(sink, series, stackMap, rowGroupSize);
  } catch (e) {
    sink.abort();
    throw e;
  }
}

async function streamProfiles(sink: FileSink, series: MemSeries[], stackMap: Uint32Array, rowGroupSize: number) {
  const pw = new ParquetWriter({ writer: sink, schema: PROFILES_SCHEMA, codec: "ZSTD", compressors: parquetCompressors });
  const colSeries = new Int32Array(rowGroupSize);
  const colTime = new BigInt64Array(rowGroupSize);
  const colStack = new Int32Array(rowGroupSize);
  const colValue = new Float64Array(rowGroupSize);
  let fill = 0;
  const flush = async () => {
    if (fill === 0) return;
    await pw.write({
      rowGroupSize: fill,
      pageSize: PAGE_SIZE,
      columnData: [
        { name: COL_SERIES, data: colSeries.subarray(0, fill), encoding: PROFILES_ENCODING[COL_SERIES] },
        { name: COL_TIME, data: colTime.subarray(0, fill), encoding: PROFILES_ENCODING[COL_TIME] },
        { name: COL_STACK, data: colStack.subarray(0, fill), encoding: PROFILES_ENCODING[COL_STACK] },
        { name: COL_VALUE, data: colValue.subarray(0, fill), encoding: PROFILES_ENCODING[COL_VALUE] },
      ],
    });
    fill = 0;
    // A big head takes seconds to write: let the process serve requests between row groups.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };

  const indexed: SeriesToIndex[] = [];
  let row = 0;
  let minTime = Infinity;
  let maxTime = -Infinity;
  const order: number[] = [];
  for (let ref = 0; ref < series.length; ref++) {
    const s = series[ref];
    const entry: SeriesToIndex = { labels: s.labels, profileType: s.profileType, firstRow: row, timeMs: [], durationNs: [], sampleCount: [] };
    for (const r of timeOrder(s)) {
      const ids = s.stacks[r];
      const vs = s.values[r];
      const t = s.timeMs[r];
      const n = ids.length;
      order.length = n;
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => stackMap[ids[a]] - stackMap[ids[b]]);
      const bt = BigInt(t);
      for (let i = 0; i < n; ) {
        const take = Math.min(n - i, rowGroupSize - fill);
        colSeries.fill(ref, fill, fill + take);
        colTime.fill(bt, fill, fill + take);
        for (let j = 0; j < take; j++) {
          const k = order[i + j];
          colStack[fill + j] = stackMap[ids[k]];
          colValue[fill + j] = vs[k];
        }
        fill += take;
        i += take;
        if (fill === rowGroupSize) await flush();
      }
      entry.timeMs.push(t);
      entry.durationNs.push(s.durationNs[r]);
      entry.sampleCount.push(n);
      row += n;
      if (t < minTime) minTime = t;
      if (t > maxTime) maxTime = t;
    }
    indexed.push(entry);
  }
  await flush();
  await pw.finish();
  return { indexed, numSamples: row, minTime, maxTime };
}

/**
 * hyparquet-writer's Writer over a file descriptor: the buffer is flushed to disk past 1 MB, and
 * finish() fsyncs, which the library's own fileWriter does not.
 */
class FileSink extends ByteWriter {
  private fd: number;
  constructor(path: string) {
    super(1 << 20);
    this.fd = openSync(path, "w");
  }

  private drain() {
    const b = new Uint8Array(this.buffer, 0, this.index);
    for (let o = 0; o < b.length; ) o += writeSync(this.fd, b, o, b.length - o);
    this.index = 0;
  }

  override ensure(size: number): void {
    if (this.index > 1 << 20) this.drain();
    super.ensure(size);
  }

  flush(): void {
    this.drain();
  }

  override finish(): void {
    try {
      this.drain();
      fsyncSync(this.fd);
    } finally {
      this.abort();
    }
  }

  /** Closes the file (once); the caller removes the half-written block. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function writeDurable(path: string, bytes: Uint8Array) {
  const fd = openSync(path, "w");
  try {
    for (let o = 0; o < bytes.length; ) o += writeSync(fd, bytes, o, bytes.length - o);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync a directory, so the names created or renamed in it are durable. */
function fsyncPath(path: string) {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
