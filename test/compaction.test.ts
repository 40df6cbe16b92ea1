// Compaction on real fixtures: blocks cut from heads at different times, merged into one, answer
// every query as the source blocks together do (and as one head holding everything). Duplicates
// count once; series deletion removes exactly the matching series; cost on a day of Java profiles.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockCorruptError, newUlid, type BlockMeta } from "../storage/block/meta.ts";
import { BlockReader } from "../storage/block/reader.ts";
import { writeBlock } from "../storage/block/writer.ts";
import { compactBlocks, rewriteWithout } from "../storage/compact.ts";
import { Head } from "../storage/head/head.ts";
import { HeadReader, type ProfileReader, type TimeRange } from "../storage/head/read.ts";
import { getLabel, labelsKey, sortLabels, type Labels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";
import { parseSelector } from "../storage/model/selector.ts";
import { supersededBlocks } from "../storage/tenant-db.ts";
import { batteryAnswers, fixtureProfile, nonEmptyAnswers, scaledProfile, splitBySampleLabels, type Battery } from "./helpers/query-battery.ts";

const T0 = Date.UTC(2026, 2, 1, 12);
const STEP = 10_000;
const at = (i: number) => T0 + i * STEP;

const fixtures = new Map<string, Profile>();
const fixture = (name: string) => {
  let p = fixtures.get(name);
  if (!p) fixtures.set(name, (p = fixtureProfile(name)));
  return p;
};

interface Feed {
  file: string;
  name: string;
  service: string;
  env: string;
  /** Profile times as step indexes (fractions allowed). */
  times: number[];
}

/** One head cut: what each source sent during it. */
const CUTS: { name: string; rowGroupSize?: number; feeds: Feed[] }[] = [
  {
    name: "A",
    feeds: [
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [0, 1, 2, 3, 4, 5] },
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "dev", times: [0, 2, 4] },
      { file: "go.cpu.labels.pprof", name: "process_cpu", service: "go-worker", env: "prod", times: [1, 3, 5] },
      { file: "heap", name: "memory", service: "go-api", env: "prod", times: [0, 3] },
    ],
  },
  {
    name: "B",
    rowGroupSize: 97,
    feeds: [
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [6, 7, 8, 9, 10, 11] },
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "dev", times: [6, 8, 10] },
      { file: "go.cpu.labels.pprof", name: "process_cpu", service: "go-worker", env: "prod", times: [7, 9, 11] },
      { file: "profile_java", name: "process_cpu", service: "java-shop", env: "prod", times: [6, 7, 8, 9, 10, 11] },
      { file: "heap", name: "memory", service: "go-api", env: "prod", times: [9] },
    ],
  },
  {
    name: "C",
    feeds: [
      // A late profile from before B's first: C overlaps B.
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [5.5, 12, 13, 14, 15, 16, 17] },
      { file: "go.cpu.labels.pprof", name: "process_cpu", service: "go-worker", env: "prod", times: [13, 15, 17] },
      { file: "profile_java", name: "process_cpu", service: "java-shop", env: "prod", times: [12, 13, 14, 15, 16, 17] },
      { file: "heap", name: "memory", service: "go-api", env: "prod", times: [15] },
      // Out of order within the head; only in this cut.
      { file: "nodejs-wall.pb.gz", name: "wall", service: "node-web", env: "staging", times: [14, 12, 16] },
    ],
  },
  {
    name: "D",
    rowGroupSize: 97,
    feeds: [
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [18, 19, 20, 21, 22, 23] },
      // Without span ids: D has no span column, the other sources do.
      { file: "cpu.pb.gz", name: "process_cpu", service: "go-worker", env: "prod", times: [19, 21, 23] },
      { file: "profile_java", name: "process_cpu", service: "java-shop", env: "prod", times: [18, 20, 22] },
      { file: "heap", name: "memory", service: "go-api", env: "prod", times: [20] },
    ],
  },
];

/** Appends a feed's profiles to `head`, skipping series `skip` rejects (for the deletion oracle). */
function feed(head: Head, f: Feed, skip: (labels: Labels) => boolean = () => false) {
  for (const i of f.times) {
    const labels = sortLabels([
      { name: "__name__", value: f.name },
      { name: "service_name", value: f.service },
      { name: "env", value: f.env },
      ...(f.env === "prod" ? [{ name: "region", value: "eu-1" }] : []),
    ]);
    if (skip(labels)) continue;
    for (const part of splitBySampleLabels(labels, scaledProfile(fixture(f.file), Math.round(i * 2), at(i)))) head.append(part.labels, part.profile);
  }
}

