// Flame graphs from call trees, laid out exactly as Pyroscope's NewFlameGraph (pkg/model/flamegraph.go)
// does, so names, levels and truncation match what Grafana and the Pyroscope UI expect.

import type { Tree } from "./tree.ts";

export interface FlameGraph {
  /** names[0] = "total"; de-duplicated, so many nodes can share one index. */
  names: string[];
  /** One array per depth of 4-tuples [x_delta, total, self, name_index], left to right. */
  levels: number[][];
  total: number;
  maxSelf: number;
}

const OTHER = "other";

/**
 * Builds the flame graph of `tree`, keeping nodes whose total is at least
 * tree.minValue(maxNodes); the rest of each node's children (and any child already named
 * `other`) are folded into one synthetic `other` child placed after its siblings.
 *
 * maxNodes < 1 means no truncation. Pyroscope's request-level rules (0 → the
 * max_flamegraph_nodes_default limit, negative → unlimited, above the max → error) are the
 * caller's job.
 *
 * The layout follows Pyroscope's stack walk: self is laid out first, then children in name
 * order; names are numbered in the walk's order (last child first); x offsets are delta-encoded
 * against the end of the previous node on the same level.
 */
export function flamegraphFromTree(tree: Tree, maxNodes: number): FlameGraph {
  const total = tree.total();
  const minVal = tree.minValue(maxNodes);
  const { start, list } = tree.sortedChildren();
  const strings = tree.strings;
  const nameId = tree.nodeNameId;
  const selfOf = tree.nodeSelf;
  const totalOf = tree.nodeTotal;

  const names: string[] = ["total"];
  // Flame graph name index per string id; -1 = not yet seen. Pyroscope caches the root under
  // "total", so a frame called "total" shares index 0.
  const nameIndex = new Int32Array(strings.size).fill(-1);
  const totalId = strings.lookup("total");
  if (totalId >= 0) nameIndex[totalId] = 0;
  // Real frames named "other" are always folded, so only the synthetic node ever needs the name.
  const otherId = strings.lookup(OTHER);
  let otherIndex = -1;

  // Explicit stack; node -1 is a synthetic `other` whose value sits in `st.other`. It holds the
  // pending siblings along one path, so it stays small; it grows on demand.
  const st = new WalkStack();
  st.push(0, 0, 0, 0);

  // Tuples per level in visiting order (right to left); reversed at the end.
  const visited: number[][] = [];
  let maxSelf = 0;

  while (st.sp > 0) {
    const sp = --st.sp;
    const node = st.node[sp];
    let x = st.x[sp];
    const level = st.level[sp];
    let self: number;
    let nodeTotal: number;
    let ni: number;
    if (node < 0) {
      self = nodeTotal = st.other[sp];
      if (otherIndex < 0) {
        otherIndex = names.length;
        names.push(OTHER);
      }
      ni = otherIndex;
    } else if (node === 0) {
      self = 0;
      nodeTotal = total;
      ni = 0;
    } else {
      self = selfOf[node];
      nodeTotal = totalOf[node];
      const id = nameId[node];
      ni = nameIndex[id];
      if (ni < 0) {
        ni = nameIndex[id] = names.length;
        names.push(strings.strings[id]);
      }
    }
    if (self > maxSelf) maxSelf = self;
    let row = visited[level];
    if (row === undefined) row = visited[level] = [];
    row.push(x, nodeTotal, self, ni);
    x += self;
    if (node < 0) continue;

    let other = 0;
    for (let i = start[node], e = start[node + 1]; i < e; i++) {
      const c = list[i];
      const t = totalOf[c];
      if (t >= minVal && nameId[c] !== otherId) {
        st.push(c, x, level + 1, 0);
        x += t;
      } else {
        other += t;
      }
    }
    if (other !== 0) st.push(-1, x, level + 1, other);
  }

  const levels: number[][] = [];
  for (let l = 0; l < visited.length; l++) {
    const row = visited[l];
    // Built by push: a large `new Array(n)` is a slow sparse array in JSC.
    const out: number[] = [];
    let prev = 0;
    for (let i = row.length - 4; i >= 0; i -= 4) {
      const x = row[i];
      const t = row[i + 1];
      out.push(x - prev, t, row[i + 2], row[i + 3]);
      prev = x + t;
    }
    levels.push(out);
  }
  return { names, levels, total, maxSelf };
}

class WalkStack {
  sp = 0;
  node = new Int32Array(256);
  x = new Float64Array(256);
  level = new Int32Array(256);
  other = new Float64Array(256);

  push(node: number, x: number, level: number, other: number) {
    if (this.sp === this.node.length) this.grow();
    const i = this.sp++;
    this.node[i] = node;
    this.x[i] = x;
    this.level[i] = level;
    this.other[i] = other;
  }

  private grow() {
    const n = this.node.length * 2;
    const node = new Int32Array(n);
    node.set(this.node);
    this.node = node;
    const x = new Float64Array(n);
    x.set(this.x);
    this.x = x;
    const level = new Int32Array(n);
    level.set(this.level);
    this.level = level;
    const other = new Float64Array(n);
    other.set(this.other);
    this.other = other;
  }
}
