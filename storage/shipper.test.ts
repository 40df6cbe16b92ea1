// The shipper on a memory bucket that records and fails on cue: meta.json last, nothing marked
// uploaded unless whole, shipper.json across restarts, retries, deleteRemote's order, the sweep.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newUlid, ulidTime, writeMeta } from "./block/meta.ts";
import { type Bucket, type BucketData, type ListOptions } from "./bucket/bucket.ts";
import { expectSameBytes, pseudoRandom } from "./bucket/bucket-contract.ts";
import { MemoryBucket } from "./bucket/memory-bucket.ts";
import { SHIPPER_FILE, Shipper, type ShipperOptions } from "./shipper.ts";

/** A memory bucket that logs every write and fails the ones a test picks. */
class ScriptedBucket implements Bucket {
  readonly inner = new MemoryBucket();
  ops: string[] = [];
  /** Throws a transient-looking error for matching operations ("put k", "get k", "list p", …). */
  fail: (op: string) => boolean = () => false;
  /** Stores only the first half of matching keys' objects. */
  truncate: (key: string) => boolean = () => false;

  private check(op: string) {
    if (this.fail(op)) throw Object.assign(new Error(`scripted failure: ${op}`), { code: "ConnectionRefused" });
  }
  async get(key: string) {
    this.check(`get ${key}`);
    return this.inner.get(key);
  }
  async getRange(key: string, offset: number, length: number) {
    this.check(`getRange ${key}`);
    return this.inner.getRange(key, offset, length);
  }
  async put(key: string, data: BucketData) {
    this.check(`put ${key}`);
    this.ops.push(`put ${key}`);
    let bytes = data instanceof Uint8Array ? data : await new Response(data).bytes();
    if (this.truncate(key)) bytes = bytes.subarray(0, bytes.byteLength >> 1);
    await this.inner.put(key, bytes);
  }
  async exists(key: string) {
    this.check(`exists ${key}`);
    return this.inner.exists(key);
  }
  async size(key: string) {
    this.check(`size ${key}`);
    return this.inner.size(key);
  }
  async delete(key: string) {
    this.check(`delete ${key}`);
    this.ops.push(`delete ${key}`);
    await this.inner.delete(key);
  }
  async *list(prefix: string, opts?: ListOptions) {
    this.check(`list ${prefix}`);
    yield* this.inner.list(prefix, opts);
  }
  keys() {
    return Array.fromAsync(this.inner.list("", { recursive: true })).then((k) => k.sort());
  }
}

const FILES = { "profiles.parquet": 3000, "index.sqlite": 700, "symbols.bin": 150 };

/** A block directory with meta.json and files of random bytes: all the shipper looks at. */
function fakeBlock(blocksDir: string, timeMs: number, seed: number): string {
  const ulid = newUlid(timeMs);
  const dir = join(blocksDir, ulid);
  mkdirSync(dir, { recursive: true });
  const files = Object.entries(FILES).map(([relPath, n]) => {
    writeFileSync(join(dir, relPath), pseudoRandom(n, seed++));
    return { relPath, sizeBytes: n };
  });
  writeMeta(dir, {
    ulid,
    minTime: timeMs - 60_000,
    maxTime: timeMs,
    stats: { numSeries: 1, numProfiles: 1, numSamples: 1 },
    compaction: { level: 1, sources: [ulid] },
    version: 1,
    files,
  });
  return ulid;
}

const T0 = Date.UTC(2026, 2, 1);
let root: string;
let blocksDir: string;
let logs: string[];
const opts = (extra: Partial<ShipperOptions> = {}): ShipperOptions => ({ log: (m) => logs.push(m), retry: { attempts: 2, baseMs: 1, maxMs: 2 }, ...extra });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "hearth-shipper-"));
  blocksDir = join(root, "tenant-a", "blocks");
  mkdirSync(blocksDir, { recursive: true });
  logs = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const blockKeys = (ulid: string) => [...Object.keys(FILES), "meta.json"].map((f) => `tenant-a/blocks/${ulid}/${f}`).sort();

