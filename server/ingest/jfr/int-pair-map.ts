// A hash map from a pair of non-negative int32s to a non-negative int32, in typed arrays
// (open addressing, linear probing). The JFR hot paths key by (stack, context) and (function,
// line); a Map keyed by a composed double costs several times more per lookup.

export class IntPairMap {
  private ka: Int32Array;
  private kb: Int32Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.ka = new Int32Array(cap).fill(-1);
    this.kb = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    const ka = this.ka;
    let i = hash(a, b) & this.mask;
    for (;;) {
      const k = ka[i];
      if (k === -1) return -1;
      if (k === a && this.kb[i] === b) return this.vals[i];
      i = (i + 1) & this.mask;
    }
  }

  set(a: number, b: number, v: number) {
    if ((this.size + 1) * 2 > this.ka.length) this.grow();
    this.put(a, b, v);
  }

  private put(a: number, b: number, v: number) {
    const ka = this.ka;
    let i = hash(a, b) & this.mask;
    for (;;) {
      const k = ka[i];
      if (k === -1) {
        ka[i] = a;
        this.kb[i] = b;
        this.vals[i] = v;
        this.size++;
        return;
      }
      if (k === a && this.kb[i] === b) {
        this.vals[i] = v;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  private grow() {
    const { ka, kb, vals } = this;
    const cap = ka.length * 2;
    this.ka = new Int32Array(cap).fill(-1);
    this.kb = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < ka.length; i++) if (ka[i] !== -1) this.put(ka[i], kb[i], vals[i]);
  }
}

function hash(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b ^ (b >>> 15), 0x85ebca77);
  h ^= h >>> 16;
  return h;
}
