// Per-tenant symbol interning: strings, mappings, functions, locations and stack traces, so a
// stack seen a million times is stored once. Stack traces form a parent-pointer tree of locations.

import type { Func, Line, Location, Mapping, Profile } from "../model/profile.ts";
import { StringTable } from "../model/tree.ts";

const STACK_KEY_BASE = 0x4000000; // 2^26: (parent, location) pairs pack into one safe integer

export class SymbolTable {
  readonly mappings: Mapping[] = [];
  readonly functions: Func[] = [];
  /** Function names interned once, so merge queries build trees from ints, not strings. */
  readonly names = new StringTable();
  readonly functionNameId: number[] = [];
  /** Global locations; `mapping` and line `fn` refer to this table's mappings/functions. */
  readonly locations: Location[] = [];
  private mappingIds = new Map<string, number>();
  private functionsByName = new Map<string, number[]>();
  private locationIds = new Map<number, number>();
  private locationCollisions = new Map<number, number[]>();

  // Stack node i (1-based; 0 is the empty root) = location stackLoc[i] called from stackParent[i].
  stackParent = new Uint32Array(1024);
  stackLoc = new Uint32Array(1024);
  stackCount = 1;
  private stackIds = new Map<number, number>();
  // Whole-stack hash → stack id: one lookup per sample once a service's stacks are known.
  private stackByHash = new Map<number, number>();

  /** Rough bytes held, for the head's size accounting. */
  bytes = 0;

  private internMapping(m: Mapping): number {
    const key = `${m.memoryStart}|${m.memoryLimit}|${m.fileOffset}|${m.filename}|${m.buildId}|${+m.hasFunctions}${+m.hasFilenames}${+m.hasLineNumbers}${+m.hasInlineFrames}`;
    let id = this.mappingIds.get(key);
    if (id === undefined) {
      id = this.mappings.length;
      this.mappings.push(m);
      this.mappingIds.set(key, id);
      this.bytes += 64 + key.length;
    }
    return id;
  }

  private internFunction(f: Func): number {
    // Keyed by name, then compared field by field: no key strings built per function.
    const same = this.functionsByName.get(f.name);
    if (same !== undefined) {
      for (const id of same) {
        const g = this.functions[id];
        if (g.systemName === f.systemName && g.filename === f.filename && g.startLine === f.startLine) return id;
      }
    }
    const id = this.functions.length;
    this.functions.push(f);
    this.functionNameId.push(this.names.intern(f.name));
    if (same) same.push(id);
    else this.functionsByName.set(f.name, [id]);
    this.bytes += 64 + (f.name.length + f.systemName.length + f.filename.length) * 2;
    return id;
  }

