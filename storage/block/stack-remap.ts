// StackRemap: a block's stack ids → ids in another symbol table (a head's, or a merge's output),
// interned on first use, so the target gets only the stacks of the rows it keeps.

import type { SymbolTable } from "../head/symbol-table.ts";
import type { BlockSymbols } from "./block-symbols.ts";

/**
 * Interns all of `sym`'s mappings, functions and locations into `into`; returns each location's id
 * there. All of them, as a head does for a profile: they are few next to samples.
 */
export function internBlockLocations(into: SymbolTable, sym: BlockSymbols): Uint32Array {
  const mapIds = new Int32Array(sym.mappings.length);
  for (let i = 0; i < mapIds.length; i++) mapIds[i] = into.internMapping(sym.mappings[i]);
  const fnIds = new Int32Array(sym.functionCount).fill(-1);
  const p = sym.packed;
  // The addresses' 32-bit halves: hashing and comparing them needs no bigint.
  const addr = new Uint32Array(p.address.buffer, p.address.byteOffset, p.address.length * 2);
  const n = p.mapping.length;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const from = p.lineStart[i];
    const lines = p.lineStart[i + 1] - from;
    const { fn, no } = into.lineScratch(lines);
    for (let j = 0; j < lines; j++) {
      const b = p.lineFn[from + j];
      let g = fnIds[b];
      if (g < 0) {
        const f = sym.func(b);
        g = fnIds[b] = into.internFunction(f.name, f.systemName, f.filename, f.startLine);
      }
      fn[j] = g;
      no[j] = p.lineNo[from + j];
    }
    out[i] = into.internLocation(p.mapping[i] >= 0 ? mapIds[p.mapping[i]] : -1, addr[2 * i], addr[2 * i + 1], p.folded[i], lines);
  }
  return out;
}

const UNSET = 0xffffffff;

/** `a`, or a copy of it when it is a view of a larger buffer. */
function ownCopy(a: Uint32Array): Uint32Array {
  return a.byteLength === a.buffer.byteLength ? a : a.slice();
}

export class StackRemap {
  private readonly ids: Uint32Array;
  private parent: Uint32Array;
  private loc: Uint32Array;
  /** The block's symbols until their locations are interned; then only the stack tree is kept. */
  private sym: BlockSymbols | null;
  private globalLoc: Uint32Array | null = null;
  private path: number[] = [];
  /** An out-of-range block stack id met (then mapped to 0), or -1. */
  bad = -1;

  constructor(
    sym: BlockSymbols,
    private readonly into: SymbolTable,
  ) {
    this.sym = sym;
    this.parent = sym.stackParent;
    this.loc = sym.stackLoc;
    this.ids = new Uint32Array(sym.stackCount).fill(UNSET);
    this.ids[0] = 0;
  }

  get stackCount(): number {
    return this.ids.length;
  }

  /** Bytes this remap holds: 12 per block stack, plus 4 per location once interned. */
  get bytes(): number {
    return this.ids.byteLength * 3 + (this.globalLoc?.byteLength ?? 0);
  }

  map(id: number): number {
    const m = this.ids[id];
    if (m !== undefined && m !== UNSET) return m;
    if (!(id >= 0 && id < this.ids.length)) {
      this.bad = id;
      return 0;
    }
    return this.intern(id);
  }

  /**
   * Interns all of the block's locations now (else the first stack mapped does), and lets the
   * block's location, function and string objects go: they are few next to samples.
   */
  internLocations(): Uint32Array {
    if (!this.globalLoc) {
      this.globalLoc = internBlockLocations(this.into, this.sym!);
      this.sym = null;
      // The stack tree may be a view of the whole symbols file: copied, the rest of it can go.
      this.parent = ownCopy(this.parent);
      this.loc = ownCopy(this.loc);
    }
    return this.globalLoc;
  }

  private intern(id: number): number {
    const sym = this.into;
    const globalLoc = this.internLocations();
    // Block stacks list parents before children, as a head's do. Climb to the nearest ancestor
    // already mapped, then intern back down to `id`.
    const path = this.path;
    path.length = 0;
    let node = id;
    while (this.ids[node] === UNSET) {
      path.push(node);
      node = this.parent[node];
    }
    let parent = this.ids[node];
    for (let i = path.length - 1; i >= 0; i--) {
      const b = path[i];
      parent = sym.internStackNode(parent, globalLoc[this.loc[b]]);
      this.ids[b] = parent;
    }
    return parent;
  }
}
