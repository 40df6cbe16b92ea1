import { describe, expect, test } from "bun:test";
import { StringTable, Tree, collapsed, compareUtf8, treeFromBytes, treeToBytes } from "./tree.ts";

/** Builds a tree from "a;b;c" → value pairs (root first). */
function treeOf(stacks: Record<string, number> | [string, number][], strings?: StringTable): Tree {
  const t = new Tree(strings);
  const entries = Array.isArray(stacks) ? stacks : Object.entries(stacks);
  for (const [s, v] of entries) t.insertStack(s.split(";"), v);
  return t;
}

function stacksOf(t: Tree): Record<string, number> {
  return Object.fromEntries(collapsed(t));
}

/** Every node as "path self total", in depth-first name order. */
function dump(t: Tree): string[] {
  const out: string[] = [];
  const walk = (node: number, path: string) => {
    for (const c of t.children(node)) {
      const p = path ? `${path};${t.nameOf(c)}` : t.nameOf(c);
      out.push(`${p} ${t.nodeSelf[c]} ${t.nodeTotal[c]}`);
      walk(c, p);
    }
  };
  walk(0, "");
  return out;
}

describe("Tree", () => {
  test("insertStack builds self and total (Pyroscope's Test_Tree cases)", () => {
    const t = treeOf([
      ["bar;buz", 1],
      ["bar;buz", 1],
      ["buz", 1],
      ["bar;buz;foo", 1],
      ["bar;buz;blop", 2],
      ["bar;blip", 4],
    ]);
    expect(dump(t)).toEqual([
      "bar 0 9",
      "bar;blip 4 4",
      "bar;buz 2 5",
      "bar;buz;blop 2 2",
      "bar;buz;foo 1 1",
      "buz 1 1",
    ]);
    expect(t.total()).toBe(10);
    expect(t.size).toBe(6);
  });

  test("values <= 0 and empty stacks are ignored, as Pyroscope's InsertStack does", () => {
    const t = new Tree();
    t.insertStack(["a"], 0);
    t.insertStack(["a"], -3);
    t.insertStack([], 5);
    expect(t.size).toBe(0);
    expect(t.total()).toBe(0);
  });

  test("insertStackIds reads interned ids, either direction", () => {
    const t = new Tree();
    const [a, b, c] = ["a", "b", "c"].map((s) => t.strings.intern(s));
    t.insertStackIds([a, b], 2);
    t.insertStackIds(Int32Array.of(c, b, a), 3, true);
    expect(stacksOf(t)).toEqual({ "a;b": 2, "a;b;c": 3 });
  });

  test("children are ordered by name in UTF-8 byte order", () => {
    const t = treeOf({ "r;b": 1, "r;a": 1, "r;B": 1, "r;\u{1F600}": 1, "r;\uFF21": 1, "r;é": 1 });
    expect([...t.children(t.children(0)[0])].map((c) => t.nameOf(c))).toEqual(["B", "a", "b", "é", "\uFF21", "\u{1F600}"]);
  });

  test("compareUtf8 agrees with byte comparison", () => {
    const words = ["", "a", "ab", "b", "\u00e9", "\uFFFD", "\u{10000}", "\uE000", "z\u{1F600}", "z\uFFFF"];
    const enc = new TextEncoder();
    const byBytes = (x: string, y: string) => Buffer.compare(enc.encode(x), enc.encode(y));
    for (const x of words) for (const y of words) expect(Math.sign(compareUtf8(x, y))).toBe(byBytes(x, y));
  });

  describe("merge (Pyroscope's Test_TreeMerge)", () => {
    const full = { "a;b;c": 1, "a1;b;c": 1, "a;b1;c": 1, "a;b;c1": 1 };
    const merged = { "a;b;c": 2, "a1;b;c": 1, "a;b1;c": 1, "a;b;c1": 1 };
    test("empty src", () => {
      const dst = treeOf({ "a;b;c": 1 });
      dst.merge(new Tree());
      expect(stacksOf(dst)).toEqual({ "a;b;c": 1 });
    });
    test("empty dst", () => {
      const dst = new Tree();
      dst.merge(treeOf({ "a;b;c": 1 }));
      expect(stacksOf(dst)).toEqual({ "a;b;c": 1 });
      expect(dst.total()).toBe(1);
    });
    test("empty both", () => {
      const dst = new Tree();
      dst.merge(new Tree());
      expect(dst.size).toBe(0);
    });
    test("missing nodes in dst", () => {
      const dst = treeOf({ "a;b;c": 1 });
      dst.merge(treeOf(full));
      expect(stacksOf(dst)).toEqual(merged);
      expect(dst.total()).toBe(5);
    });
    test("missing nodes in src", () => {
      const dst = treeOf(full);
      dst.merge(treeOf({ "a;b;c": 1 }));
      expect(stacksOf(dst)).toEqual(merged);
    });
    test("merging into an empty tree copies, and the copy stays usable", () => {
      const src = treeOf({ "a;b": 1, "a;c": 2 });
      const dst = new Tree();
      dst.merge(src);
      dst.insertStack(["a", "b"], 5);
      dst.insertStack(["a", "d"], 1);
      dst.merge(src);
      expect(stacksOf(dst)).toEqual({ "a;b": 7, "a;c": 4, "a;d": 1 });
      expect(stacksOf(src)).toEqual({ "a;b": 1, "a;c": 2 });
      expect(dst.total()).toBe(12);
    });
    test("shared string table", () => {
      const st = new StringTable();
      const dst = treeOf({ "x;y": 1 }, st);
      dst.merge(treeOf({ "x;y": 2, "x;z": 1 }, st));
      expect(stacksOf(dst)).toEqual({ "x;y": 3, "x;z": 1 });
      expect(st.size).toBe(3);
    });
  });

  test("minValue (Pyroscope's Test_Tree_minValue)", () => {
    const t = treeOf([
      ["a;b;c", 1],
      ["a;b;c", 1],
      ["a;b;c1", 1],
      ["a;b1;c", 1],
    ]);
    expect(t.minValue(2)).toBe(3);
    expect(t.minValue(Number.MAX_SAFE_INTEGER)).toBe(0);
    expect(t.minValue(0)).toBe(0);
    expect(t.minValue(-1)).toBe(0);
    expect(t.minValue(6)).toBe(0); // 6 nodes: no truncation needed
    expect(t.minValue(5)).toBe(1);
    expect(t.minValue(3)).toBe(2);
  });

  test("forEachStack yields root-first stacks of nodes with self", () => {
    const t = treeOf({ "a;b": 1, "a;b;c": 2, a: 3 });
    const seen: [string, number][] = [];
    t.forEachStack((s, v) => seen.push([s.join("/"), v]));
    expect(seen).toEqual([
      ["a", 3],
      ["a/b", 1],
      ["a/b/c", 2],
    ]);
  });

  test("grows past its initial capacity and hash table", () => {
    const t = new Tree(undefined, 2);
    const want: Record<string, number> = {};
    for (let i = 0; i < 5000; i++) {
      const s = `f${i % 7};g${i % 101};h${i}`;
      t.insertStack(s.split(";"), 1);
      want[s] = 1;
    }
    expect(stacksOf(t)).toEqual(want);
    expect(t.total()).toBe(5000);
  });
});

