// mergeBlocks on small hand-made blocks whose answers are worked out by hand: duplicates (across and
// within sources), series order, sources whose series are not in label order, tiny row groups,
// `drop`, and damaged sources.

import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Head } from "../head/head.ts";
import { getLabel, labelsKey, sortLabels, type Labels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { collapsed } from "../model/tree.ts";
import { parseSelector } from "../model/selector.ts";
import { mergeBlocks, type MergeOptions } from "./block-merger.ts";
import { BlockSource } from "./block-source.ts";
import { encodeBlockSymbols } from "./symbols-file-writer.ts";
import { BlockWriter, sortByStack } from "./block-writer.ts";
import { BlockCorruptError, newUlid, type BlockMeta } from "./meta.ts";
import { BlockReader } from "./reader.ts";
import { writeBlock } from "./writer.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-block-merger-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fresh = () => mkdtempSync(join(tmp, "m-"));

const TYPE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const svc = (name: string): Labels =>
  sortLabels([
    { name: "__name__", value: "process_cpu" },
    { name: "service_name", value: name },
  ]);

/** A CPU profile at `timeMs` from stacks written root first ("main;f"). */
function prof(timeMs: number, stacks: Record<string, number>): Profile {
  const names: string[] = [];
  const locOf = new Map<string, number>();
  const locStart = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (const [stack, v] of Object.entries(stacks)) {
    for (const f of stack.split(";").reverse()) {
      let l = locOf.get(f);
      if (l === undefined) locOf.set(f, (l = names.push(f) - 1));
      locs.push(l);
    }
    locStart.push(locs.length);
    values.push(v);
  }
  return {
    sampleTypes: [{ type: "cpu", unit: "nanoseconds" }],
    periodType: { type: "cpu", unit: "nanoseconds" },
    period: 10_000_000,
    timeNanos: BigInt(timeMs) * 1_000_000n,
    durationNanos: 10e9,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions: names.map((name) => ({ name, systemName: name, filename: "", startLine: 0 })),
    locations: names.map((_, i) => ({ mapping: -1, address: 0n, lines: [{ fn: i, line: 0 }], isFolded: false })),
    samples: { count: values.length, locStart: Uint32Array.from(locStart), locs: Uint32Array.from(locs), values: Float64Array.from(values), labels: null },
  };
}

type Rows = [service: string, timeMs: number, stacks: Record<string, number>][];

function headOf(rows: Rows): Head {
  const h = new Head();
  for (const [s, t, stacks] of rows) h.append(svc(s), prof(t, stacks));
  return h;
}

/** Writes a block with series in reverse label order: blocks once kept the head's order. */
async function writeUnsorted(head: Head, dir: string, rowGroupSize: number): Promise<BlockMeta> {
  const used = new Uint8Array(head.symbols.stackCount).fill(1);
  const { bytes, stackMap } = encodeBlockSymbols(head.symbols, used);
  const w = BlockWriter.create(dir, { rowGroupSize, ulid: newUlid() });
  for (const s of [...head.series].sort((a, b) => (a.key < b.key ? 1 : -1))) {
    w.startSeries(s.labels, s.profileType);
    for (let r = 0; r < s.timeMs.length; r++) {
      const ids = Uint32Array.from(s.rowStacks(r), (id) => stackMap[id]);
      const vs = Float64Array.from(s.rowValues(r));
      sortByStack(ids, vs, ids.length, new Float64Array(ids.length));
      w.appendProfile(s.timeMs[r], s.durationNs[r], ids, vs, ids.length);
    }
  }
  return w.finish(bytes);
}

async function merge(dirs: string[], out: string, opts: MergeOptions = {}) {
  const sources = await Promise.all(dirs.map((d) => BlockSource.open(d)));
  try {
    return await mergeBlocks(sources, out, opts);
  } finally {
    for (const s of sources) s.close();
  }
}

/** service → [time, total] of each profile, from the block's selectSeries (one step per ms). */
async function totals(dir: string): Promise<Record<string, [number, number][]>> {
  const r = await BlockReader.open(dir);
  try {
    const pts = await r.selectSeries({ profileTypeId: TYPE, matchers: [], start: 0, end: 100_000, groupBy: ["service_name"], stepMs: 1, aggregation: "sum" });
    return Object.fromEntries(pts.map((p) => [p.labels[0].value, p.points.map((x) => [x.timestamp, x.value])]));
  } finally {
    r.close();
  }
}

async function stacks(dir: string): Promise<Record<string, number>> {
  const r = await BlockReader.open(dir);
  try {
    return Object.fromEntries(collapsed(await r.selectMergeTree({ profileTypeId: TYPE, matchers: [], start: 0, end: 0 })));
  } finally {
    r.close();
  }
}

// Three cuts in the order written: a row at a time already taken by an earlier cut is a duplicate.
const A: Rows = [
  ["a", 1000, { "main;f": 1 }],
  ["a", 2000, { "main;f": 1 }],
  ["a", 3000, { "main;g": 1 }],
];
const B: Rows = [
  ["b", 2000, { "main;f;h": 100 }],
  ["a", 2000, { "main;f": 10 }],
  ["a", 4000, { "main;g;h": 10, "main;f": 20 }],
];
const C: Rows = [
  ["a", 3000, { "main;f": 1000 }],
  ["a", 3000, { "main;g": 5000 }], // twice in one cut: a duplicate inside a source too
  ["a", 5000, { main: 1000 }],
  ["c", 5000, { "other;x": 7 }],
];

async function writeABC(dir: string, write: (h: Head, dir: string) => Promise<BlockMeta>) {
  const out: string[] = [];
  for (const rows of [A, B, C]) out.push(join(dir, (await write(headOf(rows), dir)).ulid));
  return out;
}

describe("mergeBlocks", () => {
  for (const [name, write, rowGroupSize, cacheBytes] of [
    ["series in label order", (h: Head, d: string) => writeBlock(h, d), undefined, undefined],
    ["sources with series out of label order, rows in groups of 2", (h: Head, d: string) => writeUnsorted(h, d, 2), 3, undefined],
    ["the same with no cache: groups decoded again", (h: Head, d: string) => writeUnsorted(h, d, 2), 3, 0],
  ] as const) {
    test(`duplicates keep the earliest source's row: ${name}`, async () => {
      const dir = fresh();
      const srcs = await writeABC(dir, write);
      const out = fresh();
      const got = await merge(srcs, out, { level: 2, sources: ["S1", "S2"], walThroughSegment: 4, rowGroupSize, cacheBytes });
      expect(got.stats).toEqual({ rows: 7, droppedRows: 0, duplicateRows: 3 });
      const meta = got.meta!;
      expect(meta.stats).toEqual({ numSeries: 3, numProfiles: 7, numSamples: 8 });
      expect(meta.compaction).toEqual({ level: 2, sources: ["S1", "S2"] });
      expect(meta.wal).toEqual({ throughSegment: 4 });
      expect([meta.minTime, meta.maxTime]).toEqual([1000, 5000]);
      const dirOut = join(out, meta.ulid);
      expect(await totals(dirOut)).toEqual({
        a: [
          [1000, 1],
          [2000, 1],
          [3000, 1],
          [4000, 30],
          [5000, 1000],
        ],
        b: [[2000, 100]],
        c: [[5000, 7]],
      });
      expect(await stacks(dirOut)).toEqual({ "main;f": 22, "main;g": 1, "main;g;h": 10, main: 1000, "main;f;h": 100, "other;x": 7 });
      // Series in label order, whatever the sources' order.
      const s = await BlockSource.open(dirOut);
      const keys = s.series.map((x) => labelsKey(x.labels));
      const names = s.series.map((x) => getLabel(x.labels, "service_name"));
      s.close();
      expect(keys).toEqual([...keys].sort());
      expect(names).toEqual(["a", "b", "c"]);
      expect(got.symbols.stacks).toBe(8); // the root, main, main;f, main;g, main;g;h, main;f;h, other, other;x
    });
  }

  test("a source order decides: the same cuts ranked the other way keep the other rows", async () => {
    const dir = fresh();
    const [a, b, c] = await writeABC(dir, writeBlock);
    const out = fresh();
    const got = await merge([c, b, a], out);
    expect(got.stats).toEqual({ rows: 7, droppedRows: 0, duplicateRows: 3 });
    expect((await totals(join(out, got.meta!.ulid)))["a"]).toEqual([
      [1000, 1],
      [2000, 10],
      [3000, 1000],
      [4000, 30],
      [5000, 1000],
    ]);
  });

  test("drop: the matching series are left out; nothing left is null and nothing written", async () => {
    const dir = fresh();
    const srcs = await writeABC(dir, writeBlock);
    const out = fresh();
    const got = await merge(srcs, out, { drop: parseSelector('{service_name="a"}') });
    expect(got.stats).toEqual({ rows: 2, droppedRows: 8, duplicateRows: 0 });
    expect(await totals(join(out, got.meta!.ulid))).toEqual({ b: [[2000, 100]], c: [[5000, 7]] });
    const none = fresh();
    const all = await merge(srcs, none, { drop: parseSelector('{service_name=~".+"}') });
    expect(all.meta).toBeNull();
    expect(all.stats).toEqual({ rows: 0, droppedRows: 10, duplicateRows: 0 });
    expect(readdirSync(none)).toEqual([]);
  });

  test("a garbled stack id fails the merge, naming the source, and leaves nothing behind", async () => {
    const dir = fresh();
    const [a] = await writeABC(dir, writeBlock);
    // A block whose rows use stack ids beyond A's symbols: give it A's symbols.bin.
    const big = await writeBlock(headOf([["a", 9000, { "x;y;z": 1, "x;y;w": 2, "x;v": 3, "u;t;s;r": 4 }]]), dir);
    const bad = join(fresh(), big.ulid);
    cpSync(join(dir, big.ulid), bad, { recursive: true });
    const symbols = readFileSync(join(a, "symbols.bin"));
    await Bun.write(join(bad, "symbols.bin"), symbols);
    const meta = JSON.parse(readFileSync(join(bad, "meta.json"), "utf8")) as BlockMeta;
    meta.files = meta.files.map((f) => (f.relPath === "symbols.bin" ? { ...f, sizeBytes: symbols.length } : f));
    await Bun.write(join(bad, "meta.json"), JSON.stringify(meta));
    const out = fresh();
    const e = await merge([a, bad], out).then(
      () => null,
      (x) => x,
    );
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as Error).message).toContain(big.ulid);
    expect(readdirSync(out)).toEqual([]);
  });
});
