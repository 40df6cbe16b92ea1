// Stack traces of a recording resolved to frame names, interned across chunks: each distinct frame
// name is one function, each (function, line) one location, and each JFR stack trace becomes a
// leaf-first list of locations, resolved once however many events point at it.

import { IdIndex } from "./id-index.ts";
import { IntPairMap } from "./int-pair-map.ts";
import type { ConstantPools } from "./jfr-constant-pools.ts";

const UNRESOLVED = -1;
const MISSING = -2;

export class StackTable {
  readonly funcNames: string[] = [];
  private readonly funcByName = new Map<string, number>();
  readonly locFunc: number[] = [];
  readonly locLine: number[] = [];
  private readonly locByKey = new IntPairMap(4096);
  /** Stack s has locations locs[stackStart[s] .. stackStart[s + 1]), leaf first. */
  stackStart = new Uint32Array(1024);
  locs = new Uint32Array(16384);
  nStacks = 0;
  private nLocs = 0;
  /** Content hash → first stack with it; sameHash chains the others, so chunks share stacks. */
  private readonly byHash = new Map<number, number>();
  private sameHash = new Int32Array(1024);

  private pools: ConstantPools | null = null;
  /** Per chunk: JFR stack trace id → stack index, or MISSING when the chunk lacks it. */
  private chunkStacks = new IdIndex();
  /** Per chunk: method index in the pools → function index (-1: unresolvable). */
  private chunkFuncs = new Int32Array(0);

  /** Ids are only meaningful within a chunk, so the caches start over with each one. */
  beginChunk(pools: ConstantPools) {
    this.pools = pools;
    this.chunkStacks = new IdIndex(pools.stacks.span);
    this.chunkFuncs = new Int32Array(pools.methodClass.length).fill(UNRESOLVED);
  }

  /** The stack index for JFR stack trace `id` of the current chunk, or -1 when it is missing. */
  stack(id: number): number {
    const s = this.chunkStacks.get(id);
    if (s >= 0) return s;
    if (s === MISSING) return -1;
    const r = this.resolve(id);
    this.chunkStacks.set(id, r < 0 ? MISSING : r);
    return r;
  }

  get locationCount() {
    return this.locFunc.length;
  }

  private resolve(id: number): number {
    const p = this.pools!;
    const idx = p.stacks.get(id);
    if (idx < 0) return -1;
    const start = p.stackStart[idx];
    const len = p.stackLen[idx];
    this.reserve(len);
    const locs = this.locs;
    const o0 = this.nLocs;
    let o = o0;
    let h = len;
    for (let i = start; i < start + len; i++) {
      const m = p.methods.get(p.frameMethod[i]);
      // A frame whose method or class is missing is dropped, as Pyroscope's parser drops it.
      if (m < 0) continue;
      const fn = this.func(m);
      if (fn < 0) continue;
      const l = this.location(fn, p.frameLine[i]);
      locs[o++] = l;
      h = Math.imul(h ^ l, 0x01000193);
    }
    // The same stack in another chunk (ids differ per chunk) resolves to the same index.
    let same = this.byHash.get(h) ?? -1;
    const first = same;
    for (; same >= 0; same = this.sameHash[same]) {
      const a = this.stackStart[same];
      if (this.stackStart[same + 1] - a !== o - o0) continue;
      let eq = true;
      for (let j = 0; j < o - o0 && eq; j++) eq = locs[a + j] === locs[o0 + j];
      if (eq) return same;
    }
    this.nLocs = o;
    const s = this.nStacks++;
    if (s + 2 > this.stackStart.length) {
      const a = new Uint32Array(this.stackStart.length * 2);
      a.set(this.stackStart);
      this.stackStart = a;
      const c = new Int32Array(this.sameHash.length * 2);
      c.set(this.sameHash);
      this.sameHash = c;
    }
    this.stackStart[s + 1] = o;
    this.sameHash[s] = first;
    this.byHash.set(h, s);
    return s;
  }

  private func(m: number): number {
    const cached = this.chunkFuncs[m];
    if (cached !== UNRESOLVED) return cached;
    const p = this.pools!;
    const cls = p.classes.get(p.methodClass[m]);
    let fn = MISSING;
    if (cls >= 0) {
      const name = p.symbol(p.classNameSymbol[cls]) + "." + p.symbol(p.methodName[m]);
      const known = this.funcByName.get(name);
      if (known !== undefined) fn = known;
      else {
        fn = this.funcNames.length;
        this.funcNames.push(name);
        this.funcByName.set(name, fn);
      }
    }
    this.chunkFuncs[m] = fn;
    return fn;
  }

  private location(fn: number, line: number): number {
    let l = this.locByKey.get(fn, line);
    if (l < 0) {
      l = this.locFunc.length;
      this.locFunc.push(fn);
      this.locLine.push(line);
      this.locByKey.set(fn, line, l);
    }
    return l;
  }

  private reserve(n: number) {
    const need = this.nLocs + n;
    if (need <= this.locs.length) return;
    let cap = this.locs.length * 2;
    while (cap < need) cap *= 2;
    const a = new Uint32Array(cap);
    a.set(this.locs.subarray(0, this.nLocs));
    this.locs = a;
  }
}