describe("collapsed", () => {
  test("maps stacks to self values", () => {
    const t = treeOf({ "a;b;e": 1, "a;c": 2, "a;c;d": 1 });
    expect([...collapsed(t)]).toEqual([
      ["a;b;e", 1],
      ["a;c", 2],
      ["a;c;d", 1],
    ]);
  });
});

describe("TREE bytes", () => {
  test("exact layout: virtual root first, children last-name-first", () => {
    const t = treeOf({ "a;b": 1, "a;c": 2 });
    const b = treeToBytes(t, -1);
    // root: "" self 0, 1 child; a: self 0, 2 children; c: self 2; b: self 1
    expect([...b]).toEqual([0, 0, 1, 1, 97, 0, 2, 1, 99, 2, 0, 1, 98, 1, 0]);
  });

  test("empty tree gives no bytes and decodes back empty", () => {
    expect(treeToBytes(new Tree(), -1).length).toBe(0);
    expect(treeFromBytes(new Uint8Array(0)).size).toBe(0);
    expect(treeFromBytes(Uint8Array.of(0)).size).toBe(0);
  });

  test("round trip (Pyroscope's non-empty tree case)", () => {
    const t = treeOf([
      ["a;b;c", 1],
      ["a;b;c", 1],
      ["a;b;c1", 1],
      ["a;b1;c", 1],
      ["a;b1;c1", 1],
      ["a1;b;c", 1],
      ["a1;b;c1", 1],
      ["a1;b1;c", 1],
      ["a1;b1;c1", 1],
    ]);
    const back = treeFromBytes(treeToBytes(t, 0));
    expect(dump(back)).toEqual(dump(t));
    expect(back.total()).toBe(9);
  });

  test("truncation (Pyroscope's Test_Tree_MarshalUnmarshal/truncation)", () => {
    const t = treeOf([
      ["a;b;c", 1],
      ["a;b;c", 1],
      ["a;b;c1", 1],
      ["a;b1;c", 1],
      ["a;b1;c1", 1],
      ["a1;b;c", 1],
      ["a1;b;c1", 1],
      ["a1;b1;c", 1],
      ["a1;b1;c1", 1],
    ]);
    const before = dump(t);
    const back = treeFromBytes(treeToBytes(t, 3));
    expect(stacksOf(back)).toEqual({ "a;b;other": 3, "a;other": 2, "a1;other": 4 });
    expect(back.total()).toBe(9);
    expect(dump(t)).toEqual(before); // the source tree is untouched
  });

  test("truncated children merge into an existing `other` child", () => {
    const t = treeOf({ "r;other;x": 5, "r;other": 1, "r;a": 1, "r;z": 9 });
    // totals: r 16, z 9, other 6, x 5, a 1 → maxNodes 4 keeps totals >= 5
    const back = treeFromBytes(treeToBytes(t, 4));
    expect(stacksOf(back)).toEqual({ "r;other": 2, "r;other;x": 5, "r;z": 9 });
  });

  test("the synthetic `other` is placed in name order", () => {
    const t = treeOf({ "r;a": 10, "r;p": 10, "r;b": 1, "r;c": 1 });
    const b = treeToBytes(t, 3);
    // r's children: a, other, p → written p, other, a
    const dec = new TextDecoder().decode(b);
    expect(dec.indexOf("p")).toBeLessThan(dec.indexOf("other"));
    expect(dec.indexOf("other")).toBeLessThan(dec.lastIndexOf("a"));
    expect(stacksOf(treeFromBytes(b))).toEqual({ "r;a": 10, "r;p": 10, "r;other": 2 });
  });

  test("UTF-8 names and large values survive", () => {
    const t = treeOf({ "main;日本語;\u{1F600}": 2 ** 40 + 3, "main;x": 1 });
    const back = treeFromBytes(treeToBytes(t, -1));
    expect(stacksOf(back)).toEqual({ "main;日本語;\u{1F600}": 2 ** 40 + 3, "main;x": 1 });
  });

  test("decodes into a shared string table", () => {
    const st = new StringTable();
    const t = treeFromBytes(treeToBytes(treeOf({ "a;b": 1 }), -1), st);
    expect(t.strings).toBe(st);
    expect(st.lookup("b")).toBeGreaterThanOrEqual(0);
  });

  test("malformed input throws", () => {
    const good = treeToBytes(treeOf({ "a;b": 1, "a;c": 2 }), -1);
    expect(() => treeFromBytes(good.subarray(0, good.length - 3))).toThrow("malformed tree bytes");
    expect(() => treeFromBytes(Uint8Array.of(0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f))).toThrow("malformed tree bytes");
    expect(() => treeFromBytes(Uint8Array.of(0, 0, 1, 200, 1))).toThrow("malformed tree bytes");
  });
});
