// StackRemap: a block's stack ids → ids in another symbol table (a head's, or a merge's output),
// interned on first use, so the target gets only the stacks of the rows it keeps.

import type { BlockSymbols } from "./block-symbols.ts";

/** Where stacks are interned: a head's SymbolTable or a merge's MergeSymbols. */
export interface StackInterner {
  /** Interns all of `sym`'s locations; returns the id of each. */
  internLocations(sym: BlockSymbols): Uint32Array;
  /** The stack `loc` called from stack `parent` (0 = the root), added if new. */
  internStackNode(parent: number, loc: number): number;
}

const UNSET = 0xffffffff;

export class StackRemap {
  private readonly ids: Uint32Array;
  private readonly parent: Uint32Array;
  private readonly loc: Uint32Array;
  /** The block's symbols until their locations are interned; then only the stack tree is kept. */
  private sym: BlockSymbols | null;
  private globalLoc: Uint32Array | null = null;
  private path: number[] = [];
  /** An out-of-range block stack id met (then mapped to 0), or -1. */
  bad = -1;

  constructor(
    sym: BlockSymbols,
    private readonly into: StackInterner,
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

  private intern(id: number): number {
    const sym = this.into;
    // Locations are few next to samples: intern them all at the first stack that needs one, then
    // let the block's location, function and string objects go.
    if (!this.globalLoc) {
      this.globalLoc = sym.internLocations(this.sym!);
      this.sym = null;
    }
    const globalLoc = this.globalLoc;
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
