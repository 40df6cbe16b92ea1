// The one test suite every Bucket implementation must pass (memory, fs, S3), so code written
// against one behaves the same on the others.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type Bucket, NotFoundError } from "./bucket.ts";

export interface BucketUnderTest {
  bucket: Bucket;
  cleanup: () => Promise<void>;
  /**
   * The store behind the bucket makes concurrent puts to one key atomic (S3 does; s3rver, a test
   * double that writes files in place, does not). Default true.
   */
  atomicPuts?: boolean;
}

/** Defines `describe(name)` with the contract's tests; `make` gives each test a fresh, empty bucket. */
export function bucketContract(name: string, make: () => Promise<BucketUnderTest>): void {
  describe(name, () => {
    let b: Bucket;
    let cleanup: () => Promise<void>;
    let atomicPuts: boolean | undefined;
    beforeEach(async () => {
      ({ bucket: b, cleanup, atomicPuts } = await make());
    });
    afterEach(async () => {
      await b.close?.();
      await cleanup();
    });

    const list = async (prefix: string, recursive = false) => (await Array.fromAsync(b.list(prefix, { recursive }))).sort();

    test("round-trips a small object, with size and exists", async () => {
      const data = new TextEncoder().encode("hello, bucket");
      await b.put("a/b/hello.txt", data);
      expect(await b.get("a/b/hello.txt")).toEqual(data);
      expect(await b.size("a/b/hello.txt")).toBe(data.byteLength);
      expect(await b.exists("a/b/hello.txt")).toBe(true);
      expect(await b.exists("a/b/other.txt")).toBe(false);
    });

    test("round-trips an empty object", async () => {
      await b.put("empty", new Uint8Array(0));
      expect(await b.get("empty")).toEqual(new Uint8Array(0));
      expect(await b.size("empty")).toBe(0);
      expect(await b.exists("empty")).toBe(true);
      // No ranged read of it here: s3rver answers one with Content-Length 1 and no body, and the client hangs.
      expect(await list("", true)).toEqual(["empty"]);
    });

    test("round-trips 5 MB and 12 MB objects (12 MB goes up in parts on S3)", async () => {
      const five = pseudoRandom(5_000_000, 1);
      const twelve = pseudoRandom(12 << 20, 2);
      await Promise.all([b.put("big/five", five), b.put("big/twelve", twelve)]);
      expect(await b.size("big/five")).toBe(five.byteLength);
      expect(await b.size("big/twelve")).toBe(twelve.byteLength);
      expectSameBytes(await b.get("big/five"), five);
      expectSameBytes(await b.get("big/twelve"), twelve);
      // Across the 5 MiB part boundary of the multipart upload.
      const at = (5 << 20) - 10;
      expectSameBytes(await b.getRange("big/twelve", at, 20), twelve.subarray(at, at + 20));
    }, 15_000);

    test("puts from a Blob and from a stream", async () => {
      const data = pseudoRandom(6 << 20, 3);
      await b.put("from/blob", new Blob([data as Uint8Array<ArrayBuffer>]));
      await b.put("from/stream", chunkedStream(data, 64 << 10));
      await b.put("from/empty-stream", chunkedStream(new Uint8Array(0), 1));
      expectSameBytes(await b.get("from/blob"), data);
      expectSameBytes(await b.get("from/stream"), data);
      expect(await b.size("from/empty-stream")).toBe(0);
    });

    test("keeps what was put even if the caller reuses its buffer", async () => {
      const data = new Uint8Array([1, 2, 3]);
      await b.put("k", data);
      data[0] = 9;
      expect(await b.get("k")).toEqual(new Uint8Array([1, 2, 3]));
      const got = await b.get("k");
      got[1] = 9;
      expect(await b.get("k")).toEqual(new Uint8Array([1, 2, 3]));
    });

    test("reads byte ranges, cut short at the end of the object", async () => {
      const data = pseudoRandom(1000, 4);
      await b.put("r", data);
      expect(await b.getRange("r", 0, 10)).toEqual(data.slice(0, 10));
      expect(await b.getRange("r", 500, 100)).toEqual(data.slice(500, 600));
      expect(await b.getRange("r", 990, 10)).toEqual(data.slice(990));
      expect(await b.getRange("r", 990, 100)).toEqual(data.slice(990));
      expect(await b.getRange("r", 0, 1000)).toEqual(data);
      expect(await b.getRange("r", 1000, 5)).toEqual(new Uint8Array(0));
      expect(await b.getRange("r", 5000, 5)).toEqual(new Uint8Array(0));
      expect(await b.getRange("r", 10, 0)).toEqual(new Uint8Array(0));
      await expect(b.getRange("r", -1, 5)).rejects.toThrow(RangeError);
      await expect(b.getRange("r", 0, 1.5)).rejects.toThrow(RangeError);
    });

    test("a missing key: NotFoundError from get, getRange and size; exists is false; delete is fine", async () => {
      for (const read of [() => b.get("no/such"), () => b.getRange("no/such", 0, 10), () => b.getRange("no/such", 0, 0), () => b.size("no/such")]) {
        const err = await read().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(NotFoundError);
        expect((err as NotFoundError).key.endsWith("no/such")).toBe(true);
      }
      expect(await b.exists("no/such")).toBe(false);
      await b.delete("no/such");
    });

    test("deletes objects, leaving their neighbours and no empty directories", async () => {
      await b.put("d/x/1", bytes("1"));
      await b.put("d/x/2", bytes("2"));
      await b.put("d/y", bytes("y"));
      await b.delete("d/x/1");
      expect(await b.exists("d/x/1")).toBe(false);
      await expect(b.get("d/x/1")).rejects.toBeInstanceOf(NotFoundError);
      expect(await list("d/", true)).toEqual(["d/x/2", "d/y"]);
      await b.delete("d/x/2");
      await b.delete("d/x/2");
      expect(await list("d/")).toEqual(["d/y"]);
      await b.delete("d/y");
      expect(await list("", true)).toEqual([]);
      expect(await list("")).toEqual([]);
    });

    test("overwrites an object, with a shorter one too", async () => {
      await b.put("o", pseudoRandom(5000, 5));
      await b.put("o", bytes("short"));
      expect(await b.get("o")).toEqual(bytes("short"));
      expect(await b.size("o")).toBe(5);
      expect(await list("", true)).toEqual(["o"]);
    });

    test("concurrent puts to one key leave one of them whole", async () => {
      if (atomicPuts === false) return; // the store, not our client, decides; see BucketUnderTest
      const versions = [1, 2, 3, 4, 5].map((seed) => pseudoRandom(100_000 + seed, seed));
      await Promise.all(versions.map((v) => b.put("race", v)));
      const got = await b.get("race");
      expect(versions.some((v) => Buffer.compare(v, got) === 0)).toBe(true);
    });

    test("a put whose stream fails, early or after megabytes, leaves the previous object", async () => {
      await b.put("p", bytes("before"));
      for (const failAfter of [100_000, 7 << 20]) {
        await expect(b.put("p", failingStream(failAfter))).rejects.toThrow("source broke");
        expect(await b.get("p")).toEqual(bytes("before"));
      }
      expect(await list("", true)).toEqual(["p"]);
    });

    // Every directory below holds an object of its own: s3rver leaves out a common prefix whose
    // objects all lie two or more levels down (its walk skips directories under a common prefix).
    test("lists nested keys recursively and one level at a time", async () => {
      const keys = [
        "blocks/01A/meta.json",
        "blocks/01A/profiles.parquet",
        "blocks/01A/symbols/strings",
        "blocks/01B/meta.json",
        "blocks/x",
        "blocksy/z",
        "catalog.json",
      ];
      await Promise.all(keys.map((k) => b.put(k, bytes(k))));
      expect(await list("", true)).toEqual(keys);
      expect(await list("")).toEqual(["blocks/", "blocksy/", "catalog.json"]);
      expect(await list("blocks/", true)).toEqual(keys.slice(0, 5));
      expect(await list("blocks/")).toEqual(["blocks/01A/", "blocks/01B/", "blocks/x"]);
      // A prefix is a string prefix, not a directory.
      expect(await list("blocks")).toEqual(["blocks/", "blocksy/"]);
      expect(await list("blocks/01")).toEqual(["blocks/01A/", "blocks/01B/"]);
      expect(await list("blocks/01A/")).toEqual(["blocks/01A/meta.json", "blocks/01A/profiles.parquet", "blocks/01A/symbols/"]);
      expect(await list("blocks/01A/m", true)).toEqual(["blocks/01A/meta.json"]);
      expect(await list("blocks/01A/meta.json", true)).toEqual(["blocks/01A/meta.json"]);
      expect(await list("nothing/", true)).toEqual([]);
      expect(await list("catalog.json/", true)).toEqual([]);
    });

    test("lists more than 1000 keys (paging)", async () => {
      const keys = Array.from({ length: 1050 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      await inBatches(keys, 64, (k) => b.put(k, bytes(k)));
      await b.put("many-not/x", bytes("x"));
      const all = await list("many/", true);
      expect(all.length).toBe(keys.length);
      expect(all).toEqual(keys);
      expect(await list("many/")).toEqual(keys);
      expect(await list("")).toEqual(["many-not/", "many/"]);
    }, 15_000);

    test("keys with odd but legal characters", async () => {
      const keys = [
        "odd/with space",
        "odd/ünïcödé/ключ/鍵",
        "odd/emoji 😀",
        "odd/a+b=c&d",
        "odd/percent%20sign%",
        "odd/tilde~star*paren(1)[2]{3}",
        "odd/semi;colon,comma:colon@at$dollar!bang'quote\"",
        "odd/#hash?query",
        "odd/<xml>&amp;",
        "odd/.hidden",
        "odd/...dots",
        "odd/trailing.",
      ];
      await Promise.all(keys.map((k) => b.put(k, bytes(k))));
      for (const k of keys) expect(new TextDecoder().decode(await b.get(k))).toBe(k);
      expect(await list("odd/", true)).toEqual([...keys].sort());
      expect(await list("odd/ünïcödé/")).toEqual(["odd/ünïcödé/ключ/"]);
    });

    test("rejects keys and prefixes that break the key rules", async () => {
      for (const key of ["", "/a", "a/", "a//b", "../x", "a/../b", "a/./b", ".", "a\u0000b", "a\nb"]) {
        await expect(b.put(key, bytes("x"))).rejects.toThrow(TypeError);
        await expect(b.get(key)).rejects.toThrow(TypeError);
      }
      for (const prefix of ["/", "../", "a//", "a/../"]) {
        await expect(Array.fromAsync(b.list(prefix))).rejects.toThrow(TypeError);
      }
    });
  });
}

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Bytes from xorshift32: no period a wrong offset could hide behind. */
export function pseudoRandom(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer, 0, n);
}

// toEqual on megabytes is slow and prints the whole array on failure.
export function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.byteLength).toBe(want.byteLength);
  expect(Buffer.compare(got, want)).toBe(0);
}

function chunkedStream(data: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= data.byteLength) return c.close();
      c.enqueue(data.slice(off, off + chunk));
      off += chunk;
    },
  });
}

// Yields `bytes` bytes in 1 MiB chunks, then errors.
function failingStream(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= bytes) return c.error(new Error("source broke"));
      const n = Math.min(1 << 20, bytes - sent);
      c.enqueue(pseudoRandom(n, sent));
      sent += n;
    },
  });
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}
