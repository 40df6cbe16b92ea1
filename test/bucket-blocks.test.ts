// Blocks through a bucket, on a real s3rver and on the fs bucket: blocks written from real
// fixtures are shipped, then a store-gateway on an empty cache answers exactly like the local
// blocks; s3rver killed mid-sync loses nothing and marks nothing half-done; a small cache evicts
// and still answers; shipper.json spares a restart any re-upload.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { BlockCache } from "../storage/block/block-cache.ts";
import type { BlockMeta } from "../storage/block/meta.ts";
import { BlockReader } from "../storage/block/reader.ts";
import { writeBlock } from "../storage/block/writer.ts";
import { type Bucket, type BucketData, prefixed } from "../storage/bucket/bucket.ts";
import { FsBucket } from "../storage/bucket/fs-bucket.ts";
import { S3Bucket } from "../storage/bucket/s3-bucket.ts";
import { Head } from "../storage/head/head.ts";
import type { ProfileReader, TimeRange } from "../storage/head/read.ts";
import { labelsKey, sortLabels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";
import { parseSelector } from "../storage/model/selector.ts";
import { collapsed, Tree } from "../storage/model/tree.ts";
import { Shipper, type SyncResult } from "../storage/shipper.ts";
import { StoreGateway } from "../storage/store-gateway.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";
import { S3rver } from "./helpers/s3rver.ts";

const T0 = Date.UTC(2026, 2, 1, 12);
const STEP = 10_000;
const HOUR = 3600_000;

function fixture(name: string): Profile {
  let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", name));
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return decodePprof(b);
}

const SOURCES: { file: string; name: string; services: [string, string][] }[] = [
  { file: "cpu.pb.gz", name: "process_cpu", services: [["go-api", "prod"], ["go-api", "dev"]] },
  { file: "go.cpu.labels.pprof", name: "process_cpu", services: [["go-worker", "prod"]] },
  { file: "profile_java", name: "process_cpu", services: [["java-shop", "prod"]] },
  { file: "heap", name: "memory", services: [["go-api", "prod"]] },
  { file: "nodejs-wall.pb.gz", name: "wall", services: [["node-web", "staging"]] },
];
const decoded = new Map<string, Profile>();

/** One block's worth of profiles: every source, every 10 s for a minute from `start`, values varied by `seed`. */
function headAt(start: number, seed: number): Head {
  const head = new Head();
  for (const src of SOURCES) {
    let base = decoded.get(src.file);
    if (!base) decoded.set(src.file, (base = fixture(src.file)));
    for (const [svc, env] of src.services)
      for (let i = 0; i < 6; i++) {
        const labels = sortLabels([
          { name: "__name__", value: src.name },
          { name: "service_name", value: svc },
          { name: "env", value: env },
        ]);
        const values = base.samples.values.map((v, j) => v * (1 + ((i + j + seed) % 5)));
        head.append(labels, { ...base, timeNanos: BigInt(start + i * STEP) * 1000000n, samples: { ...base.samples, values } });
      }
  }
  return head;
}

interface LocalTenant {
  tenant: string;
  blocksDir: string;
  metas: BlockMeta[];
  readers: BlockReader[];
}

/** Writes one block per start time under `<dataDir>/<tenant>/blocks`, as the ingester does. */
async function writeTenant(dataDir: string, tenant: string, starts: number[], seed: number): Promise<LocalTenant> {
  const blocksDir = join(dataDir, tenant, "blocks");
  mkdirSync(blocksDir, { recursive: true });
  const metas: BlockMeta[] = [];
  for (const [i, start] of starts.entries()) metas.push(await writeBlock(headAt(start, seed + i), blocksDir));
  const readers = await Promise.all(metas.map((m) => BlockReader.open(join(blocksDir, m.ulid))));
  return { tenant, blocksDir, metas, readers };
}

const RANGES: [string, TimeRange][] = [
  ["a whole day", { start: T0 - HOUR, end: T0 + 23 * HOUR }],
  ["the first block", { start: T0, end: T0 + 5 * STEP }],
  ["a cut through the second block", { start: T0 + 2 * HOUR + STEP + 1, end: T0 + 2 * HOUR + 3 * STEP }],
  ["before everything", { start: T0 - 2 * HOUR, end: T0 - 1 }],
];
const SELECTORS = ["{}", '{service_name="go-api"}', '{env!="prod"}'];

/** Every query kind over a set of readers, merged as the querier merges them. */
async function answers(readers: ProfileReader[], r: TimeRange, sel: string, types: string[]) {
  const m = parseSelector(sel);
  const union = async (f: (x: ProfileReader) => Promise<string[]>) => [...new Set((await Promise.all(readers.map(f))).flat())].sort();
  const out: Record<string, unknown> = {
    profileTypes: await union((x) => x.profileTypes(r)),
    labelNames: await union((x) => x.labelNames(m, r)),
    serviceNames: await union((x) => x.labelValues("service_name", m, r)),
    series: await union(async (x) => (await x.series(m, r)).map(labelsKey)),
  };
  for (const profileTypeId of types) {
    const q = { profileTypeId, matchers: m, ...r };
    const tree = new Tree();
    for (const t of await Promise.all(readers.map((x) => x.selectMergeTree(q)))) tree.merge(t);
    out[`tree ${profileTypeId}`] = { total: tree.total(), stacks: [...collapsed(tree)].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
    const points = new Map<string, number>();
    for (const part of await Promise.all(readers.map((x) => x.selectSeries({ ...q, groupBy: ["service_name"], stepMs: 30_000, aggregation: "sum" }))))
      for (const s of part) for (const p of s.points) points.set(`${labelsKey(s.labels)} @${p.timestamp}`, (points.get(`${labelsKey(s.labels)} @${p.timestamp}`) ?? 0) + p.value);
    out[`series ${profileTypeId}`] = [...points].sort();
  }
  return out;
}

/** Asserts the gateway's readers answer like the local blocks over every range and selector; returns how many answers had data. */
async function expectSameAnswers(remote: () => ProfileReader[], local: ProfileReader[], ranges = RANGES, selectors = SELECTORS): Promise<number> {
  const types = (await Promise.all(local.map((x) => x.profileTypes({ start: 0, end: 0 })))).flat();
  const allTypes = [...new Set(types)].sort();
  let nonEmpty = 0;
  for (const [rname, r] of ranges)
    for (const sel of selectors) {
      const want = await answers(local, r, sel, allTypes);
      expect(await answers(remote(), r, sel, allTypes), `${rname} ${sel}`).toEqual(want);
      if ((want.series as string[]).length > 0) nonEmpty++;
    }
  return nonEmpty;
}

/** A bucket that runs `before` ahead of the first put whose key matches, e.g. to kill the server there. */
function withHook(b: Bucket, match: (key: string) => boolean, before: () => Promise<void>): Bucket {
  let fired = false;
  return {
    get: (k) => b.get(k),
    getRange: (k, o, n) => b.getRange(k, o, n),
    exists: (k) => b.exists(k),
    size: (k) => b.size(k),
    delete: (k) => b.delete(k),
    list: (p, o) => b.list(p, o),
    put: async (k: string, d: BucketData) => {
      if (!fired && match(k)) {
        fired = true;
        await before();
      }
      return b.put(k, d);
    },
  };
}

let root: string;
let s3rver: S3rver;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "hearth-bucket-blocks-"));
  s3rver = await S3rver.start(join(root, "s3rver"));
  await s3rver.createBucket("hearth");
});
afterAll(async () => {
  await s3rver?.kill();
  rmSync(root, { recursive: true, force: true });
});

