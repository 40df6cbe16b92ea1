// BlockSymbols: a block's symbols.bin (symbols-file-writer.ts), read for queries and merges. Only
// numbers are decoded up front, into flat arrays; strings stay UTF-8 bytes in the decompressed
// file until something asks for them. A query for one service of fifty then decodes the names of
// that service's frames, not the block's, and a resident block holds a few bytes per symbol
// rather than an object per function and location.

import type { Func, Location, Mapping } from "../model/profile.ts";
import { StringTable } from "../model/tree.ts";
import { SYMBOLS_MAGIC, SYMBOLS_VERSION } from "./symbols-file-writer.ts";
import { ByteSource } from "./varint.ts";

/**
 * A block's locations as flat arrays, a few bytes per location and line instead of an object each.
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

/** Function i: ids of its name, system name and file name in the string table, and its start line. */
interface PackedFunctions {
  name: Uint32Array;
  systemName: Uint32Array;
  filename: Uint32Array;
  startLine: Float64Array;
}

// Not fatal: a string is decoded when first used, long after the block was opened, and a damaged
// one should show as replacement characters in a frame name rather than fail the query.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Symbols loaded from a block: the read-side counterpart of the head's SymbolTable. */
export class BlockSymbols {
  private readonly decoded: (string | undefined)[];
  private readonly nameIds: Int32Array;
  private nameTable: StringTable | null = null;
  private functionObjects: Func[] | null = null;
  private locationObjects: Location[] | null = null;

  constructor(
    /** The decompressed file; string i is its bytes [strStart[i], strEnd[i]). */
    private readonly file: Uint8Array,
    private readonly strStart: Uint32Array,
    private readonly strEnd: Uint32Array,
    readonly mappings: Mapping[],
    private readonly fns: PackedFunctions,
    /** The locations, packed: merges intern from these without building objects. */
    readonly packed: PackedLocations,
    /** Stack node i (0 = empty) is location stackLoc[i] called from stackParent[i]. */
    readonly stackParent: Uint32Array,
    readonly stackLoc: Uint32Array,
  ) {
    this.decoded = new Array(strStart.length);
    this.nameIds = new Int32Array(fns.name.length).fill(-1);
  }

  get stackCount(): number {
    return this.stackParent.length;
  }

  get functionCount(): number {
    return this.fns.name.length;
  }

  /** Bytes held: the file, the arrays, and the strings decoded so far (roughly). */
  get bytes(): number {
    const p = this.packed;
    const f = this.fns;
    let n = this.file.byteLength + this.strStart.byteLength * 2 + this.decoded.length * 8 + this.nameIds.byteLength;
    n += f.name.byteLength * 3 + f.startLine.byteLength;
    n += p.mapping.byteLength + p.address.byteLength + p.folded.byteLength + p.lineStart.byteLength + p.lineFn.byteLength + p.lineNo.byteLength;
    n += this.stackParent.byteLength + this.stackLoc.byteLength;
    // Decoded names: their strings, the name table's entry and Map slot.
    if (this.nameTable) n += this.nameTable.size * 80;
    if (this.functionObjects) n += this.functionObjects.length * 120;
    if (this.locationObjects) n += this.locationObjects.length * 150;
    return n;
  }

  /** String i of the file, decoded on first use. */
  private string(i: number): string {
    let s = this.decoded[i];
    if (s === undefined) s = this.decoded[i] = utf8.decode(this.file.subarray(this.strStart[i], this.strEnd[i]));
    return s;
  }

  /** Function names interned as stacks need them, so flame graphs are built from ints. */
  get names(): StringTable {
    return (this.nameTable ??= new StringTable());
  }

  /** Function i's name id in `names`. */
  functionNameId(i: number): number {
    let id = this.nameIds[i];
    if (id < 0) id = this.nameIds[i] = this.names.intern(this.string(this.fns.name[i]));
    return id;
  }

  func(i: number): Func {
    const f = this.fns;
    return { name: this.string(f.name[i]), systemName: this.string(f.systemName[i]), filename: this.string(f.filename[i]), startLine: f.startLine[i] };
  }

  mapping(i: number): Mapping {
    return this.mappings[i];
  }

  location(i: number): Location {
    if (this.locationObjects) return this.locationObjects[i];
    const p = this.packed;
    const lines = [];
    for (let j = p.lineStart[i]; j < p.lineStart[i + 1]; j++) lines.push({ fn: p.lineFn[j], line: p.lineNo[j] });
    return { mapping: p.mapping[i], address: p.address[i], lines, isFolded: p.folded[i] === 1 };
  }

  /** Every function as an object, built on first use and kept (for interning a whole block). */
  get functions(): Func[] {
    if (this.functionObjects) return this.functionObjects;
    const out: Func[] = new Array(this.functionCount);
    for (let i = 0; i < out.length; i++) out[i] = this.func(i);
    return (this.functionObjects = out);
  }

