import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ApiError } from "../errors.ts";
import { parseTree, parseTrie } from "./trie.ts";

// ---- A test-only encoder, written from the format description: pre-order nodes of
// uvarint name length, name bytes, uvarint value, uvarint child count.

interface Node {
  name: Uint8Array;
  value: number;
  children: Node[];
}

const enc = new TextEncoder();
const node = (name: string | number[], value: number, children: Node[] = []): Node => ({
  name: typeof name === "string" ? enc.encode(name) : Uint8Array.from(name),
  value,
  children,
});

function uvarint(v: number, out: number[]) {
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function encode(n: Node, out: number[] = []): Uint8Array {
  uvarint(n.name.length, out);
  out.push(...n.name);
  uvarint(n.value, out);
  uvarint(n.children.length, out);
  for (const c of n.children) encode(c, out);
  return Uint8Array.from(out);
}

/** A byte-wise radix trie of the keys, as transporttrie builds one: children differ in their first byte. */
function radixTrie(entries: [string, number][]): Node {
  const root = node("", 0);
  for (const [k, v] of entries) {
    let n = root;
    let key = enc.encode(k);
    for (;;) {
      if (key.length === 0) {
        n.value += v;
        break;
      }
      const c = n.children.find((x) => x.name[0] === key[0]);
      if (!c) {
        n.children.push({ name: key, value: v, children: [] });
        break;
      }
      let common = 0;
      while (common < c.name.length && common < key.length && c.name[common] === key[common]) common++;
      if (common < c.name.length) {
        // Split c at the common prefix.
        const tail: Node = { name: c.name.subarray(common), value: c.value, children: c.children };
        c.name = c.name.subarray(0, common);
        c.value = 0;
        c.children = [tail];
      }
      n = c;
      key = key.subarray(common);
    }
  }
  return root;
}

/** The no-dict tree of `;`-joined stacks under an unnamed root. */
function stackTree(entries: [string, number][]): Node {
  const root = node("", 0);
  for (const [k, v] of entries) {
    let n = root;
    for (const f of k.split(";")) {
      let c = n.children.find((x) => new TextDecoder().decode(x.name) === f);
      if (!c) n.children.push((c = node(f, 0)));
      n = c;
    }
    n.value += v;
  }
  return root;
}

const bin = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

const NO_LIMITS = { ingestionBodyLimitBytes: 0, maxProfileSizeBytes: 0 };

describe("parseTrie", () => {
  test("Pyroscope's serialization example (abc 1, abd 2)", () => {
    // pkg/og/structs/transporttrie/trie_test.go: serializationExample
    const got = parseTrie(bin("\x00\x00\x01\x02ab\x00\x02\x01c\x01\x00\x01d\x02\x00"), NO_LIMITS);
    expect(Object.fromEntries(got)).toEqual({ abc: 1, abd: 2 });
  });

  test("the stacks of Pyroscope's IterateRaw test come back", () => {
    const values: [string, number][] = [
      ["foo;bar;baz", 1],
      ["foo;bar;baz;a", 1],
      ["foo;bar;baz;b", 1],
      ["foo;bar;baz;c", 1],
      ["foo;bar;bar", 1],
      ["foo;bar;qux", 1],
      ["foo;bax;bar", 1],
      ["zoo;boo", 1],
      ["zoo;bao", 1],
    ];
    expect(parseTrie(encode(radixTrie(values)), NO_LIMITS)).toEqual(new Map(values));
  });

  test("random tries round-trip", () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let j = 0; j < 20; j++) {
      const want = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const k = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => "abc;é"[Math.floor(rnd() * 5)]).join("");
        const v = 1 + Math.floor(rnd() * 1e12);
        if (!k.endsWith(";") && !want.has(k)) want.set(k, v);
      }
      expect(parseTrie(encode(radixTrie([...want])), NO_LIMITS)).toEqual(want);
    }
  });

  test("a UTF-8 character split across fragments is decoded whole", () => {
    // "é" is c3 a9: the trie splits it between two nodes.
    const t = node("", 0, [node([0x61, 0x3b, 0xc3], 0, [node([0xa9], 3), node([0xa8], 4)])]);
    expect(Object.fromEntries(parseTrie(encode(t), NO_LIMITS))).toEqual({ "a;é": 3, "a;è": 4 });
  });

  test("inner nodes with a value emit their key; zero values emit nothing", () => {
    const t = node("x", 5, [node(";y", 0, [node("1", 2)]), node(";z", 7)]);
    expect(Object.fromEntries(parseTrie(encode(t), NO_LIMITS))).toEqual({ x: 5, "x;y1": 2, "x;z": 7 });
  });

  test("a trailing ';' names no frame, as Pyroscope's tree.Insert reads keys", () => {
    const t = node("", 0, [node("a;b;", 2), node("a;b", 3)]);
    expect(Object.fromEntries(parseTrie(encode(t), NO_LIMITS))).toEqual({ "a;b": 5 });
  });

  test("an empty body is an empty trie", () => {
    expect(parseTrie(new Uint8Array(0), NO_LIMITS).size).toBe(0);
  });

  test("every truncation of a valid body is a 422 naming the offset", () => {
    const full = encode(radixTrie([["foo;bar", 3], ["foo;baz", 4], ["quux", 500]]));
    for (let n = 1; n < full.length; n++) {
      const e = apiError(() => parseTrie(full.subarray(0, n), NO_LIMITS));
      expect(e.code).toBe("unprocessable");
      expect(e.message).toMatch(/^trie: malformed body at byte \d+: /);
    }
  });

  test("bytes after the root's subtree, overflowing varints and impossible child counts are 422", () => {
    const full = encode(radixTrie([["a", 1]]));
    const trailing = apiError(() => parseTrie(Uint8Array.from([...full, 0]), NO_LIMITS));
    expect(trailing.message).toContain(`byte ${full.length}: 1 bytes follow`);
    const overflow = apiError(() => parseTrie(Uint8Array.from([0, ...Array(9).fill(0xff), 0x02, 0]), NO_LIMITS));
    expect(overflow.message).toBe("trie: malformed body at byte 1: a node value overflows 64 bits");
    const kids = apiError(() => parseTrie(Uint8Array.from([0, 0, 0xff, 0xff, 0x03]), NO_LIMITS));
    expect(kids.message).toContain("byte 2: the node declares 65535 children but only 0 bytes remain");
  });
});