function s3(): Bucket {
  const b = new S3Bucket({
    endpoint: s3rver.endpoint,
    bucket: "hearth",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    env: {},
    timeoutMs: 10_000,
    // Fail fast while s3rver is down: the shipper's own retries and the next sync take over.
    retry: { attempts: 3, baseMs: 20, maxMs: 100 },
  });
  // Under a prefix, as configured deployments are.
  return prefixed(b, "cluster-1");
}

const KINDS: [string, () => Promise<Bucket>][] = [
  ["s3rver", async () => s3()],
  ["fs bucket", async () => prefixed(await FsBucket.open(join(root, "fs-bucket")), "cluster-1")],
];

for (const [kind, makeBucket] of KINDS) {
  describe(`blocks in a bucket (${kind})`, () => {
    let bucket: Bucket;
    let dataDir: string;
    let tenants: LocalTenant[];
    const logs: string[] = [];
    const log = (m: string) => logs.push(m);
    const slug = kind.replace(/\W/g, "");

    beforeAll(async () => {
      bucket = await makeBucket();
      dataDir = join(root, `data-${slug}`);
      tenants = [await writeTenant(dataDir, `acme-${slug}`, [T0, T0 + 2 * HOUR, T0 + 5 * HOUR], 0), await writeTenant(dataDir, `globex-${slug}`, [T0 + HOUR], 7)];
    });

    test("shipped blocks: a store-gateway on an empty cache answers exactly like the local blocks", async () => {
      for (const t of tenants) {
        const shipper = new Shipper(bucket, t.tenant, t.blocksDir, { log });
        const r = await shipper.sync();
        expect(r).toEqual({ uploaded: t.metas.map((m) => m.ulid).sort(), failed: [] });
        expect(shipper.lag()).toBe(0);
      }
      const cache = await BlockCache.open(join(root, `cache-${slug}-empty`), { maxBytes: 1 << 30 });
      const gw = new StoreGateway(bucket, cache, { log });
      expect((await gw.sync()).blocks).toBe(4);
      expect(gw.tenants()).toEqual(tenants.map((t) => t.tenant).sort());
      expect(cache.size).toBe(0);
      for (const t of tenants) {
        expect(gw.metas(t.tenant)).toEqual([...t.metas].sort((a, b) => a.minTime - b.minTime));
        expect(await expectSameAnswers(() => gw.readers(t.tenant), t.readers)).toBeGreaterThan(0);
      }
      expect(cache.size).toBe(4);
      // Blocks the caller has locally are left out, so nothing is counted twice.
      expect(gw.readers(tenants[0].tenant, new Set(tenants[0].metas.map((m) => m.ulid)))).toEqual([]);
      await gw.close();
      expect(logs.filter((l) => l.includes("unreadable") || l.includes("failed"))).toEqual([]);
    }, 60_000);

    test("a cache smaller than the blocks stays under maxBytes and still answers, fetching again", async () => {
      const t = tenants[0];
      const sizes = t.metas.map((m) => m.files.reduce((n, f) => n + f.sizeBytes, 0) + 1000);
      const maxBytes = Math.max(...sizes) + 1000;
      expect(maxBytes).toBeLessThan(sizes.reduce((a, b) => a + b, 0));
      const cache = await BlockCache.open(join(root, `cache-${slug}-small`), { maxBytes });
      const gw = new StoreGateway(bucket, cache, { log });
      await gw.sync();
      // Block by block, twice round: each query evicts the block before.
      for (let round = 0; round < 2; round++)
        for (const [i, m] of t.metas.entries()) {
          const r = { start: m.minTime, end: m.maxTime };
          const q = { profileTypeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", matchers: [], ...r };
          const want = collapsed(await t.readers[i].selectMergeTree(q));
          const tree = new Tree();
          for (const part of await Promise.all(gw.readers(t.tenant).map((x) => x.selectMergeTree(q)))) tree.merge(part);
          expect(collapsed(tree)).toEqual(want);
          expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
        }
      expect(cache.misses).toBe(6);
      expect(cache.evictions).toBeGreaterThanOrEqual(5);
      // A query over all of them pins every block at once (past maxBytes), then shrinks back.
      expect(await expectSameAnswers(() => gw.readers(t.tenant), t.readers, RANGES.slice(0, 1), ["{}"])).toBe(1);
      expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
      await gw.close();
    }, 60_000);

    test("shipper.json survives a restart: a new shipper uploads nothing again", async () => {
      for (const t of tenants) {
        const puts: string[] = [];
        const counting = withHook(bucket, (k) => (puts.push(k), false), async () => {});
        const shipper = new Shipper(counting, t.tenant, t.blocksDir, { log });
        expect(t.metas.every((m) => shipper.isUploaded(m.ulid))).toBe(true);
        expect(await shipper.sync()).toEqual({ uploaded: [], failed: [] });
        expect(puts).toEqual([]);
      }
    });
  });
}

describe("s3rver vanishing mid-sync", () => {
  test("the sync reports the failure and marks nothing half-uploaded; after a restart the next sync uploads the rest", async () => {
    const logs: string[] = [];
    const log = (m: string) => logs.push(m);
    const t = await writeTenant(join(root, "data-outage"), "initech", [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR], 3);
    const ulids = t.metas.map((m) => m.ulid).sort();
    const bucket = s3();
    // s3rver dies as the second block's data files start to go up: its other files may or may not have landed.
    const killing = withHook(bucket, (k) => k.startsWith(`initech/blocks/${ulids[1]}/`), () => s3rver.kill());
    const errors: string[] = [];
    const shipper = new Shipper(killing, "initech", t.blocksDir, { log, onError: (_e, u) => errors.push(u), retry: { attempts: 2, baseMs: 10, maxMs: 20 } });

    let r: SyncResult;
    try {
      r = await shipper.sync();
    } finally {
      await s3rver.restart();
    }
    expect(r.uploaded).toEqual([ulids[0]]);
    expect(r.failed.length).toBeGreaterThan(0);
    expect(r.failed[0]).toBe(ulids[1]);
    expect(errors).toEqual(r.failed);
    expect(shipper.uploadErrors).toBe(r.failed.length);
    expect(ulids.filter((u) => shipper.isUploaded(u))).toEqual([ulids[0]]);
    expect(JSON.parse(readFileSync(join(root, "data-outage", "initech", "shipper.json"), "utf8")).uploaded).toEqual([ulids[0]]);
    expect(shipper.lag()).toBeGreaterThan(0);

    // The bucket holds the first block whole and, of the rest, no meta.json: no block is visible half-done.
    const keys = await Array.fromAsync(bucket.list("initech/", { recursive: true }));
    const metas = keys.filter((k) => k.endsWith("/meta.json"));
    expect(metas).toEqual([`initech/blocks/${ulids[0]}/meta.json`]);

    // A second process on the same bucket (read-only, its own empty cache) sees the complete block only.
    const cache = await BlockCache.open(join(root, "cache-outage"), { maxBytes: 1 << 30 });
    const gw = new StoreGateway(bucket, cache, { log });
    await gw.sync();
    expect(gw.metas("initech").map((m) => m.ulid)).toEqual([ulids[0]]);
    expect(await expectSameAnswers(() => gw.readers("initech"), [t.readers[0]], RANGES, ["{}"])).toBeGreaterThan(0);

    // The next sync uploads everything still missing, and the gateway then answers for all of it.
    expect(await shipper.sync()).toEqual({ uploaded: ulids.slice(1), failed: [] });
    expect(shipper.lag()).toBe(0);
    const all = await Array.fromAsync(bucket.list("initech/", { recursive: true }));
    expect(all.length).toBe(ulids.length * 4);
    expect((await gw.sync()).added).toEqual(ulids.slice(1));
    expect(await expectSameAnswers(() => gw.readers("initech"), t.readers, RANGES, ["{}"])).toBeGreaterThan(0);
    expect(logs.filter((l) => l.includes("unreadable"))).toEqual([]);
    await gw.close();
  }, 60_000);
});
