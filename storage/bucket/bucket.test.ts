// Runs the bucket contract against memory, fs, a prefixed view and S3 (a real s3rver this file
// starts), then what is particular to each: fs temp files, S3 paging, error mapping, retry, outages.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { type Bucket, NotFoundError, prefixed } from "./bucket.ts";
import { bucketContract, expectSameBytes, pseudoRandom } from "./bucket-contract.ts";
import { FsBucket } from "./fs-bucket.ts";
import { MemoryBucket } from "./memory-bucket.ts";
import { withRetry, backoffMs } from "./retry.ts";
import { type RetryInfo, S3Bucket, type S3BucketOptions, S3TimeoutError, isTransientS3Error, s3OptionsFromEnv } from "./s3-bucket.ts";
import { S3rver } from "../../test/helpers/s3rver.ts";

async function tempDir(name: string): Promise<string> {
  return await fsp.mkdtemp(path.join(os.tmpdir(), `hearth-${name}-`));
}

let bucketSeq = 0;
function s3Options(server: S3rver, bucket: string, extra: S3BucketOptions = {}): S3BucketOptions {
  return {
    endpoint: server.endpoint,
    bucket,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    partSize: 5 << 20, // S3's least, so the contract's 12 MB object goes up in three parts
    env: {}, // keep the runner's AWS_* out of the tests
    ...extra,
  };
}

bucketContract("MemoryBucket", async () => ({ bucket: new MemoryBucket(), cleanup: async () => {} }));

bucketContract("FsBucket", async () => {
  const dir = await tempDir("fs-bucket");
  return { bucket: await FsBucket.open(dir), cleanup: () => fsp.rm(dir, { recursive: true, force: true }) };
});

bucketContract("prefixed(MemoryBucket)", async () => ({ bucket: prefixed(new MemoryBucket(), "tenant-a/data"), cleanup: async () => {} }));

describe("S3Bucket on s3rver", () => {
  let server: S3rver;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir("s3rver");
    server = await S3rver.start(dir);
  });
  afterAll(async () => {
    await server?.kill();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function freshBucket(extra: S3BucketOptions = {}): Promise<S3Bucket> {
    const name = `test-${++bucketSeq}-${process.pid}`;
    await server.createBucket(name);
    return new S3Bucket(s3Options(server, name, extra));
  }

  // s3rver writes an object's file in place, so concurrent puts to one key can interleave there.
  bucketContract("contract", async () => ({ bucket: await freshBucket(), cleanup: async () => {}, atomicPuts: false }));

  test("pages through listings, recursive and one level at a time", async () => {
    const b = await freshBucket({ listPageSize: 3 });
    const keys = ["d1/a", "d1/b", "d2/a", "d3/a", "d4/a", "d4/b/c", "e", "f", "g"];
    await Promise.all(keys.map((k) => b.put(k, new Uint8Array([1]))));
    expect((await Array.fromAsync(b.list("", { recursive: true }))).sort()).toEqual(keys);
    expect((await Array.fromAsync(b.list(""))).sort()).toEqual(["d1/", "d2/", "d3/", "d4/", "e", "f", "g"]);
    expect((await Array.fromAsync(b.list("d4/"))).sort()).toEqual(["d4/a", "d4/b/"]);
  });

  test("a prefixed view keeps its keys under the prefix", async () => {
    const b = await freshBucket();
    const tenant = prefixed(b, "hearth/tenant-a");
    await tenant.put("blocks/01A/meta.json", new Uint8Array([1]));
    expect(await Array.fromAsync(b.list("", { recursive: true }))).toEqual(["hearth/tenant-a/blocks/01A/meta.json"]);
    // list("") would be ["blocks/"] on S3, but s3rver drops common prefixes with no object directly inside.
    expect(await Array.fromAsync(tenant.list("blocks/"))).toEqual(["blocks/01A/"]);
    expect(await tenant.get("blocks/01A/meta.json")).toEqual(new Uint8Array([1]));
  });
});