// In every range, each series' profiles lie in blocks that meet the range (see the gap test for
// what a merged block answers differently otherwise).
const RANGES: [string, TimeRange][] = [
  ["everything (0, 0)", { start: 0, end: 0 }],
  ["all blocks", { start: at(0), end: at(23) }],
  ["inside A", { start: at(1), end: at(4) }],
  ["between rows inside A", { start: at(0) + 1, end: at(1) - 1 }],
  ["across A and B", { start: at(3), end: at(9) }],
  ["exactly one timestamp", { start: at(9), end: at(9) }],
  ["a cut through B, C and D", { start: at(8) + STEP / 2, end: at(20) + 1 }],
  ["before", { start: at(-10), end: at(0) - 1 }],
  ["after", { start: at(24), end: at(100) }],
  ["open start", { start: 1, end: at(2) }],
];

/**
 * Ranges between two profiles of a series that sit in different source blocks: the series' time
 * range in a merged block covers them, so label queries there answer as a head holding both.
 */
const GAP_RANGES: [string, TimeRange][] = [
  ["the late profile", { start: at(5.5), end: at(5.5) }],
  ["the gap between A and B", { start: at(5) + 1, end: at(6) - 1 }],
  ["between heap profiles in A and B", { start: at(7), end: at(7) }],
];

/** The span ids go.cpu.labels.pprof carries (as `profile_id` sample labels), in sample order. */
const SPAN_IDS = [...new Set((fixture("go.cpu.labels.pprof").samples.labels ?? []).flatMap((ls) => ls.filter((l) => l.key === "profile_id").map((l) => l.str)))];

const BATTERY: Battery = {
  ranges: RANGES,
  selectors: ["{}", '{service_name="go-api"}', '{env!="prod"}', '{service_name!~"go-.*|java-shop"}', '{region=""}'],
  mergeSelectors: ["{}", '{env!="prod"}', '{service_name=~"go-.*", region="eu-1"}'],
  seriesCases: [
    ["{}", [], STEP],
    ["{}", ["service_name"], 60_000],
    ['{service_name=~"go-.*"}', ["env", "thread_name"], 60_000],
  ],
  labelNames: ["service_name", "env", "__profile_type__", "thread_name"],
  spanSelectors: [SPAN_IDS.slice(0, 1), [...SPAN_IDS.slice(5, 8), "0123456789abcdef"], SPAN_IDS],
  // One or two sample types per fixture: the heap's four differ only in values.
  profileTypes: [
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
    "process_cpu:samples:count:cpu:nanoseconds",
    "memory:inuse_space:bytes:space:bytes",
    "memory:alloc_objects:count:space:bytes",
    "wall:wall:microseconds:wall:microseconds",
  ],
};

let tmp: string;
const sources: { name: string; dir: string; meta: BlockMeta; reader: BlockReader }[] = [];
let oracle: Head;
let compacted: { meta: BlockMeta; reader: BlockReader };
const open: BlockReader[] = [];

async function openBlock(blocksDir: string, meta: BlockMeta): Promise<BlockReader> {
  const r = await BlockReader.open(join(blocksDir, meta.ulid));
  open.push(r);
  return r;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hearth-compaction-"));
  const blocksDir = join(tmp, "blocks");
  mkdirSync(blocksDir);
  oracle = new Head();
  let segment = 3;
  for (const cut of CUTS) {
    const head = new Head();
    for (const f of cut.feeds) {
      feed(head, f);
      feed(oracle, f);
    }
    const meta = await writeBlock(head, blocksDir, { rowGroupSize: cut.rowGroupSize, walThroughSegment: segment++ });
    sources.push({ name: cut.name, dir: join(blocksDir, meta.ulid), meta, reader: await openBlock(blocksDir, meta) });
  }
  const out = join(tmp, "compacted");
  mkdirSync(out);
  // Listed out of order: the result does not depend on it.
  const meta = await compactBlocks([...sources].reverse().map((s) => s.dir), out);
  compacted = { meta, reader: await openBlock(out, meta) };
}, 60_000);

