// Writing symbols.bin: a block's symbols, only the stacks its rows reference (with their
// ancestors) and the locations, functions, mappings and strings those need, renumbered densely.
// The file is "HSYM", a version byte, then one zstd frame: the string table, then mappings,
// functions, locations and stacks as varints. BlockSymbols (block-symbols.ts) reads it.

import type { SymbolTable } from "../head/symbols.ts";
import type { Mapping } from "../model/profile.ts";
import { ByteSink } from "./varint.ts";

export const SYMBOLS_MAGIC = [0x48, 0x53, 0x59, 0x4d]; // "HSYM"
export const SYMBOLS_VERSION = 1;
const ZSTD_LEVEL = 6; // written once per block, read whole: worth a little more effort than pages

/**
 * Encodes the part of `sym` that the stacks marked in `used` (indexed by head stack id) need.
 * Returns the file bytes and `stackMap`: head stack id → block stack id. Ids keep their order, so
 * parents still precede children and id 0 stays the empty stack.
 */
export function encodeBlockSymbols(sym: SymbolTable, used: Uint8Array): { bytes: Uint8Array; stackMap: Uint32Array } {
  const n = sym.stackCount;
  const keep = used.slice(0, n);
  keep[0] = 1;
  // Ancestors of kept stacks are kept; walking down the ids visits children before parents.
  for (let id = n - 1; id > 0; id--) if (keep[id]) keep[sym.stackParent[id]] = 1;

  const stackMap = new Uint32Array(n);
  const locMap = new Int32Array(sym.locations.length).fill(-1);
  const locOrder: number[] = [];
  let stacks = 0;
  for (let id = 0; id < n; id++) {
    if (!keep[id]) continue;
    stackMap[id] = stacks++;
    if (id === 0) continue;
    const loc = sym.stackLoc[id];
    if (locMap[loc] < 0) {
      locMap[loc] = 0;
      locOrder.push(loc);
    }
  }
  // Locations, functions and mappings in their head order, renumbered densely.
  locOrder.sort((a, b) => a - b);
  locOrder.forEach((g, i) => (locMap[g] = i));
  const fnMap = new Int32Array(sym.functions.length).fill(-1);
  const mapMap = new Int32Array(sym.mappings.length).fill(-1);
  for (const g of locOrder) {
    const loc = sym.locations[g];
    if (loc.mapping >= 0) mapMap[loc.mapping] = 0;
    for (const l of loc.lines) fnMap[l.fn] = 0;
  }
  const fnOrder = renumber(fnMap);
  const mapOrder = renumber(mapMap);

  const strings = new Map<string, number>();
  const str = (s: string): number => {
    let id = strings.get(s);
    if (id === undefined) strings.set(s, (id = strings.size));
    return id;
  };
  const file = new SymbolsFileWriter();
  file.count(mapOrder.length);
  for (const g of mapOrder) {
    const m = sym.mappings[g];
    file.mapping(m, str(m.filename), str(m.buildId));
  }
  file.count(fnOrder.length);
  for (const g of fnOrder) {
    const f = sym.functions[g];
    file.func(str(f.name), str(f.systemName), str(f.filename), f.startLine);
  }
  file.count(locOrder.length);
  for (const g of locOrder) {
    const loc = sym.locations[g];
    file.location(loc.mapping >= 0 ? mapMap[loc.mapping] : -1, loc.address, loc.isFolded, loc.lines.length);
    for (const l of loc.lines) file.line(fnMap[l.fn], l.line);
  }
  file.count(stacks);
  for (let id = 1; id < n; id++) if (keep[id]) file.stack(stackMap[id] - stackMap[sym.stackParent[id]], locMap[sym.stackLoc[id]]);
  const bytes = file.finish([...strings.keys()]);
  return { bytes, stackMap };
}

/**
 * Writes symbols.bin's sections in order: mappings, functions, locations (each followed by its
 * lines), stacks, each section after its count(). Strings are given as ids into the table passed
 * to finish(), written first. Every encoder goes through it, so the format lives in one place.
 */
export class SymbolsFileWriter {
  private readonly body = new ByteSink();

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

  /** A location of `lines` lines (given next with line()); mapping -1 for none. */
  location(mapping: number, address: bigint, folded: boolean, lines: number): void {
    this.body.uint(mapping + 1);
    this.body.big(address);
    this.body.uint((lines << 1) | +folded);
  }

  /** location() with the address as two 32-bit halves: no bigint unless it needs one. */
  locationHalves(mapping: number, lo: number, hi: number, folded: boolean, lines: number): void {
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
  finish(strings: string[]): Uint8Array {
    const out = new ByteSink();
    out.uint(strings.length);
    for (const s of strings) out.str(s);
    out.bytes(this.body.finish());
    const packed = new Uint8Array(Bun.zstdCompressSync(out.finish(), { level: ZSTD_LEVEL }));
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
