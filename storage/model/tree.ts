// A name-keyed call tree: stacks merged by frame name, the shape every flame graph query reduces
// to. Nodes live in typed arrays and names are ints in a (shareable) string table, so inserting
// and merging allocate nothing per node. Also Pyroscope's TREE byte format and collapsed stacks.

/** Interned strings; trees sharing one table merge without remapping names. */
export class StringTable {
  readonly strings: string[] = [];
  private ids = new Map<string, number>();
  private encoded: (Uint8Array | undefined)[] = [];

  get size(): number {
    return this.strings.length;
  }

  intern(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  /** The id of `s`, or -1 when it was never interned. */
  lookup(s: string): number {
    return this.ids.get(s) ?? -1;
  }

  get(id: number): string {
    return this.strings[id];
  }

  utf8(id: number): Uint8Array {
    return (this.encoded[id] ??= textEncoder.encode(this.strings[id]));
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Compares strings by their UTF-8 bytes. UTF-16 order agrees except between surrogate pairs
 * (code points above U+FFFF) and U+E000..U+FFFF, which are swapped at the first difference.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Children of every node in CSR form: node i's children are list[start[i] .. start[i+1]), by name. */
export interface ChildIndex {
  start: Int32Array;
  list: Int32Array;
}

const ROOT = 0;
const OTHER = "other";

/**
 * Nodes keyed by (parent, name) in a hash, children listed on demand in Go's name order. The
 * root (node 0) has no name; its total is the sum of every inserted value.
 */
export class Tree {
  readonly strings: StringTable;
  /** Nodes, root at 0. Parents always precede their children. Read-only outside this file. */
  nodeNameId: Int32Array;
  nodeParent: Int32Array;
  nodeSelf: Float64Array;
  nodeTotal: Float64Array;
  private n = 1;
  // Open-addressing hash of (parent, name) → node, 3 ints per slot so a probe touches one cache
  // line; node 0 marks an empty slot (the root is nobody's child).
  private slots: Int32Array;
  private slotCount: number;
  private childIndex: ChildIndex | null = null;

  constructor(strings: StringTable = new StringTable(), capacity = 64) {
    this.strings = strings;
    const cap = Math.max(2, capacity);
    this.nodeNameId = new Int32Array(cap);
    this.nodeParent = new Int32Array(cap);
    this.nodeSelf = new Float64Array(cap);
    this.nodeTotal = new Float64Array(cap);
    this.nodeNameId[ROOT] = -1;
    this.nodeParent[ROOT] = -1;
    this.slotCount = nextPow2(cap * 2);
    this.slots = new Int32Array(this.slotCount * 3);
  }

  /** Number of nodes, not counting the root. */
  get size(): number {
    return this.n - 1;
  }

  total(): number {
    return this.nodeTotal[ROOT];
  }

  nameOf(node: number): string {
    return node === ROOT ? "" : this.strings.strings[this.nodeNameId[node]];
  }

  /**
   * Adds `value` to the stack (root first). Like Pyroscope's InsertStack, values <= 0 and empty
   * stacks are ignored.
   */
  insertStack(frames: readonly string[], value: number): void {
    if (!(value > 0) || frames.length === 0) return;
    const strings = this.strings;
    let node = ROOT;
    this.nodeTotal[ROOT] += value;
    for (let i = 0; i < frames.length; i++) {
      node = this.child(node, strings.intern(frames[i]));
      this.nodeTotal[node] += value;
    }
    this.nodeSelf[node] += value;
  }

  /** insertStack for names already interned in this.strings; `leafFirst` reads ids backwards. */
  insertStackIds(ids: ArrayLike<number>, value: number, leafFirst = false): void {
    const len = ids.length;
    if (!(value > 0) || len === 0) return;
    let node = ROOT;
    this.nodeTotal[ROOT] += value;
    for (let i = 0; i < len; i++) {
      node = this.child(node, ids[leafFirst ? len - 1 - i : i]);
      this.nodeTotal[node] += value;
    }
    this.nodeSelf[node] += value;
  }

  /** Adds every stack of `other` into this tree. */
  merge(other: Tree): void {
    const m = other.n;
    if (m <= 1) return;
    let remap: Int32Array | null = null;
    if (other.strings !== this.strings) {
      remap = new Int32Array(other.strings.size).fill(-1);
    }
    if (this.n === 1) {
      this.copyFrom(other, remap);
      return;
    }
    const map = new Int32Array(m);
    const oName = other.nodeNameId;
    const oParent = other.nodeParent;
    const oSelf = other.nodeSelf;
    const oTotal = other.nodeTotal;
    for (let i = 1; i < m; i++) {
      let id = oName[i];
      if (remap) {
        let r = remap[id];
        if (r < 0) r = remap[id] = this.strings.intern(other.strings.strings[id]);
        id = r;
      }
      const k = this.child(map[oParent[i]], id);
      this.nodeSelf[k] += oSelf[i];
      this.nodeTotal[k] += oTotal[i];
      map[i] = k;
    }
    this.nodeTotal[ROOT] += oTotal[ROOT];
  }

  /** Children of every node, sorted by name in Go's byte order; cached until a node is added. */
  sortedChildren(): ChildIndex {
    if (this.childIndex) return this.childIndex;
    const n = this.n;
    const parent = this.nodeParent;
    const start = new Int32Array(n + 1);
    for (let i = 1; i < n; i++) start[parent[i] + 1]++;
    for (let i = 0; i < n; i++) start[i + 1] += start[i];
    const fill = start.slice(0, n);
    const list = new Int32Array(Math.max(0, n - 1));
    for (let i = 1; i < n; i++) list[fill[parent[i]]++] = i;
    const name = this.nodeNameId;
    const rank = this.nameRanks();
    for (let p = 0; p < n; p++) {
      const a = start[p];
      const b = start[p + 1];
      const len = b - a;
      if (len < 2) continue;
      if (len <= 16) {
        for (let i = a + 1; i < b; i++) {
          const x = list[i];
          const rx = rank[name[x]];
          let j = i - 1;
          while (j >= a && rank[name[list[j]]] > rx) {
            list[j + 1] = list[j];
            j--;
          }
          list[j + 1] = x;
        }
      } else {
        list.subarray(a, b).sort((x, y) => rank[name[x]] - rank[name[y]]);
      }
    }
    this.childIndex = { start, list };
    return this.childIndex;
  }

  /**
   * rank[id] orders the names this tree uses in UTF-8 byte order (Go's string order, which
   * Pyroscope sorts children by). Only used names are sorted: a shared table may be much larger.
   */
  private nameRanks(): Int32Array {
    const ss = this.strings.strings;
    const rank = new Int32Array(ss.length);
    const used: number[] = [];
    const name = this.nodeNameId;
    for (let i = 1; i < this.n; i++) {
      const id = name[i];
      if (rank[id] === 0) {
        rank[id] = 1;
        used.push(id);
      }
    }
    used.sort((a, b) => compareUtf8(ss[a], ss[b]));
    for (let i = 0; i < used.length; i++) rank[used[i]] = i;
    return rank;
  }

  /** The children of `node`, sorted by name. */
  children(node: number): Int32Array {
    const { start, list } = this.sortedChildren();
    return list.subarray(start[node], start[node + 1]);
  }

  /**
   * Calls `cb` for every node with self > 0, in depth-first name order, with its stack (root
   * first). The array is reused between calls: copy it to keep it.
   */
  forEachStack(cb: (stack: string[], self: number) => void): void {
    const { start, list } = this.sortedChildren();
    const ss = this.strings.strings;
    const stack: string[] = [];
    const visit: number[] = [];
    const depth: number[] = [];
    for (let i = start[ROOT + 1] - 1; i >= start[ROOT]; i--) {
      visit.push(list[i]);
      depth.push(0);
    }
    while (visit.length > 0) {
      const node = visit.pop()!;
      const d = depth.pop()!;
      stack.length = d;
      stack.push(ss[this.nodeNameId[node]]);
      if (this.nodeSelf[node] > 0) cb(stack, this.nodeSelf[node]);
      for (let i = start[node + 1] - 1; i >= start[node]; i--) {
        visit.push(list[i]);
        depth.push(d + 1);
      }
    }
  }

  /**
   * The smallest total a node needs to survive truncation to `maxNodes` (Pyroscope's minValue):
   * 0 when maxNodes < 1 or the tree is small enough, else the maxNodes-th largest node total.
   */
  minValue(maxNodes: number): number {
    const count = this.n - 1;
    if (maxNodes < 1 || count <= maxNodes) return 0;
    const k = Math.floor(maxNodes);
    const heap = new Float64Array(k);
    let len = 0;
    const total = this.nodeTotal;
    for (let i = 1; i <= count; i++) {
      const t = total[i];
      if (len < k) {
        let j = len++;
        while (j > 0) {
          const p = (j - 1) >> 1;
          if (heap[p] <= t) break;
          heap[j] = heap[p];
          j = p;
        }
        heap[j] = t;
      } else if (t > heap[0]) {
        let j = 0;
        for (;;) {
          const l = 2 * j + 1;
          if (l >= k) break;
          const r = l + 1;
          const c = r < k && heap[r] < heap[l] ? r : l;
          if (heap[c] >= t) break;
          heap[j] = heap[c];
          j = c;
        }
        heap[j] = t;
      }
    }
    return heap[0];
  }

  /** Finds or creates the child of `parent` named `nameId` (an id in this.strings). */
  child(parent: number, nameId: number): number {
    const slots = this.slots;
    const mask = this.slotCount - 1;
    let s = hash(parent, nameId) & mask;
    for (;;) {
      const o = s * 3;
      const k = slots[o + 2];
      if (k === 0) break;
      if (slots[o] === parent && slots[o + 1] === nameId) return k;
      s = (s + 1) & mask;
    }
    if (this.n === this.nodeNameId.length) this.grow();
    const k = this.n++;
    this.nodeNameId[k] = nameId;
    this.nodeParent[k] = parent;
    const o = s * 3;
    slots[o] = parent;
    slots[o + 1] = nameId;
    slots[o + 2] = k;
    if (this.n * 2 > this.slotCount) this.rehash(this.slotCount * 2);
    this.childIndex = null;
    return k;
  }

  /** merge into an empty tree: copy the arrays and rebuild the hash, no per-node probing. */
  private copyFrom(other: Tree, remap: Int32Array | null) {
    const m = other.n;
    const cap = Math.max(m, 2);
    this.nodeNameId = other.nodeNameId.slice(0, cap);
    this.nodeParent = other.nodeParent.slice(0, cap);
    this.nodeSelf = other.nodeSelf.slice(0, cap);
    this.nodeTotal = other.nodeTotal.slice(0, cap);
    if (remap) {
      const name = this.nodeNameId;
      for (let i = 1; i < m; i++) {
        const id = name[i];
        let r = remap[id];
        if (r < 0) r = remap[id] = this.strings.intern(other.strings.strings[id]);
        name[i] = r;
      }
    }
    this.n = m;
    this.rehash(nextPow2(Math.max(4, m * 2)));
    this.childIndex = null;
  }

  private grow() {
    const cap = this.nodeNameId.length * 2;
    const name = new Int32Array(cap);
    name.set(this.nodeNameId);
    this.nodeNameId = name;
    const parent = new Int32Array(cap);
    parent.set(this.nodeParent);
    this.nodeParent = parent;
    const self = new Float64Array(cap);
    self.set(this.nodeSelf);
    this.nodeSelf = self;
    const total = new Float64Array(cap);
    total.set(this.nodeTotal);
    this.nodeTotal = total;
  }

  private rehash(slotCount: number) {
    const slots = new Int32Array(slotCount * 3);
    const mask = slotCount - 1;
    const name = this.nodeNameId;
    const parent = this.nodeParent;
    for (let k = 1; k < this.n; k++) {
      let s = hash(parent[k], name[k]) & mask;
      while (slots[s * 3 + 2] !== 0) s = (s + 1) & mask;
      const o = s * 3;
      slots[o] = parent[k];
      slots[o + 1] = name[k];
      slots[o + 2] = k;
    }
    this.slots = slots;
    this.slotCount = slotCount;
  }
}

function hash(parent: number, nameId: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ Math.imul(nameId, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/** stack "a;b;c" (root first) → self value, for every node with self > 0, in name order. */
export function collapsed(tree: Tree): Map<string, number> {
  const out = new Map<string, number>();
  tree.forEachStack((stack, self) => {
    const key = stack.join(";");
    out.set(key, (out.get(key) ?? 0) + self);
  });
  return out;
}

/**
 * Pyroscope's TREE format (pkg/model/tree.go MarshalTruncate): pre-order, each node as
 * `uvarint len(name), name, uvarint self, uvarint childCount`, starting with a virtual root
 * (empty name, self 0). Children whose total is below minValue(maxNodes) are summed into an
 * `other` child (self = their total), merged into an existing `other` child if there is one.
 * Children are written last-name-first, as Pyroscope's stack walk emits them. The tree is not
 * modified. maxNodes < 1 means no truncation. An empty tree gives no bytes.
 */
export function treeToBytes(tree: Tree, maxNodes: number): Uint8Array {
  if (tree.size === 0) return new Uint8Array(0);
  const minVal = tree.minValue(maxNodes);
  const { start, list } = tree.sortedChildren();
  const strings = tree.strings;
  const otherId = strings.lookup(OTHER);
  const otherBytes = textEncoder.encode(OTHER);
  const nameId = tree.nodeNameId;
  const selfOf = tree.nodeSelf;
  const totalOf = tree.nodeTotal;
  const w = new ByteWriter(Math.max(64, tree.size * 12));
  // A node index, or -1 for a synthetic `other`; `extra` is self added by truncation.
  let stackNode = new Int32Array(256);
  let stackExtra = new Float64Array(256);
  let sp = 0;
  const push = (node: number, extra: number) => {
    if (sp === stackNode.length) {
      const n = new Int32Array(sp * 2);
      n.set(stackNode);
      stackNode = n;
      const e = new Float64Array(sp * 2);
      e.set(stackExtra);
      stackExtra = e;
    }
    stackNode[sp] = node;
    stackExtra[sp++] = extra;
  };
  push(ROOT, 0);
  while (sp > 0) {
    sp--;
    const node = stackNode[sp];
    const extra = stackExtra[sp];
    if (node < 0) {
      w.uvarint(otherBytes.length);
      w.bytes(otherBytes);
      w.uvarint(extra);
      w.uvarint(0);
      continue;
    }
    if (node === ROOT) {
      w.uvarint(0);
      w.uvarint(0);
    } else {
      const b = strings.utf8(nameId[node]);
      w.uvarint(b.length);
      w.bytes(b);
      w.uvarint(selfOf[node] + extra);
    }
    const a = start[node];
    const e = start[node + 1];
    let other = 0;
    let existingOther = -1;
    for (let i = a; i < e; i++) {
      const c = list[i];
      if (nameId[c] === otherId) existingOther = c;
      else if (totalOf[c] < minVal) other += totalOf[c];
    }
    let count = 0;
    let synthetic = other > 0 && existingOther < 0;
    for (let i = a; i < e; i++) {
      const c = list[i];
      if (c !== existingOther && totalOf[c] < minVal) continue;
      if (synthetic && compareUtf8(strings.strings[nameId[c]], OTHER) > 0) {
        push(-1, other);
        count++;
        synthetic = false;
      }
      push(c, c === existingOther ? other : 0);
      count++;
    }
    if (synthetic) {
      push(-1, other);
      count++;
    }
    w.uvarint(count);
  }
  return w.finish();
}

/**
 * Decodes Pyroscope's TREE format. Children are keyed by name (duplicates merge) and totals are
 * recomputed from self values, as Pyroscope's UnmarshalTree does. Fewer than 2 bytes is an empty
 * tree. Throws on malformed input.
 */
export function treeFromBytes(bytes: Uint8Array, strings?: StringTable): Tree {
  const tree = new Tree(strings, Math.max(64, bytes.length >> 3));
  if (bytes.length < 2) return tree;
  const r = new ByteReader(bytes);
  // The virtual root: its name and self are dropped.
  r.skip(r.uvarint());
  r.uvarint();
  const parents: number[] = [];
  pushN(parents, ROOT, r.childCount());
  const table = tree.strings;
  while (parents.length > 0) {
    const parent = parents.pop()!;
    const len = r.uvarint();
    const name = r.string(len);
    const self = r.uvarint();
    const count = r.childCount();
    const node = tree.child(parent, table.intern(name));
    tree.nodeSelf[node] += self;
    pushN(parents, node, count);
  }
  const parentOf = tree.nodeParent;
  const selfOf = tree.nodeSelf;
  const totalOf = tree.nodeTotal;
  for (let i = tree.size; i >= 1; i--) {
    totalOf[i] += selfOf[i];
    totalOf[parentOf[i]] += totalOf[i];
  }
  return tree;
}

function pushN(a: number[], v: number, n: number) {
  for (let i = 0; i < n; i++) a.push(v);
}

const MALFORMED = "malformed tree bytes";

class ByteReader {
  private o = 0;
  constructor(private readonly b: Uint8Array) {}

  uvarint(): number {
    const b = this.b;
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const o = this.o + i;
      if (o >= b.length) throw new Error(MALFORMED);
      const c = b[o];
      x += (c & 0x7f) * mul;
      if (c < 0x80) {
        this.o = o + 1;
        return x;
      }
      mul *= 128;
    }
    throw new Error(MALFORMED);
  }

  /** A child count; every node takes at least 3 bytes, which bounds what a count can claim. */
  childCount(): number {
    const n = this.uvarint();
    if (n * 3 > this.b.length - this.o) throw new Error(MALFORMED);
    return n;
  }

  skip(n: number) {
    if (this.o + n > this.b.length) throw new Error(MALFORMED);
    this.o += n;
  }

  string(n: number): string {
    const o = this.o;
    if (o + n > this.b.length) throw new Error(MALFORMED);
    this.o = o + n;
    const b = this.b;
    // Short ASCII names (most frames) skip the decoder.
    if (n <= 32) {
      let s = "";
      for (let i = o; i < o + n; i++) {
        const c = b[i];
        if (c >= 0x80) return textDecoder.decode(b.subarray(o, o + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return textDecoder.decode(b.subarray(o, o + n));
  }
}

class ByteWriter {
  private buf: Uint8Array;
  private o = 0;
  constructor(cap: number) {
    this.buf = new Uint8Array(cap);
  }

  private ensure(n: number) {
    if (this.o + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.o + n));
    next.set(this.buf.subarray(0, this.o));
    this.buf = next;
  }

  /** Values are int64 in Pyroscope; fractions are rounded and negatives written as 0. */
  uvarint(v: number) {
    this.ensure(10);
    let x = v > 0 ? Math.round(v) : 0;
    const b = this.buf;
    let o = this.o;
    while (x >= 0x80) {
      b[o++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    b[o++] = x;
    this.o = o;
  }

  bytes(src: Uint8Array) {
    this.ensure(src.length);
    this.buf.set(src, this.o);
    this.o += src.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.o);
  }
}
