// BlockSymbols: a block's symbols.bin (symbols-file-writer.ts), read for queries and merges. The
// file's numbers are typed-array views of its decompressed bytes, checked once; strings stay UTF-8
// bytes there until something asks for them. A query for one service of fifty then decodes the
// names of that service's frames, not the block's, and a resident block holds its file and little
// else, rather than an object per function and location.

import type { Func, Location, Mapping } from "../model/profile.ts";
import { StringTable } from "../model/tree.ts";
import { decodeSymbolsV1 } from "./block-symbols-v1.ts";
import { readMapping, readSymbolsCounts, SYMBOLS_HEADER_BYTES, SYMBOLS_MAGIC, SYMBOLS_VERSION, symbolsLayout } from "./symbols-file-writer.ts";
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
export interface PackedFunctions {
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
    /** The strings' UTF-8 bytes, one after another: string i is [strEnd[i - 1] (0 for i = 0), strEnd[i]). */
    private readonly strBytes: Uint8Array,
    private readonly strEnd: Uint32Array,
    readonly mappings: Mapping[],
    private readonly fns: PackedFunctions,
    /** The locations, packed: merges intern from these without building objects. */
    readonly packed: PackedLocations,
    /** Stack node i (0 = empty) is location stackLoc[i] called from stackParent[i]. */
    readonly stackParent: Uint32Array,
    readonly stackLoc: Uint32Array,
    /** Bytes the arrays above hold (views of one buffer count it once). */
    private readonly heldBytes: number,
  ) {
    this.decoded = new Array(strEnd.length);
    this.nameIds = new Int32Array(fns.name.length).fill(-1);
  }

  get stackCount(): number {
    return this.stackParent.length;
  }

  get functionCount(): number {
    return this.fns.name.length;
  }

  /** Bytes held: the file or arrays, and the strings decoded so far (roughly). */
  get bytes(): number {
    let n = this.heldBytes + this.decoded.length * 8 + this.nameIds.byteLength;
    // Decoded names: their strings, the name table's entry and Map slot.
    if (this.nameTable) n += this.nameTable.size * 80;
    if (this.functionObjects) n += this.functionObjects.length * 120;
    if (this.locationObjects) n += this.locationObjects.length * 150;
    return n;
  }

  /** String i of the file, decoded on first use. */
  private string(i: number): string {
    let s = this.decoded[i];
    if (s === undefined) s = this.decoded[i] = utf8.decode(this.strBytes.subarray(i === 0 ? 0 : this.strEnd[i - 1], this.strEnd[i]));
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

/** What a decoder hands BlockSymbols: the arrays, and the bytes they hold. */
export interface SymbolsParts {
  strBytes: Uint8Array;
  strEnd: Uint32Array;
  mappings: Mapping[];
  fns: PackedFunctions;
  packed: PackedLocations;
  stackParent: Uint32Array;
  stackLoc: Uint32Array;
  heldBytes: number;
}

/** Decodes symbols.bin; throws a plain Error on anything malformed (the reader names the block). */
export function decodeBlockSymbols(bytes: Uint8Array): BlockSymbols {
  if (bytes.length < SYMBOLS_MAGIC.length + 1 || SYMBOLS_MAGIC.some((b, i) => bytes[i] !== b)) throw new Error("not a symbols file (bad magic)");
  const version = bytes[SYMBOLS_MAGIC.length];
  if (version !== SYMBOLS_VERSION && version !== 1) throw new Error(`unsupported symbols version ${version}`);
  const out = Bun.zstdDecompressSync(bytes.subarray(SYMBOLS_MAGIC.length + 1));
  const body = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const p = version === 1 ? decodeSymbolsV1(body) : viewSymbols(body.byteOffset % 8 === 0 ? body : body.slice());
  return new BlockSymbols(p.strBytes, p.strEnd, p.mappings, p.fns, p.packed, p.stackParent, p.stackLoc, p.heldBytes);
}

/**
 * A version 2 body as typed arrays over its own bytes (8-byte aligned). Nothing is copied but the
 * few mappings; every id is checked, so a damaged file fails here rather than in a query.
 */
function viewSymbols(body: Uint8Array): SymbolsParts {
  if (body.length < SYMBOLS_HEADER_BYTES) throw new Error("truncated header");
  const c = readSymbolsCounts(body);
  const L = symbolsLayout(c);
  if (body.length < L.size) throw new Error(`truncated: ${body.length} bytes, the counts need ${L.size}`);
  if (body.length > L.size) throw new Error("trailing bytes");
  const buf = body.buffer;
  const at = body.byteOffset;
  const u32 = (off: number, n: number) => new Uint32Array(buf, at + off, n);
  const i32 = (off: number, n: number) => new Int32Array(buf, at + off, n);

  const strEnd = u32(L.strEnd, c.strings);
  for (let i = 0, prev = 0; i < strEnd.length; prev = strEnd[i++]) if (strEnd[i] < prev || strEnd[i] > c.stringBytes) throw new Error(`string ${i} out of range`);
  const strBytes = body.subarray(L.strings, L.strings + c.stringBytes);
  const checkIds = (ids: Uint32Array, max: number, what: string) => {
    for (let i = 0; i < ids.length; i++) if (ids[i] >= max) throw new Error(`${what} id ${ids[i]} out of range`);
  };

  const src = new ByteSource(body.subarray(L.mappings, L.mappings + c.mappingBytes));
  const mappings: Mapping[] = new Array(c.mappings);
  for (let i = 0; i < c.mappings; i++) mappings[i] = readMapping(src, strBytes, strEnd);
  if (!src.done) throw new Error("trailing bytes in the mappings");

  const fns: PackedFunctions = {
    name: u32(L.fnName, c.functions),
    systemName: u32(L.fnSystem, c.functions),
    filename: u32(L.fnFile, c.functions),
    startLine: new Float64Array(buf, at + L.fnStart, c.functions),
  };
  checkIds(fns.name, c.strings, "string");
  checkIds(fns.systemName, c.strings, "string");
  checkIds(fns.filename, c.strings, "string");

  const packed: PackedLocations = {
    mapping: i32(L.locMapping, c.locations),
    address: new BigUint64Array(buf, at + L.address, c.locations),
    folded: body.subarray(L.folded, L.folded + c.locations),
    lineStart: u32(L.lineStart, c.locations + 1),
    lineFn: u32(L.lineFn, c.lines),
    lineNo: i32(L.lineNo, c.lines),
  };
  for (let i = 0; i < c.locations; i++) if (packed.mapping[i] < -1 || packed.mapping[i] >= c.mappings) throw new Error(`mapping id ${packed.mapping[i]} out of range`);
  const ls = packed.lineStart;
  if (ls[0] !== 0 || ls[c.locations] !== c.lines) throw new Error("location lines malformed");
  for (let i = 0; i < c.locations; i++) if (ls[i + 1] < ls[i]) throw new Error(`location ${i} is malformed`);
  checkIds(packed.lineFn, c.functions, "function");

  if (c.stacks < 1) throw new Error("no stacks (the empty stack is always present)");
  // Stored as distances back to the parent (they compress better); turned into parents in place.
  const parent = u32(L.stackBack, c.stacks);
  const loc = u32(L.stackLoc, c.stacks);
  if (parent[0] !== 0) throw new Error("stack 0 is malformed");
  for (let i = 1; i < c.stacks; i++) {
    const back = parent[i];
    if (back < 1 || back > i || loc[i] >= c.locations) throw new Error(`stack ${i} is malformed`);
    parent[i] = i - back;
  }
  return { strBytes, strEnd, mappings, fns, packed, stackParent: parent, stackLoc: loc, heldBytes: body.byteLength };
}
