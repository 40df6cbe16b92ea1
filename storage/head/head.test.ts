// The head and its reader on hand-built profiles: interning, rows per sample type, and queries.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { FIXTURES } from "../../test/helpers/pprof-oracle.ts";
import { decodeBlockSymbols } from "../block/block-symbols.ts";
import { BlockReader } from "../block/reader.ts";
import { writeBlock } from "../block/writer.ts";
import type { Labels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { parseSelector } from "../model/selector.ts";
import { collapsed } from "../model/tree.ts";
import { Head } from "./head.ts";
import { HeadReader } from "./read.ts";

/** A two-type CPU profile from `stack → [samples, nanos]`; frames root first, "fn:line" allowed. */
function cpuProfile(stacks: Record<string, [number, number]>, timeMs: number): Profile {
  const functions: Profile["functions"] = [];
  const locations: Profile["locations"] = [];
  const ids = new Map<string, number>();
  const locStart = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (const [stack, v] of Object.entries(stacks)) {
    const frames = stack.split(";");
    for (let i = frames.length - 1; i >= 0; i--) {
      const [name, line] = frames[i].split(":");
      let loc = ids.get(frames[i]);
      if (loc === undefined) {
        let fn = functions.findIndex((f) => f.name === name);
        if (fn < 0) fn = functions.push({ name, systemName: name, filename: "x.go", startLine: 1 }) - 1;
        loc = locations.push({ mapping: 0, address: 0n, lines: [{ fn, line: Number(line ?? 0) }], isFolded: false }) - 1;
        ids.set(frames[i], loc);
      }
      locs.push(loc);
    }
    locStart.push(locs.length);
    values.push(...v);
  }
  return {
    sampleTypes: [
      { type: "samples", unit: "count" },
      { type: "cpu", unit: "nanoseconds" },
    ],
    periodType: { type: "cpu", unit: "nanoseconds" },
    period: 1e7,
    timeNanos: BigInt(timeMs) * 1000000n,
    durationNanos: 1e10,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [{ memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n, filename: "app", buildId: "", hasFunctions: true, hasFilenames: true, hasLineNumbers: true, hasInlineFrames: false }],
    functions,
    locations,
    samples: { count: values.length / 2, locStart: Uint32Array.from(locStart), locs: Uint32Array.from(locs), values: Float64Array.from(values), labels: null },
  };
}

const labels = (svc: string, extra: Labels = []): Labels =>
  [{ name: "__name__", value: "process_cpu" }, { name: "__delta__", value: "false" }, { name: "service_name", value: svc }, ...extra].sort((a, b) => (a.name < b.name ? -1 : 1));
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const T0 = Date.UTC(2026, 0, 1);

describe("head", () => {
  test("one series per sample type, with Pyroscope's labels; __delta__ is stripped", () => {
    const h = new Head();
    h.append(labels("a"), cpuProfile({ "main;work": [1, 10] }, T0));
    expect(h.series.map((s) => s.profileType).sort()).toEqual([CPU, "process_cpu:samples:count:cpu:nanoseconds"]);
    const s = h.series.find((x) => x.profileType === CPU)!;
    expect(Object.fromEntries(s.labels.map((l) => [l.name, l.value]))).toEqual({
      __name__: "process_cpu",
      __profile_type__: CPU,
      __type__: "cpu",
      __unit__: "nanoseconds",
      __period_type__: "cpu",
      __period_unit__: "nanoseconds",
      service_name: "a",
    });
  });

  test("stacks are interned once across profiles; lines distinguish locations", () => {
    const h = new Head();
    h.append(labels("a"), cpuProfile({ "main;work:1": [1, 10], "main;work:2": [1, 10] }, T0));
    const n = h.symbols.stackCount;
    expect(h.symbols.locationCount).toBe(3);
    for (let i = 1; i <= 5; i++) h.append(labels("a"), cpuProfile({ "main;work:2": [i, 10 * i], "main;work:1": [1, 1] }, T0 + i * 1000));
    expect(h.symbols.stackCount).toBe(n);
    expect(h.symbols.locationCount).toBe(3);
    expect(h.symbols.functionCount).toBe(2);
  });

  test("identical stacks in one profile are summed; zero values dropped per type", () => {
    const h = new Head();
    const p = cpuProfile({ "main;a": [1, 0], "main;b": [0, 5] }, T0);
    h.append(labels("a"), p);
    const cpu = h.series.find((x) => x.profileType === CPU)!;
    expect(cpu.rowValues(0).length).toBe(1);
    expect([...cpu.rowValues(0)]).toEqual([5]);
    // The same stack twice in one profile becomes one entry with the sum.
    const dup = cpuProfile({ "main;a": [1, 3] }, T0 + 1);
    dup.samples = { count: 2, locStart: Uint32Array.of(0, 2, 4), locs: Uint32Array.of(...dup.samples.locs, ...dup.samples.locs), values: Float64Array.of(1, 3, 2, 4), labels: null };
    h.append(labels("dup"), dup);
    const d = h.series.find((x) => x.profileType === CPU && x.labels.some((l) => l.value === "dup"))!;
    expect([...d.rowValues(0)]).toEqual([7]);
  });
});

describe("head reader", () => {
  const h = new Head();
  h.append(labels("a", [{ name: "region", value: "eu" }]), cpuProfile({ "main;work": [1, 10], "main;idle": [1, 5] }, T0));
  h.append(labels("a", [{ name: "region", value: "us" }]), cpuProfile({ "main;work": [1, 20] }, T0 + 15_000));
  h.append(labels("b"), cpuProfile({ "other;x": [1, 7] }, T0 + 30_000));
  const r = new HeadReader(h);
  const all = { start: T0 - 1, end: T0 + 60_000 };

  test("labels, values, series and types, filtered by matchers and time", async () => {
    expect((await r.profileTypes(all)).sort()).toEqual([CPU, "process_cpu:samples:count:cpu:nanoseconds"]);
    expect((await r.labelValues("region", [], all)).sort()).toEqual(["eu", "us"]);
    expect(await r.labelValues("service_name", parseSelector('{region=~"e.*"}'), all)).toEqual(["a"]);
    expect(await r.labelNames(parseSelector('{service_name="b"}'), all)).not.toContain("region");
    expect((await r.series(parseSelector('{service_name="a"}'), { start: T0 + 10_000, end: T0 + 20_000 })).length).toBe(2);
    expect(await r.labelValues("service_name", [], { start: T0 + 31_000, end: T0 + 40_000 })).toEqual([]);
  });

  test("merge tree sums matching rows in the time range", async () => {
    const t = await r.selectMergeTree({ profileTypeId: CPU, matchers: parseSelector('{service_name="a"}'), ...all });
    expect(Object.fromEntries(collapsed(t))).toEqual({ "main;work": 30, "main;idle": 5 });
    const eu = await r.selectMergeTree({ profileTypeId: CPU, matchers: parseSelector('{region!="us"}'), ...all });
    expect(Object.fromEntries(collapsed(eu))).toEqual({ "main;work": 10, "main;idle": 5, "other;x": 7 });
    const late = await r.selectMergeTree({ profileTypeId: CPU, matchers: [], start: T0 + 10_000, end: T0 + 20_000 });
    expect(Object.fromEntries(collapsed(late))).toEqual({ "main;work": 20 });
  });

  test("merge profile carries only the referenced symbols and Pyroscope's metadata", async () => {
    const p = await r.selectMergeProfile({ profileTypeId: CPU, matchers: parseSelector('{service_name="b"}'), ...all });
    expect(p.sampleTypes).toEqual([{ type: "cpu", unit: "nanoseconds" }]);
    expect(p.period).toBe(1e9);
    expect(p.functions.map((f) => f.name).sort()).toEqual(["other", "x"]);
    expect([...p.samples.values]).toEqual([7]);
  });

  test("series points fall in (t-step, t] and group by label", async () => {
    const s = await r.selectSeries({ profileTypeId: CPU, matchers: parseSelector('{service_name="a"}'), start: T0, end: T0 + 30_000, stepMs: 15_000, groupBy: ["region"], aggregation: "sum" });
    const byRegion = Object.fromEntries(s.map((x) => [x.labels[0].value, x.points]));
    expect(byRegion.eu).toEqual([{ timestamp: T0, value: 15 }]);
    expect(byRegion.us).toEqual([{ timestamp: T0 + 15_000, value: 20 }]);
  });
});

describe("durations a client got wrong", () => {
  test("huge, negative or non-finite durations are stored clamped, and the head still writes as a block", async () => {
    const h = new Head();
    const base = cpuProfile({ "main;work": [5, 7] }, T0);
    const durations = [56817658022000000, 2 ** 63, -5, Number.NaN, 1e10];
    durations.forEach((d, i) => h.append([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "d" }], { ...base, timeNanos: BigInt(1_700_000_000_000 + i * 1000) * 1000000n, durationNanos: d }));
    const dir = mkdtempSync(join(tmpdir(), "hearth-duration-"));
    try {
      const meta = await writeBlock(h, dir);
      const r = await BlockReader.open(join(dir, meta.ulid));
      expect(meta.stats.numProfiles).toBe(durations.length * base.sampleTypes.length);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("successor heads", () => {
  test("share the symbols while most are in use; each block gets only its own head's stacks", async () => {
    const a = new Head();
    a.append(labels("a"), cpuProfile({ "main;work": [1, 10], "main;idle": [1, 5] }, T0));
    const b = a.successor();
    expect(b.symbols).toBe(a.symbols);
    // The next head interns what is new only; the previous one may still be written after.
    const before = a.symbols.stackCount;
    b.append(labels("a"), cpuProfile({ "main;work": [1, 20], "main;gc": [1, 3] }, T0 + 10_000));
    expect(a.symbols.stackCount).toBe(before + 1);
    const dir = mkdtempSync(join(tmpdir(), "hearth-successor-"));
    try {
      const all = { profileTypeId: CPU, matchers: [], start: 0, end: 0 };
      for (const [h, want] of [
        [a, { "main;work": 10, "main;idle": 5 }],
        [b, { "main;work": 20, "main;gc": 3 }],
      ] as const) {
        const block = join(dir, (await writeBlock(h, dir)).ulid);
        const r = await BlockReader.open(block);
        expect(Object.fromEntries(collapsed(await r.selectMergeTree(all)))).toEqual(want);
        r.close();
        // The root, main, and the two leaves: none of the other head's stacks.
        expect(decodeBlockSymbols(readFileSync(join(block, "symbols.bin"))).stackCount).toBe(4);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("start over once most of the stacks are no longer sent", () => {
    const a = new Head();
    a.append(labels("a"), cpuProfile({ "main;a": [1, 1], "main;b": [1, 1], "main;c": [1, 1] }, T0));
    const b = a.successor();
    b.append(labels("a"), cpuProfile({ "main;x": [1, 1] }, T0 + 10_000));
    // b uses 2 of the 5 stacks besides the root: main;x and its parent main.
    const c = b.successor();
    expect(c.symbols).not.toBe(a.symbols);
    expect(c.symbols.stackCount).toBe(1);
    expect(a.successor().symbols).toBe(a.symbols);
  });
});

describe("successor heads on real profiles", () => {
  test("blocks cut from heads sharing symbols answer as heads of their own would", async () => {
    const fixture = (name: string, timeMs: number): Profile => {
      let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", name));
      if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
      return { ...decodePprof(b), timeNanos: BigInt(timeMs) * 1000000n };
    };
    const first: [string, string][] = [["cpu.pb.gz", "go"], ["profile_java", "java"]];
    const second: [string, string][] = [["cpu.pb.gz", "go"], ["heap.pb.gz", "go-heap"]];
    const fill = (h: Head, profiles: [string, string][], t: number) => {
      for (const [f, svc] of profiles) h.append([{ name: "__name__", value: f === "heap.pb.gz" ? "memory" : "process_cpu" }, { name: "service_name", value: svc }], fixture(f, t));
      return h;
    };
    const a = fill(new Head(), first, T0);
    const b = fill(a.successor(), second, T0 + 10_000);
    expect(b.symbols).toBe(a.symbols);
    const dir = mkdtempSync(join(tmpdir(), "hearth-successor-fixtures-"));
    try {
      for (const [shared, alone] of [
        [a, fill(new Head(), first, T0)],
        [b, fill(new Head(), second, T0 + 10_000)],
      ]) {
        const block = await BlockReader.open(join(dir, (await writeBlock(shared, dir)).ulid));
        const own = new HeadReader(alone);
        const all = { start: 0, end: 0 };
        const types = (await own.profileTypes(all)).sort();
        expect((await block.profileTypes(all)).sort()).toEqual(types);
        for (const t of types) {
          const q = { profileTypeId: t, matchers: [], ...all };
          const want = collapsed(await own.selectMergeTree(q));
          expect(want.size).toBeGreaterThan(0);
          expect(collapsed(await block.selectMergeTree(q))).toEqual(want);
        }
        block.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
