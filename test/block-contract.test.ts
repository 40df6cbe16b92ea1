// The block contract: a head and the block written from it answer every query identically, on
// real fixtures (several services, label sets split from sample labels, time stamps, types).
// Also: damaged or missing block files give a clear error, and a leftover `.tmp` is not a block.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockReader } from "../storage/block/reader.ts";
import { BlockCorruptError, newUlid, readMeta, writeMeta, type BlockMeta } from "../storage/block/meta.ts";
import { writeBlock } from "../storage/block/writer.ts";
import { Head } from "../storage/head/head.ts";
import { HeadReader, type ProfileReader, type SelectQuery, type SeriesPoints, type TimeRange } from "../storage/head/read.ts";
import { collapseProfile } from "../storage/model/collapse.ts";
import { labelsKey, sortLabels, type Labels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";
import { parseSelector, type Matcher } from "../storage/model/selector.ts";
import { parseSpanId } from "../storage/model/span-id.ts";
import { collapsed, type Tree } from "../storage/model/tree.ts";
import { fixtureProfile as fixture, scaledProfile as scaled, splitBySampleLabels } from "./helpers/query-battery.ts";

const T0 = Date.UTC(2026, 2, 1, 12);
const STEP = 10_000;

const SOURCES: { file: string; name: string; services: [string, string][]; times: number[] }[] = [
  { file: "cpu.pb.gz", name: "process_cpu", services: [["go-api", "prod"], ["go-api", "dev"]], times: [0, 1, 2, 3, 4, 5] },
  { file: "go.cpu.labels.pprof", name: "process_cpu", services: [["go-worker", "prod"]], times: [0, 2, 4] },
  { file: "profile_java", name: "process_cpu", services: [["java-shop", "prod"]], times: [1, 2, 3] },
  { file: "heap", name: "memory", services: [["go-api", "prod"]], times: [0, 3] },
  { file: "nodejs-wall.pb.gz", name: "wall", services: [["node-web", "staging"]], times: [0, 1, 5] },
  // Out of order within a series: the block sorts by time, the head does not.
  { file: "nodejs-wall.pb.gz", name: "wall", services: [["node-late", "dev"]], times: [4, 2] },
];

function buildHead(): Head {
  const head = new Head();
  for (const src of SOURCES) {
    const base = fixture(src.file);
    for (const [svc, env] of src.services)
      for (const i of src.times) {
        const labels = sortLabels([
          { name: "__name__", value: src.name },
          { name: "service_name", value: svc },
          { name: "env", value: env },
          ...(env === "prod" ? [{ name: "region", value: "eu-1" }] : []),
        ]);
        for (const part of splitBySampleLabels(labels, scaled(base, i, T0 + i * STEP))) head.append(part.labels, part.profile);
      }
  }
  return head;
}

const RANGES: [string, TimeRange][] = [
  ["everything (0, 0)", { start: 0, end: 0 }],
  ["the whole block", { start: T0, end: T0 + 5 * STEP }],
  ["two rows, both ends inclusive", { start: T0 + STEP, end: T0 + 2 * STEP }],
  ["a cut through the middle", { start: T0 + STEP / 2, end: T0 + 3 * STEP + 1 }],
  ["exactly one timestamp", { start: T0 + 4 * STEP, end: T0 + 4 * STEP }],
  ["between rows", { start: T0 + 1, end: T0 + STEP - 1 }],
  ["before the block", { start: T0 - 10 * STEP, end: T0 - 1 }],
  ["after the block", { start: T0 + 6 * STEP, end: T0 + 60 * STEP }],
  ["open start", { start: 1, end: T0 + STEP }],
];

const SELECTORS = [
  "{}",
  '{service_name="go-api"}',
  '{env=~"pro.*"}',
  '{env!="prod"}',
  '{service_name!~"go-.*|java-shop"}',
  '{region=""}',
  '{region="eu-1", service_name=~".*-.*"}',
  '{service_name="nobody"}',
];

// Merge queries are costlier to compare (the heap fixture has thousands of stacks): fewer selectors.
const MERGE_SELECTORS = ["{}", '{service_name="go-api"}', '{env!="prod"}', '{service_name!~"go-.*|java-shop"}', '{region="eu-1", service_name=~".*-.*"}'];

const sorted = (xs: string[]) => [...xs].sort();
const sortedSeries = (ls: Labels[]) => ls.map(labelsKey).sort();
const treeAnswer = (t: Tree) => ({ total: t.total(), stacks: [...collapsed(t)].sort((a, b) => (a[0] < b[0] ? -1 : 1)) });
const seriesAnswer = (s: SeriesPoints[]) => s.map((x) => ({ key: labelsKey(x.labels), points: x.points })).sort((a, b) => (a.key < b.key ? -1 : 1));

let head: Head;
let tmp: string;
const blocks: { name: string; reader: BlockReader; meta: BlockMeta }[] = [];

beforeAll(async () => {
  head = buildHead();
  tmp = mkdtempSync(join(tmpdir(), "hearth-block-contract-"));
  // The default layout, and tiny row groups so reads cross row-group boundaries.
  for (const [name, rowGroupSize] of [
    ["default row groups", undefined],
    ["row groups of 97 rows", 97],
  ] as const) {
    const meta = await writeBlock(head, tmp, { rowGroupSize });
    blocks.push({ name, meta, reader: await BlockReader.open(join(tmp, meta.ulid)) });
  }
});

afterAll(() => {
  for (const b of blocks) b.reader.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("block contract: head and block answer identically", () => {
  test("the head under test is varied", () => {
    const types = new Set(head.series.map((s) => s.profileType));
    expect(types.size).toBeGreaterThanOrEqual(6);
    expect(head.series.length).toBeGreaterThan(15);
    expect(blocks[0].meta.stats).toEqual({ numSeries: head.series.length, numProfiles: head.rows, numSamples: head.samples });
    expect(blocks[0].meta.minTime).toBe(T0);
    expect(blocks[0].meta.maxTime).toBe(T0 + 5 * STEP);
    // Several row groups in the small layout.
    expect(head.samples).toBeGreaterThan(97 * 10);
  });

  for (const b of [0, 1]) {
    describe(`${["default row groups", "row groups of 97 rows"][b]}`, () => {
      const both = (): [ProfileReader, ProfileReader] => [new HeadReader(head), blocks[b].reader];

      test("profileTypes, labelNames, labelValues, series", async () => {
        const [h, k] = both();
        let checked = 0;
        for (const [rname, r] of RANGES) {
          expect(sorted(await k.profileTypes(r)), rname).toEqual(sorted(await h.profileTypes(r)));
          for (const sel of SELECTORS) {
            const m = parseSelector(sel);
            const what = `${rname} ${sel}`;
            expect(sorted(await k.labelNames(m, r)), what).toEqual(sorted(await h.labelNames(m, r)));
            for (const name of ["service_name", "env", "region", "__profile_type__", "thread_name", "missing"])
              expect(sorted(await k.labelValues(name, m, r)), `${what} ${name}`).toEqual(sorted(await h.labelValues(name, m, r)));
            expect(sortedSeries(await k.series(m, r)), what).toEqual(sortedSeries(await h.series(m, r)));
            checked++;
          }
        }
        expect(checked).toBe(RANGES.length * SELECTORS.length);
      }, 30_000);

      test("selectMergeTree and selectMergeProfile", async () => {
        const [h, k] = both();
        const types = sorted(await h.profileTypes({ start: 0, end: 0 }));
        let nonEmpty = 0;
        for (const profileTypeId of types)
          for (const [rname, r] of RANGES)
            for (const sel of MERGE_SELECTORS) {
              const q: SelectQuery = { profileTypeId, matchers: parseSelector(sel), ...r };
              const what = `${profileTypeId} ${rname} ${sel}`;
              const want = treeAnswer(await h.selectMergeTree(q));
              expect(treeAnswer(await k.selectMergeTree(q)), what).toEqual(want);
              if (want.total > 0) nonEmpty++;
              const hp = await h.selectMergeProfile(q);
              const kp = await k.selectMergeProfile(q);
              expect([...collapseProfile(kp, 0)].sort(), what).toEqual([...collapseProfile(hp, 0)].sort());
              // Symbols are renumbered in the head's order, so even the profile's shape agrees.
              expect(kp, what).toEqual(hp);
            }
        expect(nonEmpty).toBeGreaterThan(50);
      }, 60_000);

      test("selectMergeSpanTree: only the selected spans' samples", async () => {
        const [h, k] = both();
        const ids = [...new Set((fixture("go.cpu.labels.pprof").samples.labels ?? []).flatMap((ls) => ls.filter((l) => l.key === "profile_id").map((l) => parseSpanId(l.str))))];
        expect(ids.length).toBeGreaterThan(400);
        const selections = [ids.slice(0, 1), ids.slice(10, 20), [...ids.slice(3, 4), 0x0123456789abcdefn], ids, [0x0123456789abcdefn]];
        let nonEmpty = 0;
        for (const profileTypeId of sorted(await h.profileTypes({ start: 0, end: 0 })))
          for (const [rname, r] of RANGES)
            for (const sel of ["{}", '{service_name="go-worker"}', '{service_name="go-api"}'])
              for (const spans of selections) {
                const q = { profileTypeId, matchers: parseSelector(sel), ...r, spans: new Set(spans) };
                const want = treeAnswer(await h.selectMergeSpanTree(q));
                expect(treeAnswer(await k.selectMergeSpanTree(q)), `${profileTypeId} ${rname} ${sel} ${spans.length}`).toEqual(want);
                if (want.total > 0) nonEmpty++;
              }
        expect(nonEmpty).toBeGreaterThan(20);
      }, 60_000);

      test("selectSeries: group_by, steps, sum and average", async () => {
        const [h, k] = both();
        const types = sorted(await h.profileTypes({ start: 0, end: 0 }));
        let points = 0;
        for (const profileTypeId of types)
          for (const [rname, r] of RANGES)
            for (const [sel, groupBy] of [
              ["{}", []],
              ["{}", ["service_name"]],
              ['{env!="prod"}', ["env", "thread_name"]],
              ['{service_name=~"go-.*"}', ["service_name"]],
            ] as const)
              for (const [stepMs, aggregation] of [
                [STEP, "sum"],
                [15_000, "average"],
                [60_000, "sum"],
                [60_000, "average"],
              ] as const) {
                const q = { profileTypeId, matchers: parseSelector(sel), ...r, groupBy: [...groupBy], stepMs, aggregation };
                const want = seriesAnswer(await h.selectSeries(q));
                expect(seriesAnswer(await k.selectSeries(q)), `${profileTypeId} ${rname} ${sel} ${groupBy} ${stepMs} ${aggregation}`).toEqual(want);
                points += want.reduce((n, s) => n + s.points.length, 0);
              }
        expect(points).toBeGreaterThan(100);
      }, 60_000);

      test("concurrent queries on one reader do not mix their sums", async () => {
        const [h, k] = both();
        const types = sorted(await h.profileTypes({ start: 0, end: 0 }));
        const qs = types.map((profileTypeId): SelectQuery => ({ profileTypeId, matchers: [], start: 0, end: 0 }));
        const got = await Promise.all(qs.map((q) => k.selectMergeTree(q)));
        for (let i = 0; i < qs.length; i++) expect(treeAnswer(got[i])).toEqual(treeAnswer(await h.selectMergeTree(qs[i])));
      });
    });
  }
});

describe("block files", () => {
  /** A private copy of the first block, named by its ULID, with `damage` applied. */
  async function damaged(damage: (dir: string) => void): Promise<BlockReader> {
    const parent = mkdtempSync(join(tmp, "damaged-"));
    const dir = join(parent, blocks[0].meta.ulid);
    cpSync(join(tmp, blocks[0].meta.ulid), dir, { recursive: true });
    damage(dir);
    return BlockReader.open(dir);
  }
  const query: SelectQuery = { profileTypeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", matchers: [], start: 0, end: 0 };
  const garbage = (path: string) => {
    const n = readFileSync(path).length;
    writeFileSync(path, new Uint8Array(n).map((_, i) => (i * 131 + 7) & 255));
  };

  async function expectCorrupt(p: Promise<unknown>, file: string) {
    const e = await p.then(
      () => null,
      (x) => x,
    );
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as BlockCorruptError).file).toBe(file);
    expect((e as Error).message).toContain(blocks[0].meta.ulid);
    expect((e as Error).message).toContain(file);
  }

  test("a garbled profiles.parquet rejects queries that read it, naming block and file", async () => {
    const r = await damaged((d) => garbage(join(d, "profiles.parquet")));
    await expectCorrupt(r.selectMergeTree(query), "profiles.parquet");
    await expectCorrupt(r.selectSeries({ ...query, groupBy: [], stepMs: STEP, aggregation: "sum" }), "profiles.parquet");
    // Label queries need only the index, which is intact.
    expect((await r.series([], { start: 0, end: 0 })).length).toBe(head.series.length);
    r.close();
  });

  test("a truncated profiles.parquet is caught by its size", async () => {
    const r = await damaged((d) => truncateSync(join(d, "profiles.parquet"), 100));
    await expectCorrupt(r.selectMergeProfile(query), "profiles.parquet");
  });

  test("a garbled or truncated index.sqlite rejects every query", async () => {
    const r = await damaged((d) => garbage(join(d, "index.sqlite")));
    await expectCorrupt(r.labelNames([], { start: 0, end: 0 }), "index.sqlite");
    await expectCorrupt(r.selectMergeTree(query), "index.sqlite");
    const t = await damaged((d) => truncateSync(join(d, "index.sqlite"), 1000));
    await expectCorrupt(t.profileTypes({ start: 0, end: 0 }), "index.sqlite");
  });

  test("missing or garbled symbols.bin", async () => {
    const r = await damaged((d) => unlinkSync(join(d, "symbols.bin")));
    await expectCorrupt(r.selectMergeTree(query), "symbols.bin");
    const g = await damaged((d) => garbage(join(d, "symbols.bin")));
    await expectCorrupt(g.selectMergeTree(query), "symbols.bin");
  });

  test("meta.json: missing or invalid is rejected at open", async () => {
    await expectCorrupt(damaged((d) => unlinkSync(join(d, "meta.json"))), "meta.json");
    await expectCorrupt(damaged((d) => writeFileSync(join(d, "meta.json"), "{ not json")), "meta.json");
    await expectCorrupt(
      damaged((d) => writeFileSync(join(d, "meta.json"), JSON.stringify({ ...readMeta(d), version: 7 }))),
      "meta.json",
    );
  });

  test("a query outside the block's time range opens no file", async () => {
    const r = await damaged((d) => {
      for (const f of ["profiles.parquet", "index.sqlite", "symbols.bin"]) unlinkSync(join(d, f));
    });
    const away = { start: T0 + 100 * STEP, end: T0 + 200 * STEP };
    expect(await r.labelNames([], away)).toEqual([]);
    expect(collapsed(await r.selectMergeTree({ ...query, ...away })).size).toBe(0);
    await expectCorrupt(r.labelNames([], { start: 0, end: 0 }), "index.sqlite");
  });

  test("a leftover .tmp is not a block, and a new write replaces it", async () => {
    const dir = mkdtempSync(join(tmp, "tmp-"));
    const meta = await writeBlock(head, dir);
    // An interrupted write leaves <ULID>.tmp, complete or not: it never opens as a block.
    cpSync(join(dir, meta.ulid), join(dir, "01KZZZZZZZZZZZZZZZZZZZZZZZ.tmp"), { recursive: true });
    await expectCorruptAny(BlockReader.open(join(dir, "01KZZZZZZZZZZZZZZZZZZZZZZZ.tmp")));
    const again = await writeBlock(head, dir, { ulid: "01KZZZZZZZZZZZZZZZZZZZZZZZ" });
    const r = await BlockReader.open(join(dir, again.ulid));
    expect(treeAnswer(await r.selectMergeTree(query))).toEqual(treeAnswer(await new HeadReader(head).selectMergeTree(query)));
    r.close();
    // Writing over an existing block is refused.
    await expect(writeBlock(head, dir, { ulid: meta.ulid })).rejects.toThrow("already exists");
  });

  async function expectCorruptAny(p: Promise<unknown>) {
    await expect(p).rejects.toBeInstanceOf(BlockCorruptError);
  }

  test("opening reads meta.json only: 1,000 blocks open fast", async () => {
    const parent = mkdtempSync(join(tmp, "many-"));
    const metas: BlockMeta[] = [];
    for (let i = 0; i < 1000; i++) {
      const ulid = newUlid(T0 + i);
      mkdirSync(join(parent, ulid));
      const meta = { ...blocks[0].meta, ulid, compaction: { level: 1, sources: [ulid] } };
      writeMeta(join(parent, ulid), meta);
      metas.push(meta);
    }
    const t = performance.now();
    const readers = await Promise.all(metas.map((m) => BlockReader.open(join(parent, m.ulid))));
    const ms = performance.now() - t;
    console.log(`opened 1,000 blocks in ${ms.toFixed(1)} ms`);
    expect(readers.map((r) => r.meta)).toEqual(metas);
    expect(ms).toBeLessThan(1000);
    // Nothing else was read: the other files do not even exist.
    await expectCorruptAny(readers[0].series([], { start: 0, end: 0 }));
  });

  test("a closed reader opens its files again on the next query", async () => {
    const r = await BlockReader.open(join(tmp, blocks[0].meta.ulid));
    const a = treeAnswer(await r.selectMergeTree(query));
    r.close();
    expect(treeAnswer(await r.selectMergeTree(query))).toEqual(a);
    r.close();
  });
});
