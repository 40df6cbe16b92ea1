// Writing symbols.bin: a block's symbols, only the stacks its rows reference (with their
// ancestors) and the locations, functions, mappings and strings those need, renumbered densely.
// The file is "HSYM", a version byte, then one zstd frame: the string table, then mappings,
// functions, locations and stacks as varints. BlockSymbols (block-symbols.ts) reads it.

import type { SymbolTable } from "../head/symbol-table.ts";
import type { Mapping } from "../model/profile.ts";
import { ByteSink } from "./varint.ts";

export const SYMBOLS_MAGIC = [0x48, 0x53, 0x59, 0x4d]; // "HSYM"
export const SYMBOLS_VERSION = 1;
const ZSTD_LEVEL = 6; // written once per block, read whole: worth a little more effort than pages

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
  for (let l = 0; l < locMap.length; l++) {
    if (locMap[l] < 0) continue;
    locMap[l] = locs++;
    if (locMapping[l] >= 0) mapMap[locMapping[l]] = 0;
    for (let j = lineStart[l]; j < lineStart[l + 1]; j++) fnMap[lineFn[j]] = 0;
  }
  const fns = renumber(fnMap);
  const maps = renumber(mapMap);

  // String ids in the file are given in first use, mappings' then functions': assigned before
  // writing, so the table goes first into the one buffer the sections follow (no copy of them).
  const names = sym.names.strings;
  const strMap = new Int32Array(names.length).fill(-1);
  const strings: string[] = [];
  const use = (id: number) => {
    if (strMap[id] < 0) strMap[id] = strings.push(names[id]) - 1;
  };
  for (const g of maps) {
    use(sym.names.lookup(sym.mappings[g].filename));
    use(sym.names.lookup(sym.mappings[g].buildId));
  }
  for (const g of fns) {
    use(sym.fnName[g]);
    use(sym.fnSystem[g]);
    use(sym.fnFile[g]);
  }
  const str = (id: number) => strMap[id];

  // The file's size, about: a few varint bytes per entry, the strings' chars (names are mostly ASCII).
  const estimate = sym.stringChars + 4 * strings.length + 24 * maps.length + 8 * fns.length + 12 * locs + 4 * lineStart[sym.locationCount] + 6 * stacks + 64;
  if (process.env.EST) console.log("estimate", estimate);
  const file = new SymbolsFileWriter(strings, estimate);
  file.count(maps.length);
  for (const g of maps) {
    const m = sym.mappings[g];
    file.mapping(m, str(sym.names.lookup(m.filename)), str(sym.names.lookup(m.buildId)));
  }
  file.count(fns.length);
  for (const g of fns) file.func(str(sym.fnName[g]), str(sym.fnSystem[g]), str(sym.fnFile[g]), sym.fnStart[g]);
  file.count(locs);
  for (let l = 0; l < locMap.length; l++) {
    if (locMap[l] < 0) continue;
    const m = locMapping[l];
    file.location(m >= 0 ? mapMap[m] : -1, locAddr[2 * l], locAddr[2 * l + 1], locFolded[l] === 1, lineStart[l + 1] - lineStart[l]);
    for (let j = lineStart[l]; j < lineStart[l + 1]; j++) file.line(fnMap[lineFn[j]], lineNo[j]);
  }
  file.count(stacks);
  for (let id = 1; id < n; id++) if (keep[id]) file.stack(stackMap[id] - stackMap[sym.stackParent[id]], locMap[sym.stackLoc[id]]);
  return { bytes: file.finish(), stackMap };
}

/**
 * Writes symbols.bin's sections in order: mappings, functions, locations (each followed by its
 * lines), stacks, each section after its count(). Strings are given as ids into the table passed
 * to the constructor, written first. Every encoder goes through it, so the format lives in one place.
 */
export class SymbolsFileWriter {
  private readonly body: ByteSink;

  /**
   * Starts the file with its string table; sections refer to strings by index in `strings`.
   * `sizeHint`: about how many bytes the sections will take, with the strings.
   */
  constructor(strings: string[], sizeHint?: number) {
    this.body = new ByteSink(sizeHint);
    this.body.uint(strings.length);
    for (const s of strings) this.body.str(s);
  }

  count(n: number): void {
    this.body.uint(n);
  }

  mapping(m: Mapping, filename: number, buildId: number): void {
    const b = this.body;
    b.big(m.memoryStart);
    b.big(m.memoryLimit);
    b.big(m.fileOffset);
    b.uint(filename);
    b.uint(buildId);
    b.uint(+m.hasFunctions | (+m.hasFilenames << 1) | (+m.hasLineNumbers << 2) | (+m.hasInlineFrames << 3));
  }

  func(name: number, systemName: number, filename: number, startLine: number): void {
    const b = this.body;
    b.uint(name);
    b.uint(systemName);
    b.uint(filename);
    b.sint(startLine);
  }

  /**
   * A location of `lines` lines (given next with line()); mapping -1 for none. The address comes
   * as two 32-bit halves: no bigint unless it needs one.
   */
  location(mapping: number, lo: number, hi: number, folded: boolean, lines: number): void {
    this.body.uint(mapping + 1);
    // LEB128 is the same whichever way it is computed: below 2^53 a plain number does.
    if (hi < 0x200000) this.body.uint(hi * 0x100000000 + lo);
    else this.body.big((BigInt(hi) << 32n) | BigInt(lo));
    this.body.uint((lines << 1) | +folded);
  }

  line(fn: number, line: number): void {
    this.body.uint(fn);
    this.body.sint(line);
  }

  /** A stack: `back` ids back to its parent (≥ 1), its location. */
  stack(back: number, loc: number): void {
    this.body.uint(back);
    this.body.uint(loc);
  }

  /** The file: magic, version, then one zstd frame of the string table and the sections. */
  finish(): Uint8Array {
    if (process.env.EST) console.log("symbols body", this.body.view().length);
    const packed = Bun.zstdCompressSync(this.body.view(), { level: ZSTD_LEVEL });
    const bytes = new Uint8Array(SYMBOLS_MAGIC.length + 1 + packed.length);
    bytes.set(SYMBOLS_MAGIC);
    bytes[SYMBOLS_MAGIC.length] = SYMBOLS_VERSION;
    bytes.set(packed, SYMBOLS_MAGIC.length + 1);
    return bytes;
  }

}

/** Marks used entries (set to 0 in `map`, -1 elsewhere) with dense ids; returns old ids in order. */
function renumber(map: Int32Array): number[] {
  const order: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) map[i] = order.push(i) - 1;
  return order;
}
