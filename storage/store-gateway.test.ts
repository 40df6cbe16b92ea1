// The store-gateway over a memory bucket filled by the shipper: lists tenants and blocks, fetches
// a block only for a query that overlaps it, answers like the local block, follows the bucket's
// changes, hides superseded and excluded blocks, and survives damaged ones.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockCache, bucketBlockPrefix } from "./block/block-cache.ts";
import type { BlockMeta } from "./block/meta.ts";
import { BlockReader } from "./block/reader.ts";
import { writeBlock } from "./block/writer.ts";
import type { Bucket } from "./bucket/bucket.ts";
import { MemoryBucket } from "./bucket/memory-bucket.ts";
import { Head } from "./head/head.ts";
import type { ProfileReader, SelectQuery } from "./head/read.ts";
import type { Labels } from "./model/labels.ts";
import { parseSelector } from "./model/selector.ts";
import { collapsed, Tree } from "./model/tree.ts";
import { RangeCache } from "./bucket/range-cache.ts";
import { PROFILES_FILE } from "./block/schema.ts";
import { existsSync } from "node:fs";
import { Shipper } from "./shipper.ts";
import { StoreGateway } from "./store-gateway.ts";
import { cpuProfile } from "../test/helpers/cpu-profile.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const HOUR = 3600_000;
const T0 = Date.UTC(2026, 2, 1);

const labels = (svc: string): Labels => [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: svc },
];

/** A head with two services, profiles every minute over [start, start + 10 min]. */
function headAt(start: number, scale: number): Head {
  const h = new Head();
  for (let i = 0; i <= 10; i++) {
    h.append(labels("api"), cpuProfile({ "main;serve;parse": 10 * scale * (i + 1), "main;serve;write": 7 * scale }, start + i * 60_000));
    h.append(labels("worker"), cpuProfile({ "main;loop;work": 5 * scale * (i + 2) }, start + i * 60_000));
  }
  return h;
}

const query = (start: number, end: number, sel = "{}"): SelectQuery => ({ profileTypeId: CPU, matchers: parseSelector(sel), start, end });

async function mergedTree(readers: ProfileReader[], q: SelectQuery): Promise<Map<string, number>> {
  const t = new Tree();
  for (const part of await Promise.all(readers.map((r) => r.selectMergeTree(q)))) t.merge(part);
  return collapsed(t);
}

let root: string;
let bucket: MemoryBucket;
let logs: string[];
const log = (m: string) => logs.push(m);