  /** Every location as an object, built on first use and kept (for interning a whole block). */
  get locations(): Location[] {
    if (this.locationObjects) return this.locationObjects;
    const out: Location[] = new Array(this.packed.mapping.length);
    for (let i = 0; i < out.length; i++) out[i] = this.location(i);
    return (this.locationObjects = out);
  }

  /** Name ids (in `names`) of a stack's frames, leaf first, inlined frames expanded. */
  stackNameIds(stackId: number, out: number[]): number[] {
    out.length = 0;
    const { lineStart, lineFn } = this.packed;
    const ids = this.nameIds;
    for (let node = stackId; node !== 0; node = this.stackParent[node]) {
      const l = this.stackLoc[node];
      for (let j = lineStart[l]; j < lineStart[l + 1]; j++) {
        const fn = lineFn[j];
        const id = ids[fn];
        out.push(id >= 0 ? id : this.functionNameId(fn));
      }
    }
    return out;
  }
}

/** Decodes symbols.bin; throws a plain Error on anything malformed (the reader names the block). */
export function decodeBlockSymbols(bytes: Uint8Array): BlockSymbols {
  if (bytes.length < SYMBOLS_MAGIC.length + 1 || SYMBOLS_MAGIC.some((b, i) => bytes[i] !== b)) throw new Error("not a symbols file (bad magic)");
  if (bytes[SYMBOLS_MAGIC.length] !== SYMBOLS_VERSION) throw new Error(`unsupported symbols version ${bytes[SYMBOLS_MAGIC.length]}`);
  const out = Bun.zstdDecompressSync(bytes.subarray(SYMBOLS_MAGIC.length + 1));
  const file = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const src = new ByteSource(file);
  const count = (what: string, max = 2 ** 32): number => {
    const c = src.uint();
    if (c > max) throw new Error(`implausible ${what} count ${c}`);
    return c;
  };

  const nStr = count("string", file.length);
  const strStart = new Uint32Array(nStr);
  const strEnd = new Uint32Array(nStr);
  for (let i = 0; i < nStr; i++) {
    const len = src.uint();
    if (src.pos + len > file.length) throw new Error("truncated string");
    strStart[i] = src.pos;
    src.pos += len;
    strEnd[i] = src.pos;
  }
  const sid = (): number => {
    const id = src.uint();
    if (id >= nStr) throw new Error(`string id ${id} out of range`);
    return id;
  };
  const str = (id: number) => utf8.decode(file.subarray(strStart[id], strEnd[id]));

  const mappings: Mapping[] = new Array(count("mapping", file.length));
  for (let i = 0; i < mappings.length; i++) {
    const memoryStart = src.big();
    const memoryLimit = src.big();
    const fileOffset = src.big();
    const filename = str(sid());
    const buildId = str(sid());
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

  const nFn = count("function", file.length);
  const fns: PackedFunctions = { name: new Uint32Array(nFn), systemName: new Uint32Array(nFn), filename: new Uint32Array(nFn), startLine: new Float64Array(nFn) };
  for (let i = 0; i < nFn; i++) {
    fns.name[i] = sid();
    fns.systemName[i] = sid();
    fns.filename[i] = sid();
    fns.startLine[i] = src.sint();
  }

  const nLoc = count("location", file.length);
  const packed: PackedLocations = {
    mapping: new Int32Array(nLoc),
    address: new BigUint64Array(nLoc),
    folded: new Uint8Array(nLoc),
    lineStart: new Uint32Array(nLoc + 1),
    lineFn: new Uint32Array(nLoc),
    lineNo: new Int32Array(nLoc),
  };
  const addressHalves = new Uint32Array(packed.address.buffer);
  let nLines = 0;
  for (let i = 0; i < nLoc; i++) {
    const mapping = src.uint() - 1;
    if (mapping >= mappings.length) throw new Error(`mapping id ${mapping} out of range`);
    packed.mapping[i] = mapping;
    src.u64(addressHalves, 2 * i);
    const h = src.uint();
    packed.folded[i] = h % 2;
    const lines = (h - (h % 2)) / 2;
    if (nLines + lines > packed.lineFn.length) {
      // Most locations have one line; grow for inlined frames.
      if (lines > file.length) throw new Error(`implausible line count ${lines}`);
      const size = Math.max(nLines + lines, packed.lineFn.length * 2);
      const fn = new Uint32Array(size);
      fn.set(packed.lineFn.subarray(0, nLines));
      const no = new Int32Array(size);
      no.set(packed.lineNo.subarray(0, nLines));
      packed.lineFn = fn;
      packed.lineNo = no;
    }
    for (let j = 0; j < lines; j++) {
      const fn = src.uint();
      if (fn >= nFn) throw new Error(`function id ${fn} out of range`);
      packed.lineFn[nLines] = fn;
      packed.lineNo[nLines++] = src.sint();
    }
    packed.lineStart[i + 1] = nLines;
  }

  const n = count("stack", file.length);
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

  return new BlockSymbols(file, strStart, strEnd, mappings, fns, packed, parent, loc);
}
