// MergeSymbols: the output symbol table of a block merge, in typed arrays. A merge interns every
// source block's locations and the stacks its rows use, then writes symbols.bin once; the head's
// SymbolTable (objects per location and function, a Map entry per stack) would cost it several
// times the memory. Strings are interned once; functions, locations and stack nodes are rows of
// flat arrays found through open-addressing hash tables that compare the rows themselves, so no
// key is stored twice. Ids are given in the order SymbolTable would give them, so the file is
// byte for byte the one encodeBlockSymbols writes from a SymbolTable fed the same sources.

import type { Mapping } from "../model/profile.ts";
import type { BlockSymbols } from "./block-symbols.ts";
import { SymbolsFileWriter } from "./symbols-file-writer.ts";

/** Arrays grow by half: doubling would hold three times a table's size while copying. */
const grow = (n: number) => Math.max(64, Math.ceil(n * 1.5));

function growU32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

function growI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/** Final mix of a 32-bit hash (murmur3's), so linear probing sees spread-out slots. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Whether a slot table holding `count` entries is too full: linear probing stays short up to about
 * 70% full, and tables then grow by doubling, so they are 35–70% full (4 bytes per slot).
 */
const full = (count: number, slots: { length: number }) => count * 10 > slots.length * 7;

/** Bytes of a JS string and its Map entry, roughly: for stats only. */
const STRING_BYTES = 48;
const MAPPING_BYTES = 200;

export class MergeSymbols {
  private readonly strings: string[] = [];
  private readonly stringIds = new Map<string, number>();
  private stringChars = 0;

  /** Mappings are few (one per binary): objects, found by a key string as in SymbolTable. */
  readonly mappings: Mapping[] = [];
  private readonly mappingIds = new Map<string, number>();

  // Function i: strings fnName/fnSystem/fnFile[i], start line fnStart[i].
  functionCount = 0;
  private fnName = new Uint32Array(64);
  private fnSystem = new Uint32Array(64);
  private fnFile = new Uint32Array(64);
  private fnStart = new Float64Array(64);
  /** Function id + 1 by hash slot; 0 = empty. */
  private fnSlots = new Uint32Array(128);

  // Location i: mapping locMapping[i] (-1 none), address locAddr[2i] (low half), locAddr[2i + 1]
  // (high), folded locFolded[i], lines lineFn/lineNo[lineStart[i] .. lineStart[i + 1]).
  locationCount = 0;
  private locMapping = new Int32Array(64);
  private locAddr = new Uint32Array(128);
  private locFolded = new Uint8Array(64);
  private lineStart = new Uint32Array(65);
  private lineFn = new Uint32Array(64);
  private lineNo = new Int32Array(64);
  private lineCount = 0;
  private locSlots = new Uint32Array(128);

  // Stack node i (0 = the empty stack) = location stackLoc[i] called from stack stackParent[i].
  stackCount = 1;
  stackParent = new Uint32Array(1024);
  stackLoc = new Uint32Array(1024);
  /** Stack id by hash slot; 0 = empty (the root is never a child). */
  private stackSlots = new Uint32Array(2048);

  /** Bytes held: the arrays as allocated, strings and mappings roughly. */
  get bytes(): number {
    const arrays = [this.fnName, this.fnSystem, this.fnFile, this.fnStart, this.fnSlots, this.locMapping, this.locAddr, this.locFolded, this.lineStart, this.lineFn, this.lineNo, this.locSlots, this.stackParent, this.stackLoc, this.stackSlots];
    return arrays.reduce((n, a) => n + a.byteLength, 0) + this.strings.length * STRING_BYTES + this.stringChars * 2 + this.mappings.length * MAPPING_BYTES;
  }

