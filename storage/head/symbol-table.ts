// SymbolTable: per-tenant symbol interning, for a head and for a merge's output alike, so a stack
// seen a million times is stored once. Strings are interned once; functions, locations and stack
// nodes are rows of flat typed arrays, found through open-addressing hash tables that compare the
// rows themselves, so no key is stored twice and the garbage collector sees a few dozen arrays
// instead of an object per symbol (objects and Map entries cost a head several times the memory).
// Stack traces form a parent-pointer tree of locations. Objects are built only when an answer
// asks for a symbol (location(i), func(i), mapping(i)).

import type { Func, Location, Mapping, Profile } from "../model/profile.ts";
import { StringTable } from "../model/tree.ts";

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

/** Bytes of a JS string and its Map entry, and of a mapping object, roughly: for accounting. */
const STRING_BYTES = 48;
const MAPPING_BYTES = 200;

export class SymbolTable {
  /** Every string (function names, system names, file names); trees share it for frame names. */
  readonly names = new StringTable();
  /** UTF-16 code units of the distinct strings (their UTF-8 is about as long for symbol names). */
  stringChars = 0;

  /** Mappings are few (one per binary): objects, found by a key string. */
  readonly mappings: Mapping[] = [];
  private readonly mappingIds = new Map<string, number>();

  // Function i: strings fnName/fnSystem/fnFile[i] (ids in `names`), start line fnStart[i].
  functionCount = 0;
  fnName = new Uint32Array(64);
  fnSystem = new Uint32Array(64);
  fnFile = new Uint32Array(64);
  fnStart = new Float64Array(64);
  /** Function id + 1 by hash slot; 0 = empty. */
  private fnSlots = new Uint32Array(128);

  // Location i: mapping locMapping[i] (-1 none), address locAddr[2i] (low half), locAddr[2i + 1]
  // (high), folded locFolded[i], lines lineFn/lineNo[lineStart[i] .. lineStart[i + 1]).
  locationCount = 0;
  locMapping = new Int32Array(64);
  locAddr = new Uint32Array(128);
  locFolded = new Uint8Array(64);
  lineStart = new Uint32Array(65);
  lineFn = new Uint32Array(64);
  lineNo = new Int32Array(64);
  private lineCount = 0;
  private locSlots = new Uint32Array(128);

  // Stack node i (0 = the empty stack) = location stackLoc[i] called from stack stackParent[i].
  stackCount = 1;
  stackParent = new Uint32Array(1024);
  stackLoc = new Uint32Array(1024);
  /** Stack id by hash of (parent, location); 0 = empty (the root is never a child). */
  private stackSlots = new Uint32Array(2048);
  /** Whole-stack hash → stack id, for stacks met as samples: one probe per sample once known. */
  private sampleSlots = new Uint32Array(1024);
  private sampleCount = 0;

  // Scratch for a location's lines while it is interned.
  private tmpFn = new Uint32Array(16);
  private tmpNo = new Int32Array(16);

  /** Bytes held: the arrays as allocated, strings and mappings roughly. */
  get bytes(): number {
    const arrays = [this.fnName, this.fnSystem, this.fnFile, this.fnStart, this.fnSlots, this.locMapping, this.locAddr, this.locFolded, this.lineStart, this.lineFn, this.lineNo, this.locSlots, this.stackParent, this.stackLoc, this.stackSlots, this.sampleSlots];
    let n = 0;
    for (const a of arrays) n += a.byteLength;
    return n + this.names.size * STRING_BYTES + this.stringChars * 2 + this.mappings.length * MAPPING_BYTES;
  }

  /**
   * Makes room for at least these many entries at once, so a table about to be filled to a known
   * size (a merge's output, from its sources' sizes) is allocated once rather than grown by half
   * again and again, each growth leaving the arrays before it as garbage.
   */
  reserve(n: { functions: number; locations: number; lines: number; stacks: number }): void {
    if (n.functions > this.fnName.length) {
      this.fnName = growU32(this.fnName, n.functions);
      this.fnSystem = growU32(this.fnSystem, n.functions);
      this.fnFile = growU32(this.fnFile, n.functions);
      const st = new Float64Array(n.functions);
      st.set(this.fnStart);
      this.fnStart = st;
      this.fnSlots = this.rehash(Math.max(this.functionCount, n.functions), (id) => fnHash(this.fnName[id], this.fnSystem[id], this.fnFile[id], this.fnStart[id]), true, this.functionCount);
    }
    if (n.locations > this.locMapping.length) {
      this.locMapping = growI32(this.locMapping, n.locations);
      this.locAddr = growU32(this.locAddr, 2 * n.locations);
      const f = new Uint8Array(n.locations);
      f.set(this.locFolded);
      this.locFolded = f;
      this.lineStart = growU32(this.lineStart, n.locations + 1);
      this.locSlots = this.rehash(Math.max(this.locationCount, n.locations), (id) => this.locHash(id), true, this.locationCount);
    }
    if (n.lines > this.lineFn.length) {
      this.lineFn = growU32(this.lineFn, n.lines);
      this.lineNo = growI32(this.lineNo, n.lines);
    }
    if (n.stacks > this.stackParent.length) {
      this.stackParent = growU32(this.stackParent, n.stacks);
      this.stackLoc = growU32(this.stackLoc, n.stacks);
      this.stackSlots = this.rehash(Math.max(this.stackCount, n.stacks), (id) => stackHash(this.stackParent[id], this.stackLoc[id]), false, this.stackCount);
    }
  }

