// A block's symbols: only the stacks its rows reference (with their ancestors) and the
// locations, functions, mappings and strings those need, renumbered densely, in symbols.bin.
// The file is "HSYM", a version byte, then one zstd frame of varints; it is read whole.

import type { SymbolTable } from "../head/symbols.ts";
import type { Func, Location, Mapping } from "../model/profile.ts";
import { StringTable } from "../model/tree.ts";
import { ByteSink, ByteSource } from "./varint.ts";

const MAGIC = [0x48, 0x53, 0x59, 0x4d]; // "HSYM"
const VERSION = 1;
const ZSTD_LEVEL = 6; // written once per block, read whole: worth a little more effort than pages

/**
 * Where a block's locations live until something needs them as objects: flat arrays, a few bytes
 * per location and line instead of an object each (the bulk of a block's decoded symbols).
 */
export interface PackedLocations {
  mapping: Int32Array;
  address: BigUint64Array;
  folded: Uint8Array;
  /** Lines of location i are lineFn/lineNo[lineStart[i] .. lineStart[i + 1]). */
  lineStart: Uint32Array;
  lineFn: Uint32Array;
  lineNo: Int32Array;
}

/** Symbols loaded from a block: the read-side counterpart of the head's SymbolTable. */
export class BlockSymbols {
  private interned: { names: StringTable; ids: Int32Array } | null = null;
  private objects: Location[] | null = null;
  constructor(
    readonly mappings: Mapping[],
    readonly functions: Func[],
    /** The locations, packed: merges intern from these without building objects. */
    readonly packed: PackedLocations,
    /** Stack node i (0 = empty) is location stackLoc[i] called from stackParent[i]. */
    readonly stackParent: Uint32Array,
    readonly stackLoc: Uint32Array,
  ) {}

  get stackCount(): number {
    return this.stackParent.length;
  }

  /**
   * Function names interned once, so merge queries build trees from ints. Built on first use:
   * compaction, which never builds trees, skips it.
   */
  get names(): StringTable {
    return this.intern().names;
  }

  /** Function index → id in `names`. */
  get functionNameId(): Int32Array {
    return this.intern().ids;
  }

  private intern(): { names: StringTable; ids: Int32Array } {
    if (this.interned) return this.interned;
    const names = new StringTable();
    const ids = new Int32Array(this.functions.length);
    for (let i = 0; i < ids.length; i++) ids[i] = names.intern(this.functions[i].name);
    return (this.interned = { names, ids });
  }

  /**
   * The locations as objects, built on first use and kept: pprof answers and merges need them;
   * flame graphs (stackNameIds) do not.
   */
  get locations(): Location[] {
    if (this.objects) return this.objects;
    const p = this.packed;
    const out: Location[] = new Array(p.mapping.length);
    for (let i = 0; i < out.length; i++) {
      const lines = [];
      for (let j = p.lineStart[i]; j < p.lineStart[i + 1]; j++) lines.push({ fn: p.lineFn[j], line: p.lineNo[j] });
      out[i] = { mapping: p.mapping[i], address: p.address[i], lines, isFolded: p.folded[i] === 1 };
    }
    return (this.objects = out);
  }

  /** Name ids (in `names`) of a stack's frames, leaf first, inlined frames expanded. */
  stackNameIds(stackId: number, out: number[]): number[] {
    out.length = 0;
    const { lineStart, lineFn } = this.packed;
    const nameId = this.functionNameId;
    for (let node = stackId; node !== 0; node = this.stackParent[node]) {
      const l = this.stackLoc[node];
      for (let j = lineStart[l]; j < lineStart[l + 1]; j++) out.push(nameId[lineFn[j]]);
    }
    return out;
  }
}

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
    const bytes = new Uint8Array(MAGIC.length + 1 + packed.length);
    bytes.set(MAGIC);
    bytes[MAGIC.length] = VERSION;
    bytes.set(packed, MAGIC.length + 1);
    return bytes;
  }
}

