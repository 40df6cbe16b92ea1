// Constant-pool id → dense index. Writers number pool entries 1..n (async-profiler) or with
// sparse 64-bit ids (the JDK), so small ids go to a typed array and the rest to a Map.

const DENSE_LIMIT = 1 << 22;

export class IdIndex {
  private dense: Int32Array;
  private sparse: Map<number, number> | null = null;

  /** `capacity`: ids below it need no regrowth (a hint, e.g. another index's span). */
  constructor(capacity = 256) {
    this.dense = new Int32Array(Math.min(Math.max(capacity, 16), DENSE_LIMIT)).fill(-1);
  }

  /** One past the largest id the typed array covers. */
  get span() {
    return this.dense.length;
  }

  /** The index stored for `id`, or -1. */
  get(id: number): number {
    if (id < this.dense.length) return this.dense[id];
    if (this.sparse === null) return -1;
    return this.sparse.get(id) ?? -1;
  }

  set(id: number, index: number) {
    if (id < DENSE_LIMIT && Number.isInteger(id)) {
      if (id >= this.dense.length) {
        let cap = this.dense.length * 2;
        while (cap <= id) cap *= 2;
        const d = new Int32Array(cap).fill(-1);
        d.set(this.dense);
        this.dense = d;
      }
      this.dense[id] = index;
    } else {
      if (this.sparse === null) this.sparse = new Map();
      this.sparse.set(id, index);
    }
  }
}
