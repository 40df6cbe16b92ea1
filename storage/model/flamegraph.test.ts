import { describe, expect, test } from "bun:test";
import { flamegraphFromTree, type FlameGraph } from "./flamegraph.ts";
import { Tree } from "./tree.ts";

function treeOf(stacks: [string, number][]): Tree {
  const t = new Tree();
  for (const [s, v] of stacks) t.insertStack(s.split(";"), v);
  return t;
}

/**
 * Reads a flame graph back into "a;b" → self stacks (what Pyroscope's FlameGraphMerger does):
 * decode x offsets, then find each node's parent as the node above whose span covers it.
 */
function stacksOf(fg: FlameGraph): Record<string, number> {
  const abs = fg.levels.map((l) => {
    const out = l.slice();
    let prev = 0;
    for (let i = 0; i < out.length; i += 4) {
      out[i] += prev;
      prev = out[i] + out[i + 1];
    }
    return out;
  });
  const out: Record<string, number> = {};
  for (let d = 1; d < abs.length; d++) {
    for (let j = 0; j < abs[d].length; j += 4) {
      const self = abs[d][j + 2];
      if (self <= 0) continue;
      const stack = [fg.names[abs[d][j + 3]]];
      let x = abs[d][j];
      for (let up = d - 1; up > 0; up--) {
        let k = 0;
        while (k + 4 < abs[up].length && abs[up][k + 4] <= x) k += 4;
        stack.unshift(fg.names[abs[up][k + 3]]);
        x = abs[up][k];
      }
      const key = stack.join(";");
      out[key] = (out[key] ?? 0) + self;
    }
  }
  return out;
}