  /**
   * Interns the symbols `p` references and returns the global location id of each local location
   * index (computed for all locations: they are few next to samples). Locations are looked up by a
   * numeric hash and verified field by field, which keeps string building off the ingest path.
   */
  internLocations(p: Pick<Profile, "mappings" | "functions" | "locations">): Uint32Array {
    const mapIds = new Int32Array(p.mappings.length);
    for (let i = 0; i < p.mappings.length; i++) mapIds[i] = this.internMapping(p.mappings[i]);
    const fnIds = new Int32Array(p.functions.length).fill(-1);
    const out = new Uint32Array(p.locations.length);
    for (let i = 0; i < p.locations.length; i++) {
      const loc = p.locations[i];
      const mapping = loc.mapping >= 0 ? mapIds[loc.mapping] : -1;
      const n = loc.lines.length;
      let h1 = Math.imul(0x811c9dc5 ^ (mapping + 1), 0x01000193);
      let h2 = Math.imul(0x2545f491 ^ (loc.isFolded ? 1 : 2), 0x5bd1e995);
      if (loc.address !== 0n) {
        const a = Number(loc.address & 0xffffffffn);
        const b = Number(loc.address >> 32n);
        h1 = Math.imul(h1 ^ a, 0x01000193);
        h2 = Math.imul(h2 ^ b, 0x5bd1e995);
      }
      for (let j = 0; j < n; j++) {
        const l = loc.lines[j];
        let fn = fnIds[l.fn];
        if (fn < 0) fn = fnIds[l.fn] = this.internFunction(p.functions[l.fn]);
        fnIds[l.fn] = fn;
        h1 = Math.imul(h1 ^ fn, 0x01000193);
        h2 = Math.imul(h2 ^ l.line, 0x5bd1e995);
        h2 ^= h2 >>> 13;
      }
      const key = (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
      let id = this.locationIds.get(key);
      // On a hash collision with a different location, fall back to a linear search of the bucket.
      if (id !== undefined && !this.sameLocation(id, mapping, loc, fnIds)) {
        id = undefined;
        for (const other of this.locationCollisions.get(key) ?? []) {
          if (this.sameLocation(other, mapping, loc, fnIds)) {
            id = other;
            break;
          }
        }
        if (id === undefined) {
          id = this.addLocation(mapping, loc, fnIds);
          const list = this.locationCollisions.get(key);
          if (list) list.push(id);
          else this.locationCollisions.set(key, [id]);
        }
      } else if (id === undefined) {
        id = this.addLocation(mapping, loc, fnIds);
        this.locationIds.set(key, id);
      }
      out[i] = id;
    }
    return out;
  }

  private sameLocation(id: number, mapping: number, loc: Location, fnIds: Int32Array): boolean {
    const g = this.locations[id];
    if (g.mapping !== mapping || g.address !== loc.address || g.isFolded !== loc.isFolded || g.lines.length !== loc.lines.length) return false;
    for (let j = 0; j < g.lines.length; j++) if (g.lines[j].fn !== fnIds[loc.lines[j].fn] || g.lines[j].line !== loc.lines[j].line) return false;
    return true;
  }

  private addLocation(mapping: number, loc: Location, fnIds: Int32Array): number {
    const id = this.locations.length;
    const lines: Line[] = loc.lines.map((l) => ({ fn: fnIds[l.fn], line: l.line }));
    this.locations.push({ mapping, address: loc.address, lines, isFolded: loc.isFolded });
    this.bytes += 80 + lines.length * 32;
    return id;
  }

  /**
   * Interns a sample's stack (local location indexes, leaf first, mapped through `globalLoc`) and
   * returns its id. The common case, a stack seen before, costs one hash and one map lookup.
   */
  internSampleStack(locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): number {
    if (from === to) return 0;
    let h1 = 0x811c9dc5;
    let h2 = 0x2545f491;
    for (let i = from; i < to; i++) {
      const g = globalLoc[locs[i]];
      h1 = Math.imul(h1 ^ g, 0x01000193);
      h2 = Math.imul(h2 ^ g, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    const key = (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
    const known = this.stackByHash.get(key);
    if (known !== undefined && this.sameStack(known, locs, from, to, globalLoc)) return known;
    const id = this.internStack(locs, from, to, globalLoc);
    if (known === undefined) this.stackByHash.set(key, id);
    return id;
  }

  private sameStack(id: number, locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): boolean {
    let node = id;
    for (let i = from; i < to; i++) {
      if (node === 0 || this.stackLoc[node] !== globalLoc[locs[i]]) return false;
      node = this.stackParent[node];
    }
    return node === 0;
  }

  /** Interns the stack given as global location ids, leaf first (pprof order); returns its id. */
  internStack(locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): number {
    let node = 0;
    for (let i = to - 1; i >= from; i--) node = this.internStackNode(node, globalLoc[locs[i]]);
    return node;
  }

  /**
   * The stack `loc` called from stack `parent` (0 = the root), added if new. Lets a block's
   * parent-pointer stack table be interned node by node, parents first, without rebuilding stacks.
   */
  internStackNode(parent: number, loc: number): number {
    const key = parent * STACK_KEY_BASE + loc;
    let next = this.stackIds.get(key);
    if (next === undefined) {
      next = this.stackCount++;
      if (next >= this.stackParent.length) this.growStacks();
      this.stackParent[next] = parent;
      this.stackLoc[next] = loc;
      this.stackIds.set(key, next);
      this.bytes += 40;
    }
    return next;
  }

  private growStacks() {
    const n = this.stackParent.length * 2;
    const p = new Uint32Array(n);
    p.set(this.stackParent);
    const l = new Uint32Array(n);
    l.set(this.stackLoc);
    this.stackParent = p;
    this.stackLoc = l;
  }

  location(i: number): Location {
    return this.locations[i];
  }

  func(i: number): Func {
    return this.functions[i];
  }

  mapping(i: number): Mapping {
    return this.mappings[i];
  }

  /** Name ids (in `names`) of a stack's frames, leaf first, inlined frames expanded. */
  stackNameIds(stackId: number, out: number[]): number[] {
    out.length = 0;
    for (let node = stackId; node !== 0; node = this.stackParent[node]) {
      const lines = this.locations[this.stackLoc[node]].lines;
      for (let j = 0; j < lines.length; j++) out.push(this.functionNameId[lines[j].fn]);
    }
    return out;
  }

  /** Function names of a stack, root first, with inlined frames expanded (caller before callee). */
  stackFrames(stackId: number, out: string[] = []): string[] {
    out.length = 0;
    for (let node = stackId; node !== 0; node = this.stackParent[node]) {
      const lines = this.locations[this.stackLoc[node]].lines;
      // lines[0] is the innermost frame; walking leaf→root we push innermost first, then reverse.
      for (let j = 0; j < lines.length; j++) out.push(this.functions[lines[j].fn].name);
    }
    return out.reverse();
  }
}
