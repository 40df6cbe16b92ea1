// The block cache on a memory bucket: downloads whole blocks, evicts the least recently used ones
// past maxBytes but never a pinned one, survives a restart, rejects damaged blocks.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bucket } from "../bucket/bucket.ts";
import { expectSameBytes, pseudoRandom } from "../bucket/bucket-contract.ts";
import { MemoryBucket } from "../bucket/memory-bucket.ts";
import { BlockCache, bucketBlockPrefix } from "./block-cache.ts";
import { BlockCorruptError, newUlid, writeMeta } from "./meta.ts";

const T0 = Date.UTC(2026, 2, 1);
let root: string;
let bucket: MemoryBucket;
let gets: string[];
let seq = 0;

/** Counts reads, so a test can tell a cache hit (no read) from a download. */
function counting(b: Bucket): Bucket {
  return {
    ...b,
    get: (key) => (gets.push(key), b.get(key)),
    getRange: (key, o, n) => (gets.push(key), b.getRange(key, o, n)),
    size: (key) => b.size(key),
    list: (p, o) => b.list(p, o),
    put: (k, d) => b.put(k, d),
    exists: (k) => b.exists(k),
    delete: (k) => b.delete(k),
  };
}

/** Puts a block of random files in the bucket; returns its ULID and total bytes (meta.json included). */
async function remoteBlock(tenant: string, sizes: Record<string, number> = { "profiles.parquet": 4000, "index.sqlite": 800, "symbols.bin": 200 }) {
  const ulid = newUlid(T0 + ++seq);
  const dir = join(root, "src", ulid);
  mkdirSync(dir, { recursive: true });
  const files = Object.entries(sizes).map(([relPath, n]) => {
    writeFileSync(join(dir, relPath), pseudoRandom(n, ++seq));
    return { relPath, sizeBytes: n };
  });
  writeMeta(dir, { ulid, minTime: T0, maxTime: T0 + 1, stats: { numSeries: 1, numProfiles: 1, numSamples: 1 }, compaction: { level: 1, sources: [ulid] }, version: 1, files });
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const data = readFileSync(join(dir, name));
    bytes += data.byteLength;
    await bucket.put(bucketBlockPrefix(tenant, ulid) + name, data);
  }
  return { ulid, bytes, src: dir };
}

