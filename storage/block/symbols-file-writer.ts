// Writing symbols.bin: a block's symbols, only the stacks its rows reference (with their
// ancestors) and the locations, functions, mappings and strings those need, renumbered densely.
// The file is "HSYM", a version byte, then one zstd frame. Since version 2 the frame holds fixed-
// width arrays (symbolsLayout below), so a reader takes typed-array views of the decompressed
// bytes instead of decoding every entry: opening a block's symbols costs a decompression and a
// bounds check, and holds the file and nothing else. BlockSymbols (block-symbols.ts) reads it.

import type { SymbolTable } from "../head/symbol-table.ts";
import type { Mapping } from "../model/profile.ts";
import { ByteSink, type ByteSource } from "./varint.ts";

export const SYMBOLS_MAGIC = [0x48, 0x53, 0x59, 0x4d]; // "HSYM"
export const SYMBOLS_VERSION = 2;
const ZSTD_LEVEL = 6; // written once per block, read whole: worth a little more effort than pages

/** The counts that fix the layout, stored as the body's first eight 32-bit words. */
export interface SymbolsCounts {
  strings: number;
  /** UTF-8 bytes of all strings. */
  stringBytes: number;
  mappings: number;
  /** Bytes of the mappings section (varints: mappings are few and hold 64-bit fields). */
  mappingBytes: number;
  functions: number;
  locations: number;
  lines: number;
  stacks: number;
}

export const SYMBOLS_HEADER_BYTES = 32;

/**
 * Byte offsets of the sections in the decompressed body, from its counts; `size` is the body's
 * length. Every section starts on 8 bytes, so it can be viewed as a typed array in place; the
 * 8-byte arrays come first. Numbers are little-endian (typed arrays on x64 and arm64).
 *   address   u64[locations]    fnStart  f64[functions]
 *   strEnd    u32[strings]      string i is strings[strEnd[i-1] (0 for i = 0) .. strEnd[i])
 *   fnName, fnSystem, fnFile    u32[functions] each, string ids
 *   locMapping i32[locations]   -1 for none
 *   lineStart u32[locations+1]  lines of location i: lineFn/lineNo[lineStart[i] .. lineStart[i+1])
 *   lineFn    u32[lines]        lineNo i32[lines]
 *   stackBack u32[stacks]       stack i's parent is i - stackBack[i] (0 for the empty stack 0)
 *   stackLoc  u32[stacks]
 *   folded    u8[locations]     mappings (varints)     strings (UTF-8)
 */
export function symbolsLayout(c: SymbolsCounts) {
  let at = SYMBOLS_HEADER_BYTES;
  const take = (bytes: number) => {
    const o = at;
    at += Math.ceil(bytes / 8) * 8;
    return o;
  };
  const l = {
    address: take(8 * c.locations),
    fnStart: take(8 * c.functions),
    strEnd: take(4 * c.strings),
    fnName: take(4 * c.functions),
    fnSystem: take(4 * c.functions),
    fnFile: take(4 * c.functions),
    locMapping: take(4 * c.locations),
    lineStart: take(4 * (c.locations + 1)),
    lineFn: take(4 * c.lines),
    lineNo: take(4 * c.lines),
    stackBack: take(4 * c.stacks),
    stackLoc: take(4 * c.stacks),
    folded: take(c.locations),
    mappings: take(c.mappingBytes),
    strings: take(c.stringBytes),
    size: 0,
  };
  l.size = at;
  return l;
}

/** The header's words, in order. */
export const SYMBOLS_COUNT_KEYS = ["strings", "stringBytes", "mappings", "mappingBytes", "functions", "locations", "lines", "stacks"] as const;

/** The counts in a version 2 body's header (at least SYMBOLS_HEADER_BYTES long, 4-byte aligned). */
export function readSymbolsCounts(body: Uint8Array): SymbolsCounts {
  const header = new Uint32Array(body.buffer, body.byteOffset, SYMBOLS_COUNT_KEYS.length);
  return Object.fromEntries(SYMBOLS_COUNT_KEYS.map((k, i) => [k, header[i]])) as unknown as SymbolsCounts;
}