  private str(s: string): number {
    const before = this.names.size;
    const id = this.names.intern(s);
    if (id === before) this.stringChars += s.length;
    return id;
  }

  internMapping(m: Mapping): number {
    const key = `${m.memoryStart}|${m.memoryLimit}|${m.fileOffset}|${m.filename}|${m.buildId}|${+m.hasFunctions}${+m.hasFilenames}${+m.hasLineNumbers}${+m.hasInlineFrames}`;
    let id = this.mappingIds.get(key);
    if (id === undefined) {
      id = this.mappings.push(m) - 1;
      this.mappingIds.set(key, id);
      // Interned now: the block encoder looks strings up and must not add any.
      this.str(m.filename);
      this.str(m.buildId);
    }
    return id;
  }

  internFunction(name: string, systemName: string, filename: string, startLine: number): number {
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
   * The smallest slot table not too full for `count` ids (twice the one that filled up), holding
   * the `present` ids there are now. Ids are stored as id + 1 when `plusOne` (0 marks an empty
   * slot), else as they are, from 1.
   */
  private rehash(count: number, hash: (id: number) => number, plusOne: boolean, present = count): Uint32Array<ArrayBuffer> {
    let size = 2;
    while (full(count, { length: size })) size *= 2;
    const t = new Uint32Array(size);
    const mask = size - 1;
    for (let id = plusOne ? 0 : 1; id < present; id++) {
      let i = hash(id) & mask;
      while (t[i] !== 0) i = (i + 1) & mask;
      t[i] = plusOne ? id + 1 : id;
    }
    return t;
  }

  /** Room for a location of `n` lines in the scratch arrays. */
  lineScratch(n: number): { fn: Uint32Array; no: Int32Array } {
    if (n > this.tmpFn.length) {
      this.tmpFn = new Uint32Array(grow(n));
      this.tmpNo = new Int32Array(this.tmpFn.length);
    }
    return { fn: this.tmpFn, no: this.tmpNo };
  }

  /**
   * The location with mapping `mapping` (-1 none), address halves `lo`/`hi`, and the `n` lines
   * in lineScratch() (function ids here, line numbers), added if new.
   */
  internLocation(mapping: number, lo: number, hi: number, folded: number, n: number): number {
    const fns = this.tmpFn;
    const nos = this.tmpNo;
    let h = Math.imul(mapping + 1, 0x9e3779b1) ^ lo ^ Math.imul(hi, 0x85ebca6b) ^ folded;
    for (let j = 0; j < n; j++) {
      h = Math.imul(h ^ fns[j], 0x01000193);
      h = Math.imul(h ^ nos[j], 0x5bd1e995);
    }
    const mask = this.locSlots.length - 1;
    let i = mix(h) & mask;
    search: for (let slot = this.locSlots[i]; slot !== 0; slot = this.locSlots[(i = (i + 1) & mask)]) {
      const id = slot - 1;
      if (this.locMapping[id] !== mapping || this.locAddr[2 * id] !== lo || this.locAddr[2 * id + 1] !== hi || this.locFolded[id] !== folded) continue;
      const at = this.lineStart[id];
      if (this.lineStart[id + 1] - at !== n) continue;
      for (let j = 0; j < n; j++) if (this.lineFn[at + j] !== fns[j] || this.lineNo[at + j] !== nos[j]) continue search;
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
    if (this.lineCount + n > this.lineFn.length) {
      const c = grow(this.lineCount + n);
      this.lineFn = growU32(this.lineFn, c);
      this.lineNo = growI32(this.lineNo, c);
    }
    this.locMapping[id] = mapping;
    this.locAddr[2 * id] = lo;
    this.locAddr[2 * id + 1] = hi;
    this.locFolded[id] = folded;
    this.lineFn.set(fns.subarray(0, n), this.lineCount);
    this.lineNo.set(nos.subarray(0, n), this.lineCount);
    this.lineCount += n;
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

  /**
   * Interns the symbols `p` references and returns the id here of each of its locations (all of
   * them: they are few next to samples).
   */
  internLocations(p: Pick<Profile, "mappings" | "functions" | "locations">): Uint32Array {
    const mapIds = new Int32Array(p.mappings.length);
    for (let i = 0; i < p.mappings.length; i++) mapIds[i] = this.internMapping(p.mappings[i]);
    const fnIds = new Int32Array(p.functions.length).fill(-1);
    const out = new Uint32Array(p.locations.length);
    for (let i = 0; i < p.locations.length; i++) {
      const loc = p.locations[i];
      const lines = loc.lines;
      const { fn, no } = this.lineScratch(lines.length);
      for (let j = 0; j < lines.length; j++) {
        const l = lines[j];
        let g = fnIds[l.fn];
        if (g < 0) {
          const f = p.functions[l.fn];
          g = fnIds[l.fn] = this.internFunction(f.name, f.systemName, f.filename, f.startLine);
        }
        fn[j] = g;
        no[j] = l.line;
      }
      const a = loc.address;
      // Most addresses are 0 or fit 32 bits: only the rest pay for bigint arithmetic.
      const lo = a === 0n ? 0 : Number(a & 0xffffffffn);
      const hi = a === 0n ? 0 : Number(a >> 32n);
      out[i] = this.internLocation(loc.mapping >= 0 ? mapIds[loc.mapping] : -1, lo, hi, loc.isFolded ? 1 : 0, lines.length);
    }
    return out;
  }

  /**
   * Interns a sample's stack (local location indexes, leaf first, mapped through `globalLoc`) and
   * returns its id. The common case, a stack seen before, costs one hash and one probe.
   */
  internSampleStack(locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): number {
    if (from === to) return 0;
    let h = 0x811c9dc5;
    for (let i = from; i < to; i++) h = Math.imul(h ^ globalLoc[locs[i]], 0x01000193);
    const slots = this.sampleSlots;
    const mask = slots.length - 1;
    let i = mix(h) & mask;
    for (let id = slots[i]; id !== 0; id = slots[(i = (i + 1) & mask)]) {
      if (this.sameStack(id, locs, from, to, globalLoc)) return id;
    }
    let node = 0;
    for (let k = to - 1; k >= from; k--) node = this.internStackNode(node, globalLoc[locs[k]]);
    slots[i] = node;
    if (full(++this.sampleCount, slots)) this.sampleSlots = this.rehashSamples();
    return node;
  }

  private sameStack(id: number, locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): boolean {
    let node = id;
    for (let i = from; i < to; i++) {
      if (node === 0 || this.stackLoc[node] !== globalLoc[locs[i]]) return false;
      node = this.stackParent[node];
    }
    return node === 0;
  }

  private rehashSamples(): Uint32Array<ArrayBuffer> {
    let size = 2;
    while (full(this.sampleCount, { length: size })) size *= 2;
    const t = new Uint32Array(size);
    const mask = size - 1;
    const old = this.sampleSlots;
    for (let k = 0; k < old.length; k++) {
      const id = old[k];
      if (id === 0) continue;
      // The hash of a stack is over its locations leaf first: its parent chain, walked up.
      let h = 0x811c9dc5;
      for (let node = id; node !== 0; node = this.stackParent[node]) h = Math.imul(h ^ this.stackLoc[node], 0x01000193);
      let i = mix(h) & mask;
      while (t[i] !== 0) i = (i + 1) & mask;
      t[i] = id;
    }
    return t;
  }

  /**
   * The stack `loc` called from stack `parent` (0 = the root), added if new. Lets a block's
   * parent-pointer stack table be interned node by node, parents first, without rebuilding stacks.
   */
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

  location(i: number): Location {
    const lo = this.locAddr[2 * i];
    const hi = this.locAddr[2 * i + 1];
    const lines = [];
    for (let j = this.lineStart[i]; j < this.lineStart[i + 1]; j++) lines.push({ fn: this.lineFn[j], line: this.lineNo[j] });
    return { mapping: this.locMapping[i], address: hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo), lines, isFolded: this.locFolded[i] === 1 };
  }

  func(i: number): Func {
    const s = this.names.strings;
    return { name: s[this.fnName[i]], systemName: s[this.fnSystem[i]], filename: s[this.fnFile[i]], startLine: this.fnStart[i] };
  }

  mapping(i: number): Mapping {
    return this.mappings[i];
  }

  /** Name ids (in `names`) of a stack's frames, leaf first, inlined frames expanded. */
  stackNameIds(stackId: number, out: number[]): number[] {
    out.length = 0;
    for (let node = stackId; node !== 0; node = this.stackParent[node]) {
      const loc = this.stackLoc[node];
      for (let j = this.lineStart[loc]; j < this.lineStart[loc + 1]; j++) out.push(this.fnName[this.lineFn[j]]);
    }
    return out;
  }

  /** Function names of a stack, root first, with inlined frames expanded (caller before callee). */
  stackFrames(stackId: number, out: string[] = []): string[] {
    const ids = this.stackNameIds(stackId, []);
    out.length = 0;
    for (let j = ids.length - 1; j >= 0; j--) out.push(this.names.strings[ids[j]]);
    return out;
  }
}

function fnHash(name: number, systemName: number, filename: number, startLine: number): number {
  return mix(Math.imul(name, 0x9e3779b1) ^ Math.imul(systemName, 0x85ebca6b) ^ Math.imul(filename, 0xc2b2ae35) ^ startLine);
}

function stackHash(parent: number, loc: number): number {
  return mix(Math.imul(parent, 0x9e3779b1) ^ Math.imul(loc, 0x85ebca6b));
}