describe("S3Bucket errors, retries and deadlines (scripted server)", () => {
  // A fake S3 whose answers each test scripts; s3rver can't be made to fail on cue.
  let answers: Array<() => Response | Promise<Response>> = [];
  let hits = 0;
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => {
        hits++;
        const next = answers.length > 1 ? answers.shift()! : answers[0];
        return next ? next() : new Response(null, { status: 500 });
      },
    });
  });
  afterAll(() => server.stop(true));

  const s3Error = (status: number, code: string) => () =>
    new Response(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`, { status });
  const bare = (status: number) => () => new Response(null, { status });

  function bucket(extra: S3BucketOptions = {}): S3Bucket {
    hits = 0;
    return new S3Bucket({
      endpoint: `http://127.0.0.1:${server.port}`,
      bucket: "fake",
      accessKeyId: "k",
      secretAccessKey: "s",
      env: {},
      retry: { attempts: 4, baseMs: 1, maxMs: 5 },
      ...extra,
    });
  }

  test("retries 5xx and throttling, then maps NoSuchKey to NotFoundError without retrying it", async () => {
    const retries: RetryInfo[] = [];
    const b = bucket({ onRetry: (info) => retries.push(info) });
    answers = [bare(503), s3Error(500, "InternalError"), s3Error(503, "SlowDown"), s3Error(404, "NoSuchKey")];
    const err = await b.get("k").catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(hits).toBe(4);
    expect(retries.map((r) => [r.op, r.key, r.attempt])).toEqual([
      ["get", "k", 1],
      ["get", "k", 2],
      ["get", "k", 3],
    ]);
  });

  test("does not retry AccessDenied, and gives up on a persistent 5xx after the attempts", async () => {
    let b = bucket();
    answers = [s3Error(403, "AccessDenied")];
    expect(await b.put("k", new Uint8Array([1])).catch((e) => e.code)).toBe("AccessDenied");
    expect(hits).toBe(1);
    b = bucket();
    answers = [s3Error(500, "InternalError")];
    expect(await b.size("k").catch((e) => e.code)).toBe("UnknownError"); // HEAD has no body: Bun drops the code
    expect(hits).toBe(4);
  });

  test("a request that hangs times out and is retried", async () => {
    const b = bucket({ timeoutMs: 100, retry: { attempts: 2, baseMs: 1, maxMs: 1 } });
    answers = [() => new Promise<Response>(() => {})];
    const started = performance.now();
    const err = await b.exists("k").catch((e) => e);
    expect(err).toBeInstanceOf(S3TimeoutError);
    expect(hits).toBe(2);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  test("close() cuts a backoff short", async () => {
    const b = bucket({ retry: { attempts: 10, baseMs: 5_000, maxMs: 5_000 } });
    answers = [bare(503)];
    const started = performance.now();
    const pending = b.get("k").catch((e) => e);
    await Bun.sleep(50);
    await b.close();
    expect((await pending).code).toBe("UnknownError");
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(b.get("k")).rejects.toThrow("closed");
  });

  test("isTransientS3Error tells transient failures from client errors", () => {
    for (const code of ["ConnectionRefused", "ConnectionClosed", "ECONNRESET", "InternalError", "SlowDown", "UnknownError", "Timeout"]) {
      expect(isTransientS3Error({ code })).toBe(true);
    }
    for (const code of ["NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidRange", "ERR_S3_INVALID_PATH"]) {
      expect(isTransientS3Error({ code })).toBe(false);
    }
    expect(isTransientS3Error(new Error("no code"))).toBe(false);
  });
});

describe("S3 settings from the environment", () => {
  test("S3_* wins over AWS_*, and explicit options over both", () => {
    const env = {
      AWS_ACCESS_KEY_ID: "aws-key",
      AWS_SECRET_ACCESS_KEY: "aws-secret",
      AWS_REGION: "eu-west-1",
      AWS_SESSION_TOKEN: "aws-token",
      S3_ACCESS_KEY_ID: "s3-key",
      S3_ENDPOINT: "http://127.0.0.1:9000",
      S3_BUCKET: "blocks",
    };
    expect(s3OptionsFromEnv(env)).toEqual({
      bucket: "blocks",
      endpoint: "http://127.0.0.1:9000",
      region: "eu-west-1",
      accessKeyId: "s3-key",
      secretAccessKey: "aws-secret",
      sessionToken: "aws-token",
    });
    expect(new S3Bucket({ env }).name).toBe("blocks");
    expect(new S3Bucket({ env, bucket: "other" }).name).toBe("other");
    expect(() => new S3Bucket({ env: {} })).toThrow("no bucket name");
  });
});