describe("parseTree", () => {
  test("Pyroscope's serialization example (a;b 1, a;c 2)", () => {
    // pkg/og/storage/tree/serialize_nodict_test.go: serializationExample
    const got = parseTree(bin("\x00\x00\x01\x01a\x00\x02\x01b\x01\x00\x01c\x02\x00"), NO_LIMITS);
    expect(Object.fromEntries(got)).toEqual({ "a;b": 1, "a;c": 2 });
  });

  test("stacks round-trip, inner nodes keep their self value, the root's is dropped", () => {
    const want = new Map<string, number>([
      ["main;work;hash", 30],
      ["main;work", 12],
      ["main;gc", 9],
      ["net;poll", 2 ** 40],
      ["日本;語", 1],
    ]);
    const t = stackTree([...want]);
    t.value = 99; // Pyroscope skips the root's own label
    expect(parseTree(encode(t), NO_LIMITS)).toEqual(want);
  });

  test("Pyroscope's limit vectors: max-uint64 name length, 16001 children", () => {
    const name = apiError(() => parseTree(Uint8Array.from([...Array(9).fill(0xff), 0x01]), { ...NO_LIMITS, maxProfileSymbolValueLength: 65535 }));
    expect(name.code).toBe("unprocessable");
    expect(name.message).toContain("exceeds the limit of 65535 bytes (max_profile_symbol_value_length)");
    const kids = apiError(() => parseTree(Uint8Array.from([0x00, 0x00, 0x81, 0x7d]), { ...NO_LIMITS, maxProfileStacktraceSamples: 16000 }));
    expect(kids.message).toBe("tree: malformed body at byte 2: child count 16001 exceeds the limit of 16000 (max_profile_stacktrace_samples)");
  });

  test("limits apply to every node, and only when set", () => {
    const body = encode(stackTree([["abcdef;x", 1]]));
    expect(apiError(() => parseTree(body, { ...NO_LIMITS, maxProfileSymbolValueLength: 5 })).message).toContain("byte 3: name length 6 exceeds");
    expect(parseTree(body, { ...NO_LIMITS, maxProfileSymbolValueLength: 6 }).get("abcdef;x")).toBe(1);
    expect(parseTree(body, { ...NO_LIMITS, maxProfileSymbolValueLength: 0, maxProfileStacktraceSamples: 0 }).size).toBe(1);
  });

  test("a named root, an empty body and every truncation are 422", () => {
    expect(apiError(() => parseTree(encode(node("r", 0, [node("a", 1)])), NO_LIMITS)).message).toBe(
      'tree: malformed body at byte 0: the root node is named "r"; a tree\'s root must be unnamed',
    );
    expect(apiError(() => parseTree(new Uint8Array(0), NO_LIMITS)).message).toContain("byte 0: the body ends");
    const full = encode(stackTree([["a;b", 1], ["a;c", 2], ["d", 3]]));
    for (let n = 1; n < full.length; n++) {
      const e = apiError(() => parseTree(full.subarray(0, n), NO_LIMITS));
      expect(e.code).toBe("unprocessable");
      expect(e.message).toMatch(/^tree: malformed body at byte \d+: /);
    }
    expect(apiError(() => parseTree(Uint8Array.from([...full, 7]), NO_LIMITS)).message).toContain(`byte ${full.length}: 1 bytes follow`);
  });

  // pkg/model/testdata/diff_left_tree.bin of grafana/pyroscope (kept gzipped in test/fixtures/tree)
  // is a real 4 MB tree in this very wire format (Pyroscope's pkg/model marshals name length, name,
  // self, child count pre-order under an unnamed root).
  test("Pyroscope's real diff_left_tree.bin parses whole", () => {
    const bytes = new Uint8Array(gunzipSync(readFileSync(new URL("../../test/fixtures/tree/diff_left_tree.bin.gz", import.meta.url).pathname)));
    expect(bytes.length).toBe(4169651);
    // Its first bytes, read by hand: root (00 00 a7 01) with 167 children; the first child is the
    // leaf "func_0fa1a43b" (0d …) with self 80 a8 a1 da af 16 and no children.
    expect([...bytes.subarray(0, 4)]).toEqual([0x00, 0x00, 0xa7, 0x01]);
    const firstSelf = 40 * 128 + 33 * 128 ** 2 + 90 * 128 ** 3 + 47 * 128 ** 4 + 22 * 128 ** 5;
    const got = parseTree(bytes, { ...NO_LIMITS, maxProfileSymbolValueLength: 65535, maxProfileStacktraceSamples: 16000 });
    expect(got.get("func_0fa1a43b")).toBe(firstSelf);
    const roots = new Set([...got.keys()].map((k) => k.split(";")[0]));
    expect(roots.size).toBeLessThanOrEqual(167);
    expect(roots.has("func_0fa1a43b")).toBe(true);
  });
});