/** Marks used entries (set to 0 in `map`, -1 elsewhere) with dense ids; returns old ids in order. */
function renumber(map: Int32Array): number[] {
  const order: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) map[i] = order.push(i) - 1;
  return order;
}

/** Decodes symbols.bin; throws a plain Error on anything malformed (the reader names the block). */
export function decodeBlockSymbols(bytes: Uint8Array): BlockSymbols {
  if (bytes.length < MAGIC.length + 1 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error("not a symbols file (bad magic)");
  if (bytes[MAGIC.length] !== VERSION) throw new Error(`unsupported symbols version ${bytes[MAGIC.length]}`);
  const src = new ByteSource(new Uint8Array(Bun.zstdDecompressSync(bytes.subarray(MAGIC.length + 1))));
  const count = (what: string, max = 2 ** 32): number => {
    const c = src.uint();
    if (c > max) throw new Error(`implausible ${what} count ${c}`);
    return c;
  };

  const strings: string[] = new Array(count("string"));
  for (let i = 0; i < strings.length; i++) strings[i] = src.str();
  const s = (): string => {
    const id = src.uint();
    if (id >= strings.length) throw new Error(`string id ${id} out of range`);
    return strings[id];
  };

  const mappings: Mapping[] = new Array(count("mapping"));
  for (let i = 0; i < mappings.length; i++) {
    const memoryStart = src.big();
    const memoryLimit = src.big();
    const fileOffset = src.big();
    const filename = s();
    const buildId = s();
    const f = src.uint();
    mappings[i] = {
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

  const functions: Func[] = new Array(count("function"));
  for (let i = 0; i < functions.length; i++) functions[i] = { name: s(), systemName: s(), filename: s(), startLine: src.sint() };

  const nLoc = count("location");
  const packed: PackedLocations = {
    mapping: new Int32Array(nLoc),
    address: new BigUint64Array(nLoc),
    folded: new Uint8Array(nLoc),
    lineStart: new Uint32Array(nLoc + 1),
    lineFn: new Uint32Array(nLoc),
    lineNo: new Int32Array(nLoc),
  };
  let nLines = 0;
  for (let i = 0; i < nLoc; i++) {
    const mapping = src.uint() - 1;
    if (mapping >= mappings.length) throw new Error(`mapping id ${mapping} out of range`);
    packed.mapping[i] = mapping;
    packed.address[i] = src.big();
    const h = src.uint();
    packed.folded[i] = h % 2;
    const count = (h - (h % 2)) / 2;
    if (nLines + count > packed.lineFn.length) {
      // Most locations have one line; grow for inlined frames.
      const size = Math.max(nLines + count, packed.lineFn.length * 2);
      const fn = new Uint32Array(size);
      fn.set(packed.lineFn.subarray(0, nLines));
      const no = new Int32Array(size);
      no.set(packed.lineNo.subarray(0, nLines));
      packed.lineFn = fn;
      packed.lineNo = no;
    }
    for (let j = 0; j < count; j++) {
      const fn = src.uint();
      if (fn >= functions.length) throw new Error(`function id ${fn} out of range`);
      packed.lineFn[nLines] = fn;
      packed.lineNo[nLines++] = src.sint();
    }
    packed.lineStart[i + 1] = nLines;
  }

  const n = count("stack");
  if (n < 1) throw new Error("no stacks (the empty stack is always present)");
  const parent = new Uint32Array(n);
  const loc = new Uint32Array(n);
  for (let i = 1; i < n; i++) {
    const back = src.uint();
    const l = src.uint();
    if (back < 1 || back > i || l >= nLoc) throw new Error(`stack ${i} is malformed`);
    parent[i] = i - back;
    loc[i] = l;
  }
  if (!src.done) throw new Error("trailing bytes");

  return new BlockSymbols(mappings, functions, packed, parent, loc);
}