describe("Shipper", () => {
  test("uploads every block, meta.json last, byte for byte, and records it in shipper.json", async () => {
    const ulids = [fakeBlock(blocksDir, T0, 1), fakeBlock(blocksDir, T0 + 1000, 10)];
    // Not blocks: an unfinished write and a quarantined block.
    mkdirSync(join(blocksDir, ulids[0].replace(/.$/, "0") + ".tmp"));
    mkdirSync(join(blocksDir, newUlid(T0) + ".corrupt"));
    const b = new ScriptedBucket();
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    expect(s.pending()).toEqual(ulids);

    expect(await s.sync()).toEqual({ uploaded: ulids, failed: [] });
    expect(await b.keys()).toEqual(ulids.flatMap(blockKeys).sort());
    for (const ulid of ulids) {
      const puts = b.ops.filter((op) => op.includes(ulid));
      expect(puts.length).toBe(4);
      expect(puts[3]).toBe(`put tenant-a/blocks/${ulid}/meta.json`);
      for (const f of [...Object.keys(FILES), "meta.json"])
        expectSameBytes(await b.inner.get(`tenant-a/blocks/${ulid}/${f}`), readFileSync(join(blocksDir, ulid, f)));
      expect(s.isUploaded(ulid)).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(root, "tenant-a", SHIPPER_FILE), "utf8")).uploaded).toEqual(ulids);
    expect(s.lag()).toBe(0);
    expect(s.uploadedBlocks).toBe(2);
    expect(s.uploadedBytes).toBe(ulids.length * (3850 + readFileSync(join(blocksDir, ulids[0], "meta.json")).byteLength));

    // Nothing new: no request that writes.
    b.ops = [];
    expect(await s.sync()).toEqual({ uploaded: [], failed: [] });
    expect(b.ops).toEqual([]);
  });

  test("shipper.json survives a restart: a new shipper uploads only the new block", async () => {
    const first = fakeBlock(blocksDir, T0, 1);
    const b = new ScriptedBucket();
    await new Shipper(b, "tenant-a", blocksDir, opts()).sync();
    const second = fakeBlock(blocksDir, T0 + 5000, 20);
    b.ops = [];
    const again = new Shipper(b, "tenant-a", blocksDir, opts());
    expect(again.isUploaded(first)).toBe(true);
    expect(again.pending()).toEqual([second]);
    expect(await again.sync()).toEqual({ uploaded: [second], failed: [] });
    expect(b.ops.every((op) => op.includes(second))).toBe(true);
  });

  test("a lost shipper.json costs one meta.json read per block, not a second upload", async () => {
    const ulid = fakeBlock(blocksDir, T0, 1);
    const b = new ScriptedBucket();
    await new Shipper(b, "tenant-a", blocksDir, opts()).sync();
    writeFileSync(join(root, "tenant-a", SHIPPER_FILE), "{ torn");
    b.ops = [];
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    expect(logs.some((l) => l.includes("unreadable"))).toBe(true);
    expect(await s.sync()).toEqual({ uploaded: [ulid], failed: [] });
    expect(b.ops).toEqual([]);
    expect(s.isUploaded(ulid)).toBe(true);
  });

  test("a block whose upload fails is not marked, has no meta.json in the bucket, and goes up on the next sync", async () => {
    const ulids = [0, 1, 2].map((i) => fakeBlock(blocksDir, T0 + i * 1000, i * 10));
    const b = new ScriptedBucket();
    let attempts = 0;
    b.fail = (op) => op === `put tenant-a/blocks/${ulids[1]}/symbols.bin` && ++attempts > 0;
    const errors: string[] = [];
    const s = new Shipper(b, "tenant-a", blocksDir, opts({ now: () => T0 + 60_000, onError: (_e, u) => errors.push(u) }));

    expect(await s.sync()).toEqual({ uploaded: [ulids[0], ulids[2]], failed: [ulids[1]] });
    expect(attempts).toBe(2); // the retry budget of this test
    expect(errors).toEqual([ulids[1]]);
    expect(s.uploadErrors).toBe(1);
    expect(s.isUploaded(ulids[1])).toBe(false);
    expect(await b.inner.exists(`tenant-a/blocks/${ulids[1]}/meta.json`)).toBe(false);
    expect(s.lag()).toBe(60_000 - 1000);
    expect(JSON.parse(readFileSync(join(root, "tenant-a", SHIPPER_FILE), "utf8")).uploaded).toEqual([ulids[0], ulids[2]]);

    b.fail = () => false;
    expect(await s.sync()).toEqual({ uploaded: [ulids[1]], failed: [] });
    expect(await b.keys()).toEqual(ulids.flatMap(blockKeys).sort());
    expect(s.lag()).toBe(0);
  });

  test("an object short in the bucket fails its block's upload", async () => {
    const ulid = fakeBlock(blocksDir, T0, 1);
    const b = new ScriptedBucket();
    b.truncate = (key) => key.endsWith("profiles.parquet");
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    const r = await s.sync();
    expect(r).toEqual({ uploaded: [], failed: [ulid] });
    expect(logs.some((l) => l.includes("after upload, want 3000"))).toBe(true);
    expect(await b.inner.exists(`tenant-a/blocks/${ulid}/meta.json`)).toBe(false);
  });

  test("with the bucket down, a sync gives up after a few blocks and the rest wait", async () => {
    const ulids = [0, 1, 2, 3, 4].map((i) => fakeBlock(blocksDir, T0 + i * 1000, i * 10));
    const b = new ScriptedBucket();
    b.fail = () => true;
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    const r = await s.sync();
    expect(r).toEqual({ uploaded: [], failed: ulids.slice(0, 3) });
    expect(s.pending()).toEqual(ulids);
    b.fail = () => false;
    expect((await s.sync()).uploaded).toEqual(ulids);
  });

  test("a damaged local block fails alone; the blocks after it still go up", async () => {
    const ulids = [0, 1, 2, 3].map((i) => fakeBlock(blocksDir, T0 + i * 1000, i * 10));
    truncateSync(join(blocksDir, ulids[0], "index.sqlite"), 10);
    writeFileSync(join(blocksDir, ulids[1], "meta.json"), "not json");
    rmSync(join(blocksDir, ulids[2], "symbols.bin"));
    const b = new ScriptedBucket();
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    expect(await s.sync()).toEqual({ uploaded: [ulids[3]], failed: ulids.slice(0, 3) });
    expect(b.ops.every((op) => op.includes(ulids[3]))).toBe(true);
  });

  test("deleteRemote removes meta.json first, then the rest, and the block is not uploaded again", async () => {
    const ulids = [fakeBlock(blocksDir, T0, 1), fakeBlock(blocksDir, T0 + 1000, 10)];
    const b = new ScriptedBucket();
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    await s.sync();
    b.ops = [];
    await s.deleteRemote(ulids[0]);
    expect(b.ops[0]).toBe(`delete tenant-a/blocks/${ulids[0]}/meta.json`);
    expect(b.ops.slice(1).sort()).toEqual(blockKeys(ulids[0]).filter((k) => !k.endsWith("meta.json")).map((k) => `delete ${k}`));
    expect(await b.keys()).toEqual(blockKeys(ulids[1]));
    // Its local copy is still there (retention deletes it next): neither this shipper nor a restarted one re-uploads it.
    expect((await s.sync()).uploaded).toEqual([]);
    expect((await new Shipper(b, "tenant-a", blocksDir, opts()).sync()).uploaded).toEqual([]);
    expect(s.isUploaded(ulids[0])).toBe(false);
    expect(s.pending()).toEqual([]);
  });

  test("what an interrupted upload left behind is swept once its local block is gone; a local one is finished", async () => {
    const gone = fakeBlock(blocksDir, T0, 1);
    const stays = fakeBlock(blocksDir, T0 + 1000, 10);
    const b = new ScriptedBucket();
    b.fail = (op) => op.startsWith("put") && op.endsWith("meta.json");
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    expect((await s.sync()).failed).toEqual([gone, stays]);
    expect((await b.keys()).length).toBe(6); // data files without meta.json
    rmSync(join(blocksDir, gone), { recursive: true }); // compacted away before it was uploaded
    b.fail = () => false;
    expect(await s.sync()).toEqual({ uploaded: [stays], failed: [] });
    expect(await b.keys()).toEqual(blockKeys(stays));
    expect(logs.some((l) => l.includes(`unfinished upload of block ${gone}`))).toBe(true);
  });

  test("a block deleted locally during its upload is not a failure", async () => {
    const ulid = fakeBlock(blocksDir, T0, 1);
    const b = new ScriptedBucket();
    b.fail = (op) => {
      if (op === `put tenant-a/blocks/${ulid}/meta.json`) {
        rmSync(join(blocksDir, ulid), { recursive: true, force: true });
        return true;
      }
      return false;
    };
    const s = new Shipper(b, "tenant-a", blocksDir, opts());
    expect(await s.sync()).toEqual({ uploaded: [], failed: [] });
    expect(s.uploadErrors).toBe(0);
    b.fail = () => false;
    await s.sync();
    expect(await b.keys()).toEqual([]);
  });

  test("syncs run one at a time; lag is the age of the oldest block waiting", async () => {
    const ulid = fakeBlock(blocksDir, T0, 1);
    const b = new ScriptedBucket();
    const s = new Shipper(b, "tenant-a", blocksDir, opts({ now: () => T0 + 90_000 }));
    expect(s.lag()).toBe(90_000);
    expect(ulidTime(ulid)).toBe(T0);
    const [x, y] = await Promise.all([s.sync(), s.sync()]);
    expect(x.uploaded).toEqual([ulid]);
    expect(y.uploaded).toEqual([]);
    expect(b.ops.filter((op) => op.endsWith("meta.json")).length).toBe(1);
    await s.close();
    await expect(s.sync()).rejects.toThrow("closed");
  });
});
