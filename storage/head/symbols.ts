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
  private functionIds = new Map<string, number>();
  private locationIds = new Map<string, number>();

  // Stack node i (1-based; 0 is the empty root) = location stackLoc[i] called from stackParent[i].
  stackParent = new Uint32Array(1024);
  stackLoc = new Uint32Array(1024);
  stackCount = 1;
  private stackIds = new Map<number, number>();

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
    const key = `${f.name}\0${f.systemName}\0${f.filename}\0${f.startLine}`;
    let id = this.functionIds.get(key);
    if (id === undefined) {
      id = this.functions.length;
      this.functions.push(f);
      this.functionNameId.push(this.names.intern(f.name));
      this.functionIds.set(key, id);
      this.bytes += 48 + key.length * 2;
    }
    return id;
  }

  /**
   * Interns the symbols `p` references and returns the global location id of each local location
   * index (computed for all locations: they are few next to samples).
   */
  internLocations(p: Profile): Uint32Array {
    const mapIds = new Int32Array(p.mappings.length);
    for (let i = 0; i < p.mappings.length; i++) mapIds[i] = this.internMapping(p.mappings[i]);
    const fnIds = new Int32Array(p.functions.length).fill(-1);
    const out = new Uint32Array(p.locations.length);
    for (let i = 0; i < p.locations.length; i++) {
      const loc = p.locations[i];
      const mapping = loc.mapping >= 0 ? mapIds[loc.mapping] : -1;
      const lines: Line[] = new Array(loc.lines.length);
      let key = `${mapping}|${loc.address}|${+loc.isFolded}`;
      for (let j = 0; j < loc.lines.length; j++) {
        const l = loc.lines[j];
        let fn = fnIds[l.fn];
        if (fn < 0) fn = fnIds[l.fn] = this.internFunction(p.functions[l.fn]);
        lines[j] = { fn, line: l.line };
        key += `|${fn}:${l.line}`;
      }
      let id = this.locationIds.get(key);
      if (id === undefined) {
        id = this.locations.length;
        this.locations.push({ mapping, address: loc.address, lines, isFolded: loc.isFolded });
        this.locationIds.set(key, id);
        this.bytes += 64 + key.length * 2;
      }
      out[i] = id;
    }
    return out;
  }

  /** Interns the stack given as global location ids, leaf first (pprof order); returns its id. */
  internStack(locs: Uint32Array, from: number, to: number, globalLoc: Uint32Array): number {
    let node = 0;
    for (let i = to - 1; i >= from; i--) {
      const loc = globalLoc[locs[i]];
      const key = node * STACK_KEY_BASE + loc;
      let next = this.stackIds.get(key);
      if (next === undefined) {
        next = this.stackCount++;
        if (next >= this.stackParent.length) this.growStacks();
        this.stackParent[next] = node;
        this.stackLoc[next] = loc;
        this.stackIds.set(key, next);
        this.bytes += 40;
      }
      node = next;
    }
    return node;
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