describe("FsBucket files", () => {
  test("open() removes temp files of dead writers and keeps a live writer's", async () => {
    const dir = await tempDir("fs-tmp");
    try {
      await FsBucket.open(dir);
      const host = os.hostname();
      const dead = `999999999.0123456789abcdef.${host}`;
      const live = `${process.ppid}.0123456789abcdef.${host}`;
      const foreign = `123.0123456789abcdef.some-other-host`;
      for (const name of [dead, live, foreign]) await Bun.write(path.join(dir, ".tmp", name), "partial");
      const b = await FsBucket.open(dir);
      expect((await fsp.readdir(path.join(dir, ".tmp"))).sort()).toEqual([live, foreign].sort());
      expect(await Array.fromAsync(b.list("", { recursive: true }))).toEqual([]);
      await expect(b.put(".tmp/x", new Uint8Array(1))).rejects.toThrow("reserved");
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test("a put leaves no temp file behind, and a key clashing with a directory fails clearly", async () => {
    const dir = await tempDir("fs-clash");
    try {
      const b = await FsBucket.open(dir);
      await b.put("a/b", new Uint8Array([1]));
      await expect(b.put("a", new Uint8Array([2]))).rejects.toThrow("clashes");
      await expect(b.put("a/b/c", new Uint8Array([3]))).rejects.toThrow("clashes");
      expect(await b.get("a/b")).toEqual(new Uint8Array([1]));
      await expect(b.get("a")).rejects.toBeInstanceOf(NotFoundError);
      expect(await fsp.readdir(path.join(dir, ".tmp"))).toEqual([]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("withRetry", () => {
  test("retries until success, reporting each retry", async () => {
    const seen: number[] = [];
    const result = await withRetry(
      async (attempt) => {
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return attempt;
      },
      { attempts: 5, baseMs: 1, maxMs: 4, onRetry: (_e, attempt) => seen.push(attempt) },
    );
    expect(result).toBe(3);
    expect(seen).toEqual([1, 2]);
  });

  test("gives up after the attempts, and at once on an error that is not retryable", async () => {
    let calls = 0;
    await expect(withRetry(async () => Promise.reject(new Error(`fail ${++calls}`)), { attempts: 3, baseMs: 1 })).rejects.toThrow("fail 3");
    calls = 0;
    const fatal = Object.assign(new Error("fatal"), { fatal: true });
    await expect(withRetry(async () => Promise.reject(fatal), { attempts: 3, baseMs: 1, isRetryable: (e) => !(e as { fatal?: boolean }).fatal })).rejects.toBe(fatal);
  });

  test("backoff doubles up to the cap, jittered within its upper half", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, 100, 500, () => 0))).toEqual([50, 100, 200, 250, 250]);
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, 100, 500, () => 1))).toEqual([100, 200, 400, 500, 500]);
  });

  test("an aborted signal stops the waiting", async () => {
    const ac = new AbortController();
    const started = performance.now();
    const pending = withRetry(async () => Promise.reject(new Error("down")), { attempts: 5, baseMs: 10_000, maxMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(pending).rejects.toThrow("down");
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("S3 outage during an upload", () => {
  // Its own s3rver, so killing it disturbs no other test.
  let server: S3rver;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir("s3rver-outage");
    server = await S3rver.start(dir);
  });
  afterAll(async () => {
    await server?.kill();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  // Returns once s3rver has begun storing bytes of the upload, so the kill lands mid-transfer.
  async function untilUploadStarted(bucketName: string, deadlineMs = 5_000): Promise<void> {
    const bucketDir = path.join(dir, bucketName);
    const end = performance.now() + deadlineMs;
    while (performance.now() < end) {
      const names = await fsp.readdir(bucketDir).catch(() => [] as string[]);
      // Parts land in ._S3rver_uploads; a single PUT is written in place, under the key's directories.
      if (names.includes("._S3rver_uploads") || names.includes("blocks")) return;
      await Bun.sleep(2);
    }
    throw new Error("the upload never reached s3rver");
  }

  for (const [label, partSize] of [
    ["multipart", 5 << 20],
    ["single PUT", 64 << 20],
  ] as const) {
    test(`s3rver killed mid-upload (${label}) and restarted: the put retries and the object reads back whole`, async () => {
      const name = `outage-${label.replace(/\W/g, "").toLowerCase()}-${process.pid}`;
      await server.createBucket(name);
      const retries: RetryInfo[] = [];
      // Least total backoff ≈ 3.5 s, well beyond the ~1 s outage; the test stays bounded by its timeout.
      const b: Bucket = new S3Bucket(
        s3Options(server, name, { partSize, retry: { attempts: 30, baseMs: 50, maxMs: 250 }, onRetry: (i) => retries.push(i) }),
      );
      const data = pseudoRandom(24 << 20, 7);
      let settled = false;
      const put = b.put("blocks/01OUTAGE/profiles.parquet", data).finally(() => (settled = true));

      await untilUploadStarted(name);
      await server.kill();
      expect(settled).toBe(false); // the kill really landed while the put was in flight
      await Bun.sleep(100);
      await server.restart(); // Node takes ~0.7 s to bring s3rver back: the outage lasts about 1 s

      await put;
      expect(retries.length).toBeGreaterThan(0);
      expect(retries.every((r) => r.op === "put" && isTransientS3Error(r.error))).toBe(true);
      expect(await b.size("blocks/01OUTAGE/profiles.parquet")).toBe(data.byteLength);
      expectSameBytes(await b.get("blocks/01OUTAGE/profiles.parquet"), data);
      expect(await Array.fromAsync(b.list("", { recursive: true }))).toEqual(["blocks/01OUTAGE/profiles.parquet"]);
    }, 20_000);
  }

  test("with s3rver gone for good, the put fails after its bounded retries", async () => {
    const name = `gone-${process.pid}`;
    await server.createBucket(name);
    const retries: RetryInfo[] = [];
    const b = new S3Bucket(s3Options(server, name, { retry: { attempts: 3, baseMs: 10, maxMs: 20 }, onRetry: (i) => retries.push(i) }));
    await server.kill();
    try {
      const err = await b.put("k", new Uint8Array(1000)).catch((e) => e);
      expect(isTransientS3Error(err)).toBe(true);
      expect(retries.length).toBe(2);
    } finally {
      await server.restart();
    }
  });
});