async function fetchAndRelease(cache: BlockCache, tenant: string, ulid: string): Promise<void> {
  await cache.get(tenant, ulid, bucket);
  cache.release(tenant, ulid);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "hearth-block-cache-"));
  bucket = new MemoryBucket();
  gets = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("BlockCache", () => {
  test("downloads a block whole into <dir>/tenants/<tenant>/<ULID>; the next get is a hit", async () => {
    const a = await remoteBlock("t1");
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 20, chunkBytes: 1000 });
    const b = counting(bucket);
    const dir = await cache.get("t1", a.ulid, b);
    expect(dir).toBe(join(root, "cache", "tenants", "t1", a.ulid));
    for (const f of readdirSync(a.src)) expectSameBytes(readFileSync(join(dir, f)), readFileSync(join(a.src, f)));
    expect(gets.filter((k) => k.endsWith("profiles.parquet")).length).toBe(4); // 4000 bytes in 1000-byte ranges
    expect(cache.bytes).toBe(a.bytes);
    cache.release("t1", a.ulid);
    gets = [];
    expect(await cache.get("t1", a.ulid, b)).toBe(dir);
    expect(gets).toEqual([]);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    expect(readdirSync(join(root, "cache", "tmp"))).toEqual([]);
  });

  test("evicts the least recently used unpinned blocks past maxBytes", async () => {
    const [a, b, c] = [await remoteBlock("t1"), await remoteBlock("t1"), await remoteBlock("t2")];
    const evicted: string[] = [];
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: a.bytes + b.bytes + 100 });
    cache.onEvict((_t, u) => evicted.push(u));
    const use = (t: string, u: string) => fetchAndRelease(cache, t, u);
    await use("t1", a.ulid);
    await use("t1", b.ulid);
    await use("t1", a.ulid); // a is now more recent than b
    await use("t2", c.ulid);
    expect(evicted).toEqual([b.ulid]);
    expect([cache.has("t1", a.ulid), cache.has("t1", b.ulid), cache.has("t2", c.ulid)]).toEqual([true, false, true]);
    expect(existsSync(join(root, "cache", "tenants", "t1", b.ulid))).toBe(false);
    expect(cache.bytes).toBe(a.bytes + c.bytes);
    expect(cache.bytes).toBeLessThanOrEqual(a.bytes + b.bytes + 100);
    expect(cache.evictions).toBe(1);
  });

  test("never evicts a pinned block: the cache runs over while blocks are in use, and shrinks on release", async () => {
    const [a, b] = [await remoteBlock("t1"), await remoteBlock("t1")];
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: a.bytes });
    const dirA = await cache.get("t1", a.ulid, bucket);
    await cache.get("t1", b.ulid, bucket);
    expect(cache.bytes).toBe(a.bytes + b.bytes);
    expect(existsSync(dirA)).toBe(true);
    cache.release("t1", a.ulid);
    expect(cache.has("t1", a.ulid)).toBe(false); // b is pinned, a goes
    cache.release("t1", b.ulid);
    expect(cache.bytes).toBe(b.bytes);
    expect(() => cache.release("t1", b.ulid)).toThrow("not pinned");
  });

  test("concurrent gets of one block share one download, each holding a pin", async () => {
    const a = await remoteBlock("t1");
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 0 });
    const b = counting(bucket);
    const dirs = await Promise.all([cache.get("t1", a.ulid, b), cache.get("t1", a.ulid, b), cache.get("t1", a.ulid, b)]);
    expect(new Set(dirs).size).toBe(1);
    expect(gets.filter((k) => k.endsWith("meta.json")).length).toBe(1);
    cache.release("t1", a.ulid);
    cache.release("t1", a.ulid);
    expect(cache.has("t1", a.ulid)).toBe(true); // maxBytes 0, yet one pin is left
    cache.release("t1", a.ulid);
    expect(cache.has("t1", a.ulid)).toBe(false);
  });

  test("a restart keeps complete blocks, removes damaged ones and unfinished downloads, and applies a smaller maxBytes", async () => {
    const [a, b, c] = [await remoteBlock("t1"), await remoteBlock("t1"), await remoteBlock("t2")];
    const dir = join(root, "cache");
    let cache = await BlockCache.open(dir, { maxBytes: 1 << 20 });
    for (const [t, x] of [["t1", a], ["t1", b], ["t2", c]] as const) await fetchAndRelease(cache, t, x.ulid);
    truncateSync(join(dir, "tenants", "t1", b.ulid, "symbols.bin"), 10);
    mkdirSync(join(dir, "tmp", "half-done"));
    mkdirSync(join(dir, "tenants", "t1", "not-a-block"));
    const logs: string[] = [];
    cache = await BlockCache.open(dir, { maxBytes: 1 << 20, log: (m) => logs.push(m) });
    expect([cache.has("t1", a.ulid), cache.has("t1", b.ulid), cache.has("t2", c.ulid)]).toEqual([true, false, true]);
    expect(cache.bytes).toBe(a.bytes + c.bytes);
    expect(readdirSync(join(dir, "tmp"))).toEqual([]);
    expect(readdirSync(join(dir, "tenants", "t1"))).toEqual([a.ulid]);
    expect(logs.length).toBe(2);
    // Served without a download.
    const counted = counting(bucket);
    await cache.get("t2", c.ulid, counted);
    expect(gets).toEqual([]);
    cache.release("t2", c.ulid);

    cache = await BlockCache.open(dir, { maxBytes: c.bytes });
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBeLessThanOrEqual(c.bytes);
  });

  test("a block damaged in the bucket is refused and leaves nothing behind", async () => {
    const a = await remoteBlock("t1");
    const b = await remoteBlock("t1");
    const c = await remoteBlock("t1");
    await bucket.put(bucketBlockPrefix("t1", a.ulid) + "index.sqlite", new Uint8Array(10)); // shorter than meta.json says
    await bucket.delete(bucketBlockPrefix("t1", b.ulid) + "symbols.bin");
    await bucket.put(bucketBlockPrefix("t1", c.ulid) + "meta.json", new TextEncoder().encode("{ torn"));
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 20 });
    for (const x of [a, b, c]) {
      const err = await cache.get("t1", x.ulid, bucket).catch((e) => e);
      expect(err).toBeInstanceOf(BlockCorruptError);
    }
    expect(cache.size).toBe(0);
    expect(readdirSync(join(root, "cache", "tmp"))).toEqual([]);
  });

  test("remove() drops a block now, after its last release, or when its download lands", async () => {
    const [a, b, c] = [await remoteBlock("t1"), await remoteBlock("t1"), await remoteBlock("t1")];
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 20 });
    await fetchAndRelease(cache, "t1", a.ulid);
    expect(cache.remove("t1", a.ulid)).toBe(false);
    expect(cache.has("t1", a.ulid)).toBe(false);

    await cache.get("t1", b.ulid, bucket);
    expect(cache.remove("t1", b.ulid)).toBe(true);
    expect(cache.has("t1", b.ulid)).toBe(true);
    cache.release("t1", b.ulid);
    expect(cache.has("t1", b.ulid)).toBe(false);

    const pending = cache.get("t1", c.ulid, bucket);
    expect(cache.remove("t1", c.ulid)).toBe(true);
    await pending;
    cache.release("t1", c.ulid);
    expect(cache.has("t1", c.ulid)).toBe(false);
    expect(cache.bytes).toBe(0);
    expect(cache.remove("t1", newUlid())).toBe(false);
  });

  test("downloads run a few at a time", async () => {
    const blocks = await Promise.all(Array.from({ length: 6 }, () => remoteBlock("t1")));
    let running = 0;
    let most = 0;
    const slow: Bucket = {
      ...counting(bucket),
      get: async (key) => {
        running++;
        most = Math.max(most, running);
        await Bun.sleep(5);
        running--;
        return bucket.get(key);
      },
    };
    const cache = await BlockCache.open(join(root, "cache"), { maxBytes: 1 << 20, downloadConcurrency: 2 });
    await Promise.all(blocks.map((x) => cache.get("t1", x.ulid, slow)));
    expect(most).toBe(2);
    expect(cache.size).toBe(6);
  });
});