describe("flamegraphFromTree", () => {
  test("Pyroscope's worked example (Test_ExportToFlamebearer)", () => {
    const fg = flamegraphFromTree(
      treeOf([
        ["a;b;e", 1],
        ["a;c", 2],
        ["a;c;d", 1],
      ]),
      -1,
    );
    expect(fg).toEqual({
      names: ["total", "a", "c", "d", "b", "e"],
      levels: [
        [0, 4, 0, 0],
        [0, 4, 0, 1],
        [0, 1, 0, 4, 0, 3, 2, 2],
        [0, 1, 1, 5, 2, 1, 1, 3],
      ],
      total: 4,
      maxSelf: 2,
    });
  });

  test("empty tree: just the root", () => {
    expect(flamegraphFromTree(new Tree(), 100)).toEqual({ names: ["total"], levels: [[0, 0, 0, 0]], total: 0, maxSelf: 0 });
  });

  const mergerInput: [string, number][] = [
    ["foo;bar", 1],
    ["foo;bar;baz", 1],
    ["foo;qux", 2],
    ["fred;zoo", 1],
    ["fred;other", 1],
  ];

  test("truncation folds small children into `other` (Test_FlameGraphMerger truncation)", () => {
    const fg = flamegraphFromTree(treeOf(mergerInput), 4);
    expect(stacksOf(fg)).toEqual({ "foo;bar": 1, "foo;bar;other": 1, "foo;qux": 2, "fred;other": 2 });
    // Exact layout, worked by hand from Pyroscope's walk (minValue = 2).
    expect(fg).toEqual({
      names: ["total", "fred", "other", "foo", "qux", "bar"],
      levels: [
        [0, 6, 0, 0],
        [0, 4, 0, 3, 0, 2, 0, 1],
        [0, 2, 1, 5, 0, 2, 2, 4, 0, 2, 2, 2],
        [1, 1, 1, 2],
      ],
      total: 6,
      maxSelf: 2,
    });
  });

  test("no truncation: stacks survive, real `other` frames become the synthetic one", () => {
    const second: [string, number][] = [
      ["foo;bar;baz", 1],
      ["fred;zoo", 1],
      ["fred;zoo;ward", 1],
      ["func;other", 1],
      ["func", 1],
      ["other", 1],
    ];
    expect(stacksOf(flamegraphFromTree(treeOf(mergerInput), -1))).toEqual({
      "foo;bar": 1,
      "foo;bar;baz": 1,
      "foo;qux": 2,
      "fred;zoo": 1,
      "fred;other": 1,
    });
    const fg = flamegraphFromTree(treeOf(second), 0);
    expect(stacksOf(fg)).toEqual({ "foo;bar;baz": 1, "fred;zoo": 1, "fred;zoo;ward": 1, "func;other": 1, func: 1, other: 1 });
    // `other` is emitted once in names and laid out after its siblings.
    expect(fg.names.filter((n) => n === "other").length).toBe(1);
    const root = fg.levels[1];
    expect(fg.names[root[root.length - 1]]).toBe("other");
  });

  test("a real `other` subtree is folded whole, even when large", () => {
    const fg = flamegraphFromTree(treeOf([["other;x;y", 5], ["a", 1]]), -1);
    expect(stacksOf(fg)).toEqual({ a: 1, other: 5 });
  });

  test("a frame named `total` shares index 0, as in Pyroscope", () => {
    const fg = flamegraphFromTree(treeOf([["total;x", 1]]), -1);
    expect(fg.names).toEqual(["total", "x"]);
    expect(fg.levels[1]).toEqual([0, 1, 0, 0]);
  });

  test("names are shared by nodes with the same name", () => {
    const fg = flamegraphFromTree(treeOf([["a;x", 1], ["b;x", 1], ["x", 1]]), -1);
    expect(fg.names.filter((n) => n === "x").length).toBe(1);
    expect(stacksOf(fg)).toEqual({ "a;x": 1, "b;x": 1, x: 1 });
  });

  test("children in byte order, self laid out first", () => {
    const fg = flamegraphFromTree(treeOf([["m", 3], ["m;b", 1], ["m;a", 2]]), -1);
    // level 2: a at x=3 (after m's self), b right after
    expect(fg.levels[2]).toEqual([3, 2, 2, fg.names.indexOf("a"), 0, 1, 1, fg.names.indexOf("b")]);
    expect(fg.maxSelf).toBe(3);
  });

  test("random trees round-trip and respect the node budget", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const stacks: [string, number][] = [];
      for (let i = 0; i < 200; i++) {
        const depth = 1 + rnd(6);
        const frames = Array.from({ length: depth }, () => `f${rnd(8)}`);
        stacks.push([frames.join(";"), 1 + rnd(50)]);
      }
      const t = treeOf(stacks);
      const full = flamegraphFromTree(t, -1);
      const want: Record<string, number> = {};
      t.forEachStack((s, v) => (want[s.join(";")] = v));
      expect(stacksOf(full)).toEqual(want);
      const nodes = (fg: FlameGraph) => fg.levels.reduce((n, l) => n + l.length / 4, 0) - 1;
      expect(nodes(full)).toBe(t.size);

      const cut = flamegraphFromTree(t, 30);
      const sum = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
      expect(sum(stacksOf(cut))).toBe(t.total());
      expect(cut.total).toBe(t.total());
      // every kept non-other node has total >= minValue
      const min = t.minValue(30);
      for (let d = 1; d < cut.levels.length; d++) {
        for (let j = 0; j < cut.levels[d].length; j += 4) {
          if (cut.names[cut.levels[d][j + 3]] !== "other") expect(cut.levels[d][j + 1]).toBeGreaterThanOrEqual(min);
        }
      }
    }
  });

  test("handles a large tree quickly", () => {
    const t = new Tree();
    const frames: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      frames.length = 0;
      let x = i;
      for (let d = 0; d < 8; d++) {
        frames.push(`fn_${x % 13}`);
        x = Math.floor(x / 13);
      }
      t.insertStack(frames, 1 + (i % 5));
    }
    const started = performance.now();
    const fg = flamegraphFromTree(t, 8192);
    const ms = performance.now() - started;
    expect(fg.total).toBe(t.total());
    expect(ms).toBeLessThan(2000);
  });
});
