// symbols.bin version 1, as blocks written before version 2 hold it: one zstd frame of varints
// (the string table, then mappings, functions, locations with their lines, stacks). Still read, so
// a store keeps serving its older blocks; compaction rewrites them as version 2.

import type { Mapping } from "../model/profile.ts";
import type { PackedFunctions, PackedLocations, SymbolsParts } from "./block-symbols.ts";
import { readMapping } from "./symbols-file-writer.ts";
import { ByteSource } from "./varint.ts";

/** Decodes a version 1 body (decompressed); throws a plain Error on anything malformed. */
export function decodeSymbolsV1(file: Uint8Array): SymbolsParts {
  const src = new ByteSource(file);
  const count = (what: string, max = 2 ** 32): number => {
    const c = src.uint();
    if (c > max) throw new Error(`implausible ${what} count ${c}`);
    return c;
  };

  // Strings are copied out, one after another, into the shape version 2 stores them in.
  const nStr = count("string", file.length);
  const strStart = new Uint32Array(nStr);
  const strEnd = new Uint32Array(nStr);
  let strTotal = 0;
  for (let i = 0; i < nStr; i++) {
    const len = src.uint();
    if (src.pos + len > file.length) throw new Error("truncated string");
    strStart[i] = src.pos;
    src.pos += len;
    strTotal += len;
    strEnd[i] = strTotal;
  }
  const strBytes = new Uint8Array(strTotal);
  for (let i = 0; i < nStr; i++) {
    const from = i === 0 ? 0 : strEnd[i - 1];
    strBytes.set(file.subarray(strStart[i], strStart[i] + strEnd[i] - from), from);
  }
  const sid = (id: number): number => {
    if (id >= nStr) throw new Error(`string id ${id} out of range`);
    return id;
  };

  const mappings: Mapping[] = new Array(count("mapping", file.length));
  for (let i = 0; i < mappings.length; i++) mappings[i] = readMapping(src, strBytes, strEnd);

  const nFn = count("function", file.length);
  const fns: PackedFunctions = { name: new Uint32Array(nFn), systemName: new Uint32Array(nFn), filename: new Uint32Array(nFn), startLine: new Float64Array(nFn) };
  for (let i = 0; i < nFn; i++) {
    fns.name[i] = sid(src.uint());
    fns.systemName[i] = sid(src.uint());
    fns.filename[i] = sid(src.uint());
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
  // Exactly the lines there are, as version 2 has (merges size their tables by it).
  packed.lineFn = packed.lineFn.slice(0, nLines);
  packed.lineNo = packed.lineNo.slice(0, nLines);

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

  let held = strBytes.byteLength + strEnd.byteLength + parent.byteLength + loc.byteLength;
  for (const a of [fns.name, fns.systemName, fns.filename, fns.startLine, ...Object.values(packed)]) held += a.byteLength;
  return { strBytes, strEnd, mappings, fns, packed, stackParent: parent, stackLoc: loc, heldBytes: held };
}