/** Writes blocks for a tenant locally and ships them; returns their metas and a local reader of each. */
async function ship(tenant: string, heads: Head[], opts: { level?: number; sources?: string[]; rowGroupSize?: number } = {}) {
  const blocksDir = join(root, "data", tenant, "blocks");
  mkdirSync(blocksDir, { recursive: true });
  const out: { meta: BlockMeta; local: BlockReader }[] = [];
  for (const h of heads) {
    const meta = await writeBlock(h, blocksDir, opts);
    out.push({ meta, local: await BlockReader.open(join(blocksDir, meta.ulid)) });
  }
  const shipper = new Shipper(bucket, tenant, blocksDir, { log });
  expect((await shipper.sync()).failed).toEqual([]);
  return { blocks: out, shipper };
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "hearth-store-gateway-"));
  bucket = new MemoryBucket();
  logs = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("StoreGateway", () => {
  test("lists tenants and blocks; a block is fetched only by a query that overlaps it, and answers like the local block", async () => {
    const t1 = await ship("t1", [headAt(T0, 1), headAt(T0 + HOUR, 2)]);
    const t2 = await ship("t2", [headAt(T0, 3)]);
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30 });
    const gw = new StoreGateway(bucket, cache, { log });
    const r = await gw.sync();
    expect(r.blocks).toBe(3);
    expect(r.added).toEqual([...t1.blocks, ...t2.blocks].map((b) => b.meta.ulid).sort());
    expect(gw.tenants()).toEqual(["t1", "t2"]);
    expect(gw.metas("t1")).toEqual(t1.blocks.map((b) => b.meta));
    expect(gw.readers("nobody")).toEqual([]);

    // Before any block: nothing fetched.
    expect(await mergedTree(gw.readers("t1"), query(T0 - HOUR, T0 - 1))).toEqual(new Map());
    expect(await gw.readers("t1")[0].profileTypes({ start: T0 - HOUR, end: T0 - 1 })).toEqual([]);
    expect(cache.size).toBe(0);

    // The second half of the first block: only it is fetched.
    const q = query(T0 + 5 * 60_000, T0 + 30 * 60_000, '{service_name="api"}');
    const want = await mergedTree(t1.blocks.map((b) => b.local), q);
    expect(want.size).toBeGreaterThan(0);
    expect(await mergedTree(gw.readers("t1"), q)).toEqual(want);
    expect(cache.size).toBe(1);
    expect(cache.has("t1", t1.blocks[0].meta.ulid)).toBe(true);

    // Every query kind, over everything.
    const all = query(T0, T0 + 2 * HOUR);
    const [remote, local] = [gw.readers("t1"), t1.blocks.map((b) => b.local)];
    const each = async <T>(rs: ProfileReader[], f: (r: ProfileReader) => Promise<T>) => Promise.all(rs.map(f));
    expect(await mergedTree(remote, all)).toEqual(await mergedTree(local, all));
    expect(await each(remote, (x) => x.profileTypes(all))).toEqual(await each(local, (x) => x.profileTypes(all)));
    expect(await each(remote, (x) => x.labelValues("service_name", [], all))).toEqual(await each(local, (x) => x.labelValues("service_name", [], all)));
    expect(await each(remote, (x) => x.series(parseSelector('{service_name="worker"}'), all))).toEqual(await each(local, (x) => x.series(parseSelector('{service_name="worker"}'), all)));
    const sq = { ...all, groupBy: ["service_name"], stepMs: 60_000, aggregation: "sum" as const };
    expect(await each(remote, (x) => x.selectSeries(sq))).toEqual(await each(local, (x) => x.selectSeries(sq)));
    expect(await each(remote, (x) => x.selectMergeProfile(all))).toEqual(await each(local, (x) => x.selectMergeProfile(all)));
    expect(await mergedTree(gw.readers("t2"), all)).toEqual(await mergedTree(t2.blocks.map((b) => b.local), all));
    expect(cache.size).toBe(3);
    await gw.close();
  });

  test("with range reads, profiles.parquet stays in the bucket: answers are the same, a narrow query reads a small part of it", async () => {
    // 300 services: one service's rows are a small slice of the block.
    // Values from a fixed pseudo-random sequence, so the file does not compress to nothing.
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const h = new Head();
    for (let svc = 0; svc < 300; svc++)
      for (let i = 0; i < 30; i++)
        h.append(labels(`svc-${svc}`), cpuProfile({ [`main;serve;s${svc}`]: rnd(), [`main;loop;l${i % 5}`]: rnd(), "main;gc": rnd() }, T0 + i * 60_000));
    // Small row groups stand in for a big block: a query reads only the row groups of its series.
    const t1 = await ship("t1", [h], { rowGroupSize: 2048 });
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30, remoteFiles: new Set([PROFILES_FILE]) });
    const ranges = new RangeCache({ pageBytes: 4096, maxBytes: 1 << 20 });
    const gw = new StoreGateway(bucket, cache, { log, ranges });
    await gw.sync();
    const { meta, local } = t1.blocks[0];
    const parquetBytes = meta.files.find((f) => f.relPath === PROFILES_FILE)!.sizeBytes;

    const one = query(T0, T0 + HOUR, '{service_name="svc-123"}');
    const want = await mergedTree([local], one);
    expect(want.size).toBe(7);
    expect(await mergedTree(gw.readers("t1"), one)).toEqual(want);
    expect(existsSync(join(root, "cache", "tenants", "t1", meta.ulid, PROFILES_FILE))).toBe(false);
    // Footer plus the pages of one series: far less than the file.
    expect(ranges.fetchedBytes).toBeGreaterThan(0);
    expect(ranges.fetchedBytes).toBeLessThan(parquetBytes / 3);

    // The same query again is served from memory.
    const fetched = ranges.fetchedBytes;
    expect(await mergedTree(gw.readers("t1"), one)).toEqual(want);
    expect(ranges.fetchedBytes).toBe(fetched);

    // Every query kind over everything still answers like the local block; the page cache stays bounded.
    const all = query(T0, T0 + HOUR);
    const [remote] = gw.readers("t1");
    expect(await mergedTree([remote], all)).toEqual(await mergedTree([local], all));
    expect(await remote.selectMergeProfile(all)).toEqual(await local.selectMergeProfile(all));
    const sq = { ...all, groupBy: ["service_name"], stepMs: 60_000, aggregation: "sum" as const };
    expect(await remote.selectSeries(sq)).toEqual(await local.selectSeries(sq));
    expect(ranges.bytes).toBeLessThanOrEqual(1 << 20);

    // The bucket failing mid-query fails the query but does not mark the block damaged.
    const failing = new StoreGateway({ ...bucket, list: bucket.list.bind(bucket), get: bucket.get.bind(bucket), size: bucket.size.bind(bucket), getRange: async () => { throw new Error("connection refused"); } } as unknown as Bucket, await BlockCache.open(join(root, "cache2"), { maxBytes: 1 << 30, remoteFiles: new Set([PROFILES_FILE]) }), { log, ranges: new RangeCache() });
    await failing.sync();
    await expect(mergedTree(failing.readers("t1"), one)).rejects.toThrow("connection refused");
    expect(logs.join("\n")).not.toContain("unreadable");
    await failing.close();
    await gw.close();
  });

  test("sync follows the bucket: new blocks appear, deleted ones disappear and leave the cache", async () => {
    const t1 = await ship("t1", [headAt(T0, 1)]);
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30 });
    const gw = new StoreGateway(bucket, cache, { log });
    await gw.sync();
    const all = query(T0, T0 + 3 * HOUR);
    await mergedTree(gw.readers("t1"), all);
    expect(cache.size).toBe(1);

    const more = await ship("t1", [headAt(T0 + HOUR, 2)]);
    expect(gw.has("t1", more.blocks[0].meta.ulid)).toBe(false);
    expect(await gw.sync()).toEqual({ blocks: 2, added: [more.blocks[0].meta.ulid], removed: [] });
    expect(gw.has("t1", more.blocks[0].meta.ulid)).toBe(true);
    const stale = gw.readers("t1");
    await t1.shipper.deleteRemote(t1.blocks[0].meta.ulid);
    expect(await gw.sync()).toEqual({ blocks: 1, added: [], removed: [t1.blocks[0].meta.ulid] });
    expect(cache.has("t1", t1.blocks[0].meta.ulid)).toBe(false);
    // A query holding the list from before the deletion: the deleted block answers empty, not an error.
    expect(await mergedTree(stale, all)).toEqual(await mergedTree([more.blocks[0].local], all));
    expect(await mergedTree(gw.readers("t1"), all)).toEqual(await mergedTree([more.blocks[0].local], all));

    // The tenant's last block goes: so does the tenant.
    await more.shipper.deleteRemote(more.blocks[0].meta.ulid);
    await gw.sync();
    expect(gw.tenants()).toEqual([]);
  });

  test("a compacted block hides the blocks it replaces; exclude leaves out blocks served locally", async () => {
    const heads = [headAt(T0, 1), headAt(T0 + HOUR, 2)];
    const t1 = await ship("t1", heads);
    const sources = t1.blocks.map((b) => b.meta.ulid);
    // The compacted block holds both heads' profiles: one head with all of them.
    const both = new Head();
    for (const h of [headAt(T0, 1), headAt(T0 + HOUR, 2)])
      for (const s of h.series) for (let i = 0; i < s.timeMs.length; i++) both.append(labels(s.labels.find((l) => l.name === "service_name")!.value), cpuProfile(Object.fromEntries(stacksOf(h, s, i)), s.timeMs[i]));
    const compacted = (await ship("t1", [both], { level: 2, sources })).blocks[0];

    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30 });
    const gw = new StoreGateway(bucket, cache, { log });
    expect((await gw.sync()).blocks).toBe(1);
    expect(gw.metas("t1").map((m) => m.ulid)).toEqual([compacted.meta.ulid]);
    expect(gw.has("t1", sources[0])).toBe(false);
    const all = query(T0, T0 + 2 * HOUR);
    expect(await mergedTree(gw.readers("t1"), all)).toEqual(await mergedTree(t1.blocks.map((b) => b.local), all));

    expect(gw.readers("t1", new Set([compacted.meta.ulid]))).toEqual([]);
    // A caller holding the two source blocks itself names them: the compacted one is all theirs.
    expect(gw.readers("t1", new Set(sources))).toEqual([]);
    expect(gw.readers("t1", new Set([sources[0]])).length).toBe(1);
  });

  test("a block damaged in the bucket answers empty, logged once; the others keep serving", async () => {
    const t1 = await ship("t1", [headAt(T0, 1), headAt(T0 + HOUR, 2)]);
    const bad = t1.blocks[0].meta.ulid;
    const parquet = await bucket.get(bucketBlockPrefix("t1", bad) + "profiles.parquet");
    await bucket.put(bucketBlockPrefix("t1", bad) + "profiles.parquet", parquet.subarray(0, 100));
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30 });
    const gw = new StoreGateway(bucket, cache, { log });
    await gw.sync();
    const all = query(T0, T0 + 2 * HOUR);
    for (let i = 0; i < 2; i++) expect(await mergedTree(gw.readers("t1"), all)).toEqual(await mergedTree([t1.blocks[1].local], all));
    expect(logs.filter((l) => l.includes(`${bad} is unreadable`)).length).toBe(1);
    expect(cache.has("t1", bad)).toBe(false);
  });

  test("an unusable meta.json is ignored and reported once; a missing bucket fails the query instead of answering short", async () => {
    const t1 = await ship("t1", [headAt(T0, 1)]);
    await bucket.put("t1/blocks/01KJMZ5K8D0000000000000000/meta.json", new TextEncoder().encode('{"ulid": "someone else"}'));
    await bucket.put("t1/blocks/not-a-ulid/meta.json", new Uint8Array(1));
    await bucket.put("t1/other/thing", new Uint8Array(1));
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 30 });
    let down = false;
    const flaky: Bucket = {
      ...bucket,
      get: (k) => (down ? Promise.reject(new Error("connection refused")) : bucket.get(k)),
      getRange: (k, o, n) => (down ? Promise.reject(new Error("connection refused")) : bucket.getRange(k, o, n)),
      list: (p, o) => bucket.list(p, o),
      size: (k) => bucket.size(k),
      exists: (k) => bucket.exists(k),
      put: (k, d) => bucket.put(k, d),
      delete: (k) => bucket.delete(k),
    };
    const gw = new StoreGateway(flaky, cache, { log });
    await gw.sync();
    await gw.sync();
    expect(gw.metas("t1").map((m) => m.ulid)).toEqual([t1.blocks[0].meta.ulid]);
    expect(logs.filter((l) => l.includes("01KJMZ5K8D0000000000000000")).length).toBe(1);

    const all = query(T0, T0 + HOUR);
    down = true;
    await expect(mergedTree(gw.readers("t1"), all)).rejects.toThrow("connection refused");
    down = false;
    expect(await mergedTree(gw.readers("t1"), all)).toEqual(await mergedTree([t1.blocks[0].local], all));
  });

  test("with a cache smaller than the blocks, queries still answer, fetching again", async () => {
    const t1 = await ship("t1", [headAt(T0, 1), headAt(T0 + HOUR, 2), headAt(T0 + 2 * HOUR, 3)]);
    const one = Math.max(...t1.blocks.map((b) => b.meta.files.reduce((n, f) => n + f.sizeBytes, 0)));
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: one + 2000 });
    const gw = new StoreGateway(bucket, cache, { log });
    await gw.sync();
    for (let round = 0; round < 2; round++)
      for (const b of t1.blocks) {
        const q = query(b.meta.minTime, b.meta.maxTime);
        expect(await mergedTree(gw.readers("t1"), q)).toEqual(await mergedTree([b.local], q));
        expect(cache.size).toBe(1);
        expect(cache.bytes).toBeLessThanOrEqual(one + 2000);
      }
    expect(cache.misses).toBe(6);
    expect(cache.evictions).toBe(5);
  });
});

/** Stack (root first, ';'-joined) → value of row i of a head series. */
function stacksOf(h: Head, s: Head["series"][number], i: number): [string, number][] {
  const out: [string, number][] = [];
  const ids = s.rowStacks(i);
  const vs = s.rowValues(i);
  for (let j = 0; j < ids.length; j++) out.push([h.symbols.stackFrames(ids[j]).join(";"), vs[j]]);
  return out;
}