afterAll(() => {
  for (const r of open) r.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("compacting four blocks", () => {
  test("meta: level, sources, WAL segment, stats, time range", () => {
    const m = compacted.meta;
    expect(m.compaction.level).toBe(2);
    expect(m.compaction.sources).toEqual(sources.map((s) => s.meta.ulid).sort());
    expect(m.wal?.throughSegment).toBe(6);
    expect(m.stats.numProfiles).toBe(sources.reduce((n, s) => n + s.meta.stats.numProfiles, 0));
    expect(m.stats.numProfiles).toBe(oracle.rows);
    expect(m.stats.numSamples).toBe(oracle.samples);
    expect(m.stats.numSeries).toBe(oracle.series.length);
    expect([m.minTime, m.maxTime]).toEqual([at(0), at(23)]);
    // C overlaps B (its late profile), so the sources are not merely adjacent.
    expect(sources[2].meta.minTime).toBeLessThan(sources[1].meta.maxTime);
  });

  test("the sources are left as they were", () => {
    for (const s of sources) expect(readdirSync(s.dir).sort()).toEqual(["index.sqlite", "meta.json", "profiles.parquet", "symbols.bin"]);
  });

  test("every query: the compacted block answers as the four source blocks together", async () => {
    const want = await batteryAnswers(
      sources.map((s) => s.reader),
      BATTERY,
    );
    const got = await batteryAnswers([compacted.reader], BATTERY);
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
    // The battery must exercise real data, not compare empty answers.
    expect(nonEmptyAnswers(want)).toBeGreaterThan(300);
    expect(SPAN_IDS.length).toBeGreaterThan(400);
    expect([...want].filter(([k, v]) => k.startsWith("spanTree") && (v as { total: number }).total > 0).length).toBeGreaterThan(20);
  }, 120_000);

  test("every query, averages too: the compacted block answers as one head holding everything", async () => {
    const battery = { ...BATTERY, ranges: [...BATTERY.ranges, ...GAP_RANGES] };
    const want = await batteryAnswers([new HeadReader(oracle)], battery, ["sum", "average"]);
    const got = await batteryAnswers([compacted.reader], battery, ["sum", "average"]);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
  }, 120_000);

  test("label queries in the gap between two blocks: no profile there, no series, before or after", async () => {
    // A series is selected only with a profile in range: go-worker has profiles in A and in B,
    // and merging them must not make it appear in the gap between them.
    const gap = { start: at(5) + 1, end: at(6) - 1 };
    const m = parseSelector('{service_name="go-worker"}');
    const before = (await Promise.all(sources.map((s) => s.reader.series(m, gap)))).flat();
    expect(before).toEqual([]);
    expect(await compacted.reader.series(m, gap)).toEqual([]);
    expect(await new HeadReader(oracle).series(m, gap)).toEqual([]);
    // Just inside the range, both sides agree again.
    const edge = { start: at(5), end: at(6) - 1 };
    expect((await compacted.reader.series(m, edge)).map(labelsKey).sort()).toEqual((await Promise.all(sources.map((s) => s.reader.series(m, edge)))).flat().map(labelsKey).sort());
  });

  test("compacting again: a compacted block with another, levels and sources carried", async () => {
    const dir = join(tmp, "again");
    mkdirSync(dir);
    const ab = await compactBlocks([sources[0].dir, sources[1].dir], dir);
    const cd = await compactBlocks([sources[2].dir, sources[3].dir], dir);
    const abcd = await compactBlocks([join(dir, cd.ulid), join(dir, ab.ulid)], dir);
    expect(abcd.compaction).toEqual({ level: 3, sources: sources.map((s) => s.meta.ulid).sort() });
    // Both source generations are superseded at start-up if a crash left them beside the result.
    expect([...supersededBlocks([...sources.map((s) => s.meta), ab, cd, abcd])].sort()).toEqual([...sources.map((s) => s.meta.ulid), ab.ulid, cd.ulid].sort());
    const r = await openBlock(dir, abcd);
    const small: Battery = { ...BATTERY, ranges: RANGES.slice(0, 5), selectors: ["{}"], mergeSelectors: ["{}", '{env!="prod"}'] };
    const want = await batteryAnswers([compacted.reader], small);
    const got = await batteryAnswers([r], small);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
  }, 120_000);
});

describe("duplicates", () => {
  /** A head of go-api and java-shop CPU profiles at the given steps. */
  function smallHead(times: number[]): Head {
    const h = new Head();
    feed(h, { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times });
    feed(h, { file: "profile_java", name: "process_cpu", service: "java-shop", env: "prod", times });
    return h;
  }
  const small: Battery = { ...BATTERY, ranges: RANGES.slice(0, 6), selectors: ["{}", '{service_name="go-api"}'], mergeSelectors: ["{}", '{service_name="java-shop"}'] };

  test("the same head written twice, compacted: answers equal one copy", async () => {
    const dir = mkdtempSync(join(tmp, "dup-"));
    const head = smallHead([0, 1, 2, 3]);
    const a = await writeBlock(head, dir);
    const b = await writeBlock(head, dir, { rowGroupSize: 50 });
    let stats = { rows: 0, droppedRows: 0, duplicateRows: 0 };
    const m = await compactBlocks([join(dir, a.ulid), join(dir, b.ulid)], dir, { onStats: (s) => (stats = s) });
    expect(stats).toEqual({ rows: head.rows, droppedRows: 0, duplicateRows: head.rows });
    expect(m.stats).toEqual(a.stats);
    const want = await batteryAnswers([await openBlock(dir, a)], small, ["sum", "average"]);
    const got = await batteryAnswers([await openBlock(dir, m)], small, ["sum", "average"]);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
    // Before compaction the two copies count twice: this is what compaction repairs.
    const twice = await batteryAnswers([await openBlock(dir, a), await openBlock(dir, b)], small);
    const key = `tree process_cpu:cpu:nanoseconds:cpu:nanoseconds everything (0, 0) {}`;
    expect((twice.get(key) as { total: number }).total).toBe(2 * (want.get(key) as { total: number }).total);
  }, 30_000);

  test("partly overlapping copies: each (series, time) once", async () => {
    const dir = mkdtempSync(join(tmp, "dup-part-"));
    const a = await writeBlock(smallHead([0, 1, 2, 3, 4]), dir);
    const b = await writeBlock(smallHead([3, 4, 5, 6]), dir);
    const m = await compactBlocks([join(dir, a.ulid), join(dir, b.ulid)], dir);
    const want = await batteryAnswers([new HeadReader(smallHead([0, 1, 2, 3, 4, 5, 6]))], small, ["sum", "average"]);
    const got = await batteryAnswers([await openBlock(dir, m)], small, ["sum", "average"]);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
  }, 30_000);

  test("two different rows at one (series, time): the earliest-written block's row is kept", async () => {
    const dir = mkdtempSync(join(tmp, "dup-conflict-"));
    const labels = sortLabels([
      { name: "__name__", value: "process_cpu" },
      { name: "service_name", value: "go-api" },
    ]);
    const write = async (scale: number, ulidTime: number) => {
      const h = new Head();
      const p = fixture("cpu.pb.gz");
      h.append(labels, { ...p, timeNanos: BigInt(at(0)) * 1000000n, samples: { ...p.samples, values: p.samples.values.map((v) => v * scale) } });
      return writeBlock(h, dir, { ulid: newUlid(ulidTime) });
    };
    const later = await write(3, T0 + 2);
    const earlier = await write(2, T0 + 1);
    const m = await compactBlocks([join(dir, later.ulid), join(dir, earlier.ulid)], dir);
    expect(m.stats.numProfiles).toBe(earlier.stats.numProfiles);
    const q = { profileTypeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", matchers: [], start: 0, end: 0 };
    const total = async (meta: BlockMeta) => (await (await openBlock(dir, meta)).selectMergeTree(q)).total();
    expect(await total(m)).toBe(await total(earlier));
    expect(await total(m)).not.toBe(await total(later));
    // Still so once the earlier copy went through a compaction of its own (a newer ULID).
    const other = new Head();
    feed(other, { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [3] });
    const third = await writeBlock(other, dir, { ulid: newUlid(T0 + 3) });
    const merged = await compactBlocks([join(dir, earlier.ulid), join(dir, third.ulid)], dir);
    const m2 = await compactBlocks([join(dir, later.ulid), join(dir, merged.ulid)], dir);
    const q0 = { ...q, start: at(0), end: at(0) };
    expect((await (await openBlock(dir, m2)).selectMergeTree(q0)).total()).toBe(await total(earlier));
  });

  test("a duplicate inside one block goes too", async () => {
    const dir = mkdtempSync(join(tmp, "dup-inner-"));
    const h = new Head();
    feed(h, { file: "cpu.pb.gz", name: "process_cpu", service: "go-api", env: "prod", times: [0, 1, 1, 2] });
    const a = await writeBlock(h, dir);
    const out = mkdtempSync(join(tmp, "dup-inner-out-"));
    let stats: unknown;
    const m = await compactBlocks([join(dir, a.ulid)], out, { onStats: (x) => (stats = x) });
    expect(stats).toEqual({ rows: h.rows - 2, droppedRows: 0, duplicateRows: 2 });
    expect(m.stats.numProfiles).toBe(h.rows - 2);
  });
});

describe("deleting series", () => {
  const GONE = '{service_name="go-api"}';
  const isGone = (ls: Labels) => getLabel(ls, "service_name") === "go-api";

  test("rewriteWithout drops exactly the matching series; every other answer is unchanged", async () => {
    const dir = join(tmp, "deleted");
    mkdirSync(dir);
    const m = await rewriteWithout(compacted.reader.dir, dir, parseSelector(GONE));
    expect(m).not.toBeNull();
    const r = await openBlock(dir, m!);
    expect(await r.series(parseSelector(GONE), { start: 0, end: 0 })).toEqual([]);
    const kept = await compacted.reader.series(parseSelector('{service_name!="go-api"}'), { start: 0, end: 0 });
    expect((await r.series([], { start: 0, end: 0 })).map(labelsKey).sort()).toEqual(kept.map(labelsKey).sort());
    // The same data never holding go-api: a head is the oracle, averages included.
    const without = new Head();
    for (const cut of CUTS) for (const f of cut.feeds) feed(without, f, isGone);
    const battery = { ...BATTERY, seriesCases: BATTERY.seriesCases.slice(0, 2) };
    const want = await batteryAnswers([new HeadReader(without)], battery, ["sum", "average"]);
    const got = await batteryAnswers([r], battery, ["sum", "average"]);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
    // The memory type was go-api's alone.
    expect(await r.profileTypes({ start: 0, end: 0 })).not.toContain("memory:inuse_space:bytes:space:bytes");
    // One level up with the same sources: a crash before the original is deleted leaves it superseded.
    expect(m!.compaction).toEqual({ level: compacted.meta.compaction.level + 1, sources: compacted.meta.compaction.sources });
    expect(m!.wal).toEqual(compacted.meta.wal);
    expect([...supersededBlocks([compacted.meta, m!])]).toEqual([compacted.meta.ulid]);
  }, 120_000);

  test("matchers are ANDed: only go-api in dev goes", async () => {
    const out = mkdtempSync(join(tmp, "deleted-and-"));
    let got: unknown;
    const m = await compactBlocks([compacted.reader.dir], out, { drop: parseSelector('{service_name="go-api", env="dev"}'), onStats: (x) => (got = x) });
    const dev = oracle.series.filter((s) => getLabel(s.labels, "service_name") === "go-api" && getLabel(s.labels, "env") === "dev");
    expect(dev.length).toBeGreaterThan(0);
    const devRows = dev.reduce((n, s) => n + s.timeMs.length, 0);
    expect(got).toEqual({ rows: oracle.rows - devRows, droppedRows: devRows, duplicateRows: 0 });
    const isDev = (ls: Labels) => getLabel(ls, "service_name") === "go-api" && getLabel(ls, "env") === "dev";
    const all = { start: 0, end: 0 };
    const kept = (await compacted.reader.series([], all)).filter((ls) => !isDev(ls));
    expect((await (await openBlock(out, m!)).series([], all)).map(labelsKey).sort()).toEqual(kept.map(labelsKey).sort());
  });

  test("nothing left: null, and nothing written", async () => {
    const dir = mkdtempSync(join(tmp, "deleted-all-"));
    expect(await rewriteWithout(sources[0].dir, dir, parseSelector('{service_name=~".+"}'))).toBeNull();
    expect(readdirSync(dir)).toEqual([]);
  });

  test("no matchers is refused rather than deleting everything", async () => {
    await expect(rewriteWithout(sources[0].dir, tmp, [])).rejects.toThrow("refusing");
  });
});

describe("damaged sources", () => {
  test("a truncated source fails the compaction, naming it, and leaves nothing behind", async () => {
    const dir = mkdtempSync(join(tmp, "damaged-"));
    const bad = join(dir, "src", sources[1].meta.ulid);
    cpSync(sources[1].dir, bad, { recursive: true });
    truncateSync(join(bad, "profiles.parquet"), statSync(join(bad, "profiles.parquet")).size - 100);
    const out = join(dir, "out");
    mkdirSync(out);
    const e = await compactBlocks([sources[0].dir, bad], out).then(
      () => null,
      (x) => x,
    );
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as Error).message).toContain(sources[1].meta.ulid);
    expect(readdirSync(out)).toEqual([]);
  });

  test("a garbled stack id is caught, not written through", async () => {
    const dir = mkdtempSync(join(tmp, "garbled-"));
    const bad = join(dir, sources[0].meta.ulid);
    cpSync(sources[0].dir, bad, { recursive: true });
    // Replace symbols.bin with another block's (fewer stacks): row stack ids fall out of range.
    const other = await writeBlock(
      (() => {
        const h = new Head();
        feed(h, { file: "cpu.pb.gz", name: "process_cpu", service: "x", env: "dev", times: [0] });
        return h;
      })(),
      dir,
    );
    const symbols = readFileSync(join(dir, other.ulid, "symbols.bin"));
    await Bun.write(join(bad, "symbols.bin"), symbols);
    const meta = JSON.parse(readFileSync(join(bad, "meta.json"), "utf8")) as BlockMeta;
    meta.files = meta.files.map((f) => (f.relPath === "symbols.bin" ? { ...f, sizeBytes: symbols.length } : f));
    await Bun.write(join(bad, "meta.json"), JSON.stringify(meta));
    const out = mkdtempSync(join(tmp, "garbled-out-"));
    await expect(compactBlocks([bad], out)).rejects.toBeInstanceOf(BlockCorruptError);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe("cost", () => {
  const BLOCKS = Number(process.env.HEARTH_COMPACT_BLOCKS ?? 24);
  const PROFILES = 360;

  test(`${BLOCKS} blocks of ${PROFILES} Java profiles (10 s apart): time and peak RSS of the merge`, async () => {
    const dir = mkdtempSync(join(tmp, "cost-"));
    const from = join(dir, "blocks");
    const to = join(dir, "out");
    mkdirSync(from);
    mkdirSync(to);
    const base = fixture("profile_java");
    const labels = sortLabels([
      { name: "__name__", value: "process_cpu" },
      { name: "service_name", value: "java-shop" },
    ]);
    let sourceBytes = 0;
    let rows = 0;
    const t = performance.now();
    for (let b = 0; b < BLOCKS; b++) {
      const head = new Head();
      for (let i = 0; i < PROFILES; i++) {
        const k = b * PROFILES + i;
        const values = base.samples.values.map((v, j) => v * (1 + ((k + j) % 7)));
        head.append(labels, { ...base, timeNanos: BigInt(T0 + k * STEP) * 1000000n, samples: { ...base.samples, values } });
      }
      const m = await writeBlock(head, from, { walThroughSegment: b + 1 });
      sourceBytes += m.files.reduce((n, f) => n + f.sizeBytes, 0);
      rows += head.rows;
    }
    const buildMs = performance.now() - t;
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "helpers", "compact-child.ts"), from, to], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    const r = JSON.parse(out.trim().split("\n").pop()!) as { ms: number; rssBefore: number; peakRss: number; meta: BlockMeta };
    const outBytes = r.meta.files.reduce((n, f) => n + f.sizeBytes, 0);
    const mb = (x: number) => (x / 1048576).toFixed(0);
    const kb = (x: number) => (x / 1024).toFixed(0);
    console.log(
      `compaction: ${BLOCKS} blocks × ${PROFILES} Java profiles (${rows} rows, ${r.meta.stats.numSamples} samples, ${kb(sourceBytes)} kB on disk) ` +
        `merged in ${(r.ms / 1000).toFixed(2)} s; peak RSS ${mb(r.peakRss)} MB (${mb(r.rssBefore)} MB before); output ${kb(outBytes)} kB; ` +
        `building the sources took ${(buildMs / 1000).toFixed(1)} s`,
    );
    expect(r.meta.stats.numProfiles).toBe(rows);
    expect(r.meta.compaction.sources).toHaveLength(BLOCKS);
    expect(r.meta.wal?.throughSegment).toBe(BLOCKS);
  }, 300_000);
});