  private str(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.push(s) - 1;
      this.stringIds.set(s, id);
      this.stringChars += s.length;
    }
    return id;
  }

  private internMapping(m: Mapping): number {
    // The same key as SymbolTable's, so the same mappings are told apart.
    const key = `${m.memoryStart}|${m.memoryLimit}|${m.fileOffset}|${m.filename}|${m.buildId}|${+m.hasFunctions}${+m.hasFilenames}${+m.hasLineNumbers}${+m.hasInlineFrames}`;
    let id = this.mappingIds.get(key);
    if (id === undefined) {
      id = this.mappings.push(m) - 1;
      this.mappingIds.set(key, id);
      // Interned now: encode() looks strings up and must not add any.
      this.str(m.filename);
      this.str(m.buildId);
    }
    return id;
  }

  private internFunction(name: string, systemName: string, filename: string, startLine: number): number {
    const n = this.str(name);
    const s = this.str(systemName);
    const f = this.str(filename);
    const mask = this.fnSlots.length - 1;
    let i = fnHash(n, s, f, startLine) & mask;
    for (let slot = this.fnSlots[i]; slot !== 0; slot = this.fnSlots[(i = (i + 1) & mask)]) {
      const id = slot - 1;
      if (this.fnName[id] === n && this.fnSystem[id] === s && this.fnFile[id] === f && this.fnStart[id] === startLine) return id;
    }
    const id = this.functionCount++;
    if (id >= this.fnName.length) {
      const c = grow(id + 1);
      this.fnName = growU32(this.fnName, c);
      this.fnSystem = growU32(this.fnSystem, c);
      this.fnFile = growU32(this.fnFile, c);
      const st = new Float64Array(c);
      st.set(this.fnStart);
      this.fnStart = st;
    }
    this.fnName[id] = n;
    this.fnSystem[id] = s;
    this.fnFile[id] = f;
    this.fnStart[id] = startLine;
    this.fnSlots[i] = id + 1;
    if (full(this.functionCount, this.fnSlots)) this.fnSlots = this.rehash(this.functionCount, (id) => fnHash(this.fnName[id], this.fnSystem[id], this.fnFile[id], this.fnStart[id]), true);
    return id;
  }

  /**
   * The smallest slot table not too full for `count` ids (twice the one that filled up). Ids are
   * stored as id + 1 when `plusOne` (0 marks an empty slot), else as they are, from 1.
   */
  private rehash(count: number, hash: (id: number) => number, plusOne: boolean): Uint32Array<ArrayBuffer> {
    let size = 2;
    while (full(count, { length: size })) size *= 2;
    const t = new Uint32Array(size);
    const mask = size - 1;
    for (let id = plusOne ? 0 : 1; id < count; id++) {
      let i = hash(id) & mask;
      while (t[i] !== 0) i = (i + 1) & mask;
      t[i] = plusOne ? id + 1 : id;
    }
    return t;
  }

  /**
   * Interns `sym`'s mappings, functions and locations; returns each of its locations' id here.
   * All of them, as SymbolTable.internLocations does: they are few next to samples, and ids then
   * come in the same order.
   */
  internLocations(sym: BlockSymbols): Uint32Array {
    const mapIds = new Int32Array(sym.mappings.length);
    for (let i = 0; i < mapIds.length; i++) mapIds[i] = this.internMapping(sym.mappings[i]);
    const fnIds = new Int32Array(sym.functionCount).fill(-1);
    const p = sym.packed;
    // The addresses' 32-bit halves: hashing and comparing them needs no bigint.
    const addr = new Uint32Array(p.address.buffer, p.address.byteOffset, p.address.length * 2);
    const n = p.mapping.length;
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const mapping = p.mapping[i] >= 0 ? mapIds[p.mapping[i]] : -1;
      const lo = addr[2 * i];
      const hi = addr[2 * i + 1];
      const folded = p.folded[i];
      const from = p.lineStart[i];
      const to = p.lineStart[i + 1];
      let h = Math.imul(mapping + 1, 0x9e3779b1) ^ lo ^ Math.imul(hi, 0x85ebca6b) ^ folded;
      for (let j = from; j < to; j++) {
        let fn = fnIds[p.lineFn[j]];
        if (fn < 0) {
          const f = sym.func(p.lineFn[j]);
          fn = fnIds[p.lineFn[j]] = this.internFunction(f.name, f.systemName, f.filename, f.startLine);
        }
        h = Math.imul(h ^ fn, 0x01000193);
        h = Math.imul(h ^ p.lineNo[j], 0x5bd1e995);
      }
      out[i] = this.internLocation(mix(h), mapping, lo, hi, folded, p, from, to, fnIds);
    }
    return out;
  }

  private internLocation(h: number, mapping: number, lo: number, hi: number, folded: number, p: BlockSymbols["packed"], from: number, to: number, fnIds: Int32Array): number {
    const mask = this.locSlots.length - 1;
    let i = h & mask;
    search: for (let slot = this.locSlots[i]; slot !== 0; slot = this.locSlots[(i = (i + 1) & mask)]) {
      const id = slot - 1;
      if (this.locMapping[id] !== mapping || this.locAddr[2 * id] !== lo || this.locAddr[2 * id + 1] !== hi || this.locFolded[id] !== folded) continue;
      const at = this.lineStart[id];
      if (this.lineStart[id + 1] - at !== to - from) continue;
      for (let j = 0; j < to - from; j++) if (this.lineFn[at + j] !== fnIds[p.lineFn[from + j]] || this.lineNo[at + j] !== p.lineNo[from + j]) continue search;
      return id;
    }
    const id = this.locationCount++;
    if (id >= this.locMapping.length) {
      const c = grow(id + 1);
      this.locMapping = growI32(this.locMapping, c);
      this.locAddr = growU32(this.locAddr, 2 * c);
      const f = new Uint8Array(c);
      f.set(this.locFolded);
      this.locFolded = f;
      this.lineStart = growU32(this.lineStart, c + 1);
    }
    const lines = to - from;
    if (this.lineCount + lines > this.lineFn.length) {
      const c = grow(this.lineCount + lines);
      this.lineFn = growU32(this.lineFn, c);
      this.lineNo = growI32(this.lineNo, c);
    }
    this.locMapping[id] = mapping;
    this.locAddr[2 * id] = lo;
    this.locAddr[2 * id + 1] = hi;
    this.locFolded[id] = folded;
    for (let j = 0; j < lines; j++) {
      this.lineFn[this.lineCount + j] = fnIds[p.lineFn[from + j]];
      this.lineNo[this.lineCount + j] = p.lineNo[from + j];
    }
    this.lineCount += lines;
    this.lineStart[id + 1] = this.lineCount;
    this.locSlots[i] = id + 1;
    if (full(this.locationCount, this.locSlots)) this.locSlots = this.rehash(this.locationCount, (id) => this.locHash(id), true);
    return id;
  }

  private locHash(id: number): number {
    let h = Math.imul(this.locMapping[id] + 1, 0x9e3779b1) ^ this.locAddr[2 * id] ^ Math.imul(this.locAddr[2 * id + 1], 0x85ebca6b) ^ this.locFolded[id];
    for (let j = this.lineStart[id]; j < this.lineStart[id + 1]; j++) {
      h = Math.imul(h ^ this.lineFn[j], 0x01000193);
      h = Math.imul(h ^ this.lineNo[j], 0x5bd1e995);
    }
    return mix(h);
  }

  /** The stack `loc` called from stack `parent` (0 = the root), added if new. */
  internStackNode(parent: number, loc: number): number {
    const slots = this.stackSlots;
    const mask = slots.length - 1;
    let i = stackHash(parent, loc) & mask;
    for (let id = slots[i]; id !== 0; id = slots[(i = (i + 1) & mask)]) {
      if (this.stackParent[id] === parent && this.stackLoc[id] === loc) return id;
    }
    const id = this.stackCount++;
    if (id >= this.stackParent.length) {
      const c = grow(id + 1);
      this.stackParent = growU32(this.stackParent, c);
      this.stackLoc = growU32(this.stackLoc, c);
    }
    this.stackParent[id] = parent;
    this.stackLoc[id] = loc;
    slots[i] = id;
    if (full(this.stackCount, slots)) this.stackSlots = this.rehash(this.stackCount, (id) => stackHash(this.stackParent[id], this.stackLoc[id]), false);
    return id;
  }

  /**
   * symbols.bin of every stack here, with the locations, functions and mappings they use, in id
   * order: stack ids are kept as they are (the rows were written with them).
   */
  encode(): Uint8Array {
    const n = this.stackCount;
    const locMap = new Int32Array(this.locationCount).fill(-1);
    for (let id = 1; id < n; id++) locMap[this.stackLoc[id]] = 0;
    const fnMap = new Int32Array(this.functionCount).fill(-1);
    const mapMap = new Int32Array(this.mappings.length).fill(-1);
    let locs = 0;
    for (let l = 0; l < locMap.length; l++) {
      if (locMap[l] < 0) continue;
      locMap[l] = locs++;
      if (this.locMapping[l] >= 0) mapMap[this.locMapping[l]] = 0;
      for (let j = this.lineStart[l]; j < this.lineStart[l + 1]; j++) fnMap[this.lineFn[j]] = 0;
    }
    const fns = dense(fnMap);
    const maps = dense(mapMap);

    // String ids in the file are given in first use, as encodeBlockSymbols gives them.
    const strMap = new Int32Array(this.strings.length).fill(-1);
    const used: string[] = [];
    const str = (id: number): number => (strMap[id] >= 0 ? strMap[id] : (strMap[id] = used.push(this.strings[id]) - 1));

    const file = new SymbolsFileWriter();
    file.count(maps);
    for (let g = 0; g < mapMap.length; g++) {
      if (mapMap[g] < 0) continue;
      const m = this.mappings[g];
      file.mapping(m, str(this.str(m.filename)), str(this.str(m.buildId)));
    }
    file.count(fns);
    for (let g = 0; g < fnMap.length; g++) {
      if (fnMap[g] >= 0) file.func(str(this.fnName[g]), str(this.fnSystem[g]), str(this.fnFile[g]), this.fnStart[g]);
    }
    file.count(locs);
    for (let l = 0; l < locMap.length; l++) {
      if (locMap[l] < 0) continue;
      const m = this.locMapping[l];
      file.locationHalves(m >= 0 ? mapMap[m] : -1, this.locAddr[2 * l], this.locAddr[2 * l + 1], this.locFolded[l] === 1, this.lineStart[l + 1] - this.lineStart[l]);
      for (let j = this.lineStart[l]; j < this.lineStart[l + 1]; j++) file.line(fnMap[this.lineFn[j]], this.lineNo[j]);
    }
    file.count(n);
    for (let id = 1; id < n; id++) file.stack(id - this.stackParent[id], locMap[this.stackLoc[id]]);
    return file.finish(used);
  }
}

function fnHash(name: number, systemName: number, filename: number, startLine: number): number {
  return mix(Math.imul(name, 0x9e3779b1) ^ Math.imul(systemName, 0x85ebca6b) ^ Math.imul(filename, 0xc2b2ae35) ^ startLine);
}

function stackHash(parent: number, loc: number): number {
  return mix(Math.imul(parent, 0x9e3779b1) ^ Math.imul(loc, 0x85ebca6b));
}

/** Numbers the entries set to 0 (used) in order, leaving -1 (unused); returns how many. */
function dense(map: Int32Array): number {
  let k = 0;
  for (let i = 0; i < map.length; i++) if (map[i] === 0) map[i] = k++;
  return k;
}