/**
 * Encodes the part of `sym` that the stacks marked in `used` (indexed by stack id; null = every
 * stack) need. Returns the file bytes and `stackMap`: stack id here → block stack id. Ids keep
 * their order, so parents still precede children and id 0 stays the empty stack; with every stack
 * used the map is the identity (a merge writes its rows with its output's ids).
 */
export function encodeBlockSymbols(sym: SymbolTable, used: Uint8Array | null): { bytes: Uint8Array; stackMap: Uint32Array } {
  const n = sym.stackCount;
  const keep = used ? used.slice(0, n) : new Uint8Array(n).fill(1);
  keep[0] = 1;
  // Ancestors of kept stacks are kept; walking down the ids visits children before parents.
  for (let id = n - 1; id > 0; id--) if (keep[id]) keep[sym.stackParent[id]] = 1;

  const stackMap = new Uint32Array(n);
  const locMap = new Int32Array(sym.locationCount).fill(-1);
  let stacks = 0;
  for (let id = 0; id < n; id++) {
    if (!keep[id]) continue;
    stackMap[id] = stacks++;
    if (id !== 0) locMap[sym.stackLoc[id]] = 0;
  }
  // Locations, functions and mappings in their order here, renumbered densely.
  const fnMap = new Int32Array(sym.functionCount).fill(-1);
  const mapMap = new Int32Array(sym.mappings.length).fill(-1);
  const { lineStart, lineFn, lineNo, locMapping, locAddr, locFolded } = sym;
  let locs = 0;
  let lines = 0;
  for (let l = 0; l < locMap.length; l++) {
    if (locMap[l] < 0) continue;
    locMap[l] = locs++;
    lines += lineStart[l + 1] - lineStart[l];
    if (locMapping[l] >= 0) mapMap[locMapping[l]] = 0;
    for (let j = lineStart[l]; j < lineStart[l + 1]; j++) fnMap[lineFn[j]] = 0;
  }
  const fns = renumber(fnMap);
  const maps = renumber(mapMap);

  // Strings in order of first use, mappings' then functions'.
  const names = sym.names.strings;
  const strMap = new Int32Array(names.length).fill(-1);
  const strings: string[] = [];
  let stringBytes = 0;
  const use = (id: number) => {
    if (strMap[id] >= 0) return strMap[id];
    stringBytes += Buffer.byteLength(names[id], "utf8");
    return (strMap[id] = strings.push(names[id]) - 1);
  };
  const mapSink = new ByteSink(64 * maps.length + 16);
  for (const g of maps) {
    const m = sym.mappings[g];
    writeMapping(mapSink, m, use(sym.names.lookup(m.filename)), use(sym.names.lookup(m.buildId)));
  }
  const mappingBytes = mapSink.view();

  const counts: SymbolsCounts = { strings: 0, stringBytes: 0, mappings: maps.length, mappingBytes: mappingBytes.length, functions: fns.length, locations: locs, lines, stacks };
  // Function string ids are assigned before the layout is fixed: it depends on the strings' count.
  const fnIds = new Uint32Array(3 * fns.length);
  for (let i = 0; i < fns.length; i++) {
    const g = fns[i];
    fnIds[3 * i] = use(sym.fnName[g]);
    fnIds[3 * i + 1] = use(sym.fnSystem[g]);
    fnIds[3 * i + 2] = use(sym.fnFile[g]);
  }
  counts.strings = strings.length;
  counts.stringBytes = stringBytes;

  const L = symbolsLayout(counts);
  const body = new ArrayBuffer(L.size);
  const header = new Uint32Array(body, 0, SYMBOLS_COUNT_KEYS.length);
  SYMBOLS_COUNT_KEYS.forEach((k, i) => (header[i] = counts[k]));

  const u32 = (off: number, len: number) => new Uint32Array(body, off, len);
  const fnName = u32(L.fnName, fns.length);
  const fnSystem = u32(L.fnSystem, fns.length);
  const fnFile = u32(L.fnFile, fns.length);
  const fnStart = new Float64Array(body, L.fnStart, fns.length);
  for (let i = 0; i < fns.length; i++) {
    fnName[i] = fnIds[3 * i];
    fnSystem[i] = fnIds[3 * i + 1];
    fnFile[i] = fnIds[3 * i + 2];
    fnStart[i] = sym.fnStart[fns[i]];
  }

  const address = u32(L.address, 2 * locs);
  const outMapping = new Int32Array(body, L.locMapping, locs);
  const outLineStart = u32(L.lineStart, locs + 1);
  const outLineFn = u32(L.lineFn, lines);
  const outLineNo = new Int32Array(body, L.lineNo, lines);
  const folded = new Uint8Array(body, L.folded, locs);
  let k = 0;
  for (let l = 0; l < locMap.length; l++) {
    const i = locMap[l];
    if (i < 0) continue;
    address[2 * i] = locAddr[2 * l];
    address[2 * i + 1] = locAddr[2 * l + 1];
    outMapping[i] = locMapping[l] >= 0 ? mapMap[locMapping[l]] : -1;
    folded[i] = locFolded[l];
    for (let j = lineStart[l]; j < lineStart[l + 1]; j++, k++) {
      outLineFn[k] = fnMap[lineFn[j]];
      outLineNo[k] = lineNo[j];
    }
    outLineStart[i + 1] = k;
  }

  const back = u32(L.stackBack, stacks);
  const loc = u32(L.stackLoc, stacks);
  for (let id = 1; id < n; id++) {
    if (!keep[id]) continue;
    const s = stackMap[id];
    back[s] = s - stackMap[sym.stackParent[id]];
    loc[s] = locMap[sym.stackLoc[id]];
  }

  new Uint8Array(body, L.mappings, mappingBytes.length).set(mappingBytes);
  const strEnd = u32(L.strEnd, strings.length);
  const strOut = new Uint8Array(body, L.strings, stringBytes);
  let at = 0;
  for (let i = 0; i < strings.length; i++) {
    at += textEncoder.encodeInto(strings[i], strOut.subarray(at)).written;
    strEnd[i] = at;
  }
  return { bytes: packSymbols(new Uint8Array(body)), stackMap };
}

const textEncoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** The file: magic, version, then one zstd frame of the body. */
function packSymbols(body: Uint8Array): Uint8Array {
  const packed = Bun.zstdCompressSync(body, { level: ZSTD_LEVEL });
  const bytes = new Uint8Array(SYMBOLS_MAGIC.length + 1 + packed.length);
  bytes.set(SYMBOLS_MAGIC);
  bytes[SYMBOLS_MAGIC.length] = SYMBOLS_VERSION;
  bytes.set(packed, SYMBOLS_MAGIC.length + 1);
  return bytes;
}

/** A mapping as varints, its file name and build id as string ids (both versions of the file). */
function writeMapping(b: ByteSink, m: Mapping, filename: number, buildId: number): void {
  b.big(m.memoryStart);
  b.big(m.memoryLimit);
  b.big(m.fileOffset);
  b.uint(filename);
  b.uint(buildId);
  b.uint(+m.hasFunctions | (+m.hasFilenames << 1) | (+m.hasLineNumbers << 2) | (+m.hasInlineFrames << 3));
}

/**
 * Reads what writeMapping wrote. Its strings are looked up (and checked) in a string table laid out
 * as both versions hold it in memory: string i is strBytes[strEnd[i - 1] (0 for i = 0) .. strEnd[i]).
 */
export function readMapping(src: ByteSource, strBytes: Uint8Array, strEnd: Uint32Array): Mapping {
  const str = (id: number) => {
    if (id >= strEnd.length) throw new Error(`string id ${id} out of range`);
    return utf8.decode(strBytes.subarray(id === 0 ? 0 : strEnd[id - 1], strEnd[id]));
  };
  const memoryStart = src.big();
  const memoryLimit = src.big();
  const fileOffset = src.big();
  const filename = str(src.uint());
  const buildId = str(src.uint());
  const f = src.uint();
  return {
    memoryStart,
    memoryLimit,
    fileOffset,
    filename,
    buildId,
    hasFunctions: (f & 1) !== 0,
    hasFilenames: (f & 2) !== 0,
    hasLineNumbers: (f & 4) !== 0,
    hasInlineFrames: (f & 8) !== 0,
  };
}

/** Marks used entries (set to 0 in `map`, -1 elsewhere) with dense ids; returns old ids in order. */
function renumber(map: Int32Array): number[] {
  const order: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) map[i] = order.push(i) - 1;
  return order;
}
