// End to end with object storage: a writer ships its blocks to a real S3-compatible server
// (s3rver), and a second, read-only process on the same bucket answers the same queries.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { S3rver } from "./helpers/s3rver.ts";
import { S3Bucket } from "../storage/bucket/s3-bucket.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const FILES: [string, string, number][] = [
  ["cpu.pb.gz", CPU, 1],
  ["profile_java", CPU, 0],
  ["heap", "memory:inuse_space:bytes:space:bytes", 3],
];
const svc = (f: string) => `bkt-${f.replace(/[^a-z0-9]/gi, "-")}`;

async function query(s: RunningServer, service: string, type: string) {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ profileTypeID: type, labelSelector: `{service_name="${service}"}`, start: 1000, end: Date.now() + 3600_000 }),
  });
  expect(r.status).toBe(200);
  return (await r.json()).flamegraph;
}

describe("bucket", () => {
  let s3: S3rver;
  let s3dir: string;
  let writer: RunningServer;
  const env = { S3_ACCESS_KEY_ID: "S3RVER", S3_SECRET_ACCESS_KEY: "S3RVER" };
  const bucketArgs = () => ["--storage.backend", "s3", "--storage.s3.endpoint", s3.endpoint, "--storage.s3.bucket", "hearth", "--storage.prefix", "profiles", "--storage.sync-interval", "1s"];

  beforeAll(async () => {
    s3dir = tempDir("hearth-s3-");
    s3 = await S3rver.start(s3dir);
    await s3.createBucket("hearth");
    writer = await startServer({ args: bucketArgs(), env });
  });
  afterAll(async () => {
    if (writer?.proc.exitCode === null) await writer.stop();
    if (writer) removeDir(writer.dataDir);
    await s3?.kill();
    removeDir(s3dir);
  });

  test("finished blocks are uploaded; a read-only process on the bucket answers the same queries", async () => {
    for (const [f] of FILES) {
      const r = await fetch(`${writer.url}/ingest?format=pprof&name=${svc(f)}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) });
      expect(r.status).toBe(200);
    }
    expect((await fetch(`${writer.url}/ingester/flush`, { method: "POST" })).status).toBe(200);
    const deadline = Date.now() + 20_000;
    let uploaded = 0;
    while (Date.now() < deadline) {
      const m = await (await fetch(`${writer.url}/metrics`)).text();
      uploaded = Number(/^hearth_bucket_uploaded_blocks (\d+)/m.exec(m)?.[1] ?? 0);
      if (uploaded >= 1) break;
      await Bun.sleep(200);
    }
    expect(uploaded).toBe(1);
    expect(await (await fetch(`${writer.url}/metrics`)).text()).toMatch(/^hearth_bucket_upload_lag_seconds 0$/m);

    const reader = await startServer({ args: [...bucketArgs(), "--read-only"], env });
    try {
      for (const [f, type, idx] of FILES) {
        const want = await query(writer, svc(f), type);
        const got = await query(reader, svc(f), type);
        expect(Number(got.total), f).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + f), idx));
        expect(got).toEqual(want);
      }
      // The reader refuses writes with a clear error.
      const w = await fetch(`${reader.url}/ingest?format=pprof&name=nope`, { method: "POST", body: readFileSync(FIXTURES + "pprof/cpu.pb.gz") });
      expect(w.status).toBe(403);
      expect((await w.json()).message).toContain("read-only");
    } finally {
      await reader.stop();
      removeDir(reader.dataDir);
    }
  });

  for (const point of ["shipper-before-meta", "shipper-before-mark"]) {
    test(`SIGKILL during upload (${point}): after restart the upload completes, nothing partial is served or doubled`, async () => {
      const prefix = `crash-${point}`;
      const args = ["--storage.backend", "s3", "--storage.s3.endpoint", s3.endpoint, "--storage.s3.bucket", "hearth", "--storage.prefix", prefix, "--storage.sync-interval", "1s"];
      const dataDir = tempDir();
      try {
        let w = await startServer({ dataDir, args, env: { ...env, HEARTH_FAILPOINT: point } });
        for (const [f] of FILES) {
          const r = await fetch(`${w.url}/ingest?format=pprof&name=${svc(f)}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) });
          expect(r.status).toBe(200);
        }
        await fetch(`${w.url}/ingester/flush`, { method: "POST" }).catch(() => null);
        await w.proc.exited;
        expect(w.proc.signalCode).toBe("SIGKILL");
        w = await startServer({ dataDir, args, env });
        try {
          const deadline = Date.now() + 20_000;
          const bucket = new S3Bucket({ endpoint: s3.endpoint, bucket: "hearth", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
          let metas: string[] = [];
          while (Date.now() < deadline) {
            metas = (await Array.fromAsync(bucket.list(`${prefix}/`, { recursive: true }))).filter((k) => k.endsWith("/meta.json"));
            if (metas.length >= 1) break;
            await Bun.sleep(200);
          }
          expect(metas.length).toBe(1);
          // Every block directory in the bucket is complete: 4 files with meta.json.
          const keys = await Array.fromAsync(bucket.list(`${prefix}/`, { recursive: true }));
          const dirs = new Set(keys.map((k) => k.slice(0, k.lastIndexOf("/"))));
          for (const d of dirs) expect(keys.filter((k) => k.startsWith(d + "/")).length, d).toBe(4);
          const reader = await startServer({ args: [...args, "--read-only"], env });
          try {
            for (const [f, type, idx] of FILES) expect(Number((await query(reader, svc(f), type)).total), f).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + f), idx));
          } finally {
            await reader.stop();
            removeDir(reader.dataDir);
          }
          for (const [f, type, idx] of FILES) expect(Number((await query(w, svc(f), type)).total), f).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + f), idx));
        } finally {
          await w.stop();
        }
      } finally {
        removeDir(dataDir);
      }
    });
  }

  test("compaction reaches the bucket: superseded blocks are deleted from it, and the catalog knows where each block is", async () => {
    const prefix = "compacted";
    const args = ["--storage.backend", "s3", "--storage.s3.endpoint", s3.endpoint, "--storage.s3.bucket", "hearth", "--storage.prefix", prefix, "--storage.sync-interval", "1s"];
    const bucket = new S3Bucket({ endpoint: s3.endpoint, bucket: "hearth", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
    const metaKeys = async () => (await Array.fromAsync(bucket.list(`${prefix}/`, { recursive: true }))).filter((k) => k.endsWith("/meta.json"));
    const ulidOf = (key: string) => key.split("/").at(-2)!;
    const waitFor = async (what: string, ok: () => Promise<boolean>) => {
      const deadline = Date.now() + 30_000;
      while (!(await ok())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(200);
      }
    };
    const [f, type, idx] = FILES[0];
    const want = sumColumn(readPprof(FIXTURES + "pprof/" + f), idx);
    const dataDir = tempDir();
    try {
      // Three level-1 blocks reach the bucket while compaction is off.
      let w = await startServer({ dataDir, args: [...args, "--compactor.enabled=false"], env });
      for (const round of [1, 2, 3]) {
        expect((await fetch(`${w.url}/ingest?format=pprof&name=${svc(f)}-${round}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) })).status).toBe(200);
        expect((await fetch(`${w.url}/ingester/flush`, { method: "POST" })).status).toBe(200);
      }
      await waitFor("3 uploaded blocks", async () => (await metaKeys()).length === 3);
      const sources = (await metaKeys()).map(ulidOf).sort();
      await w.stop();

      // With compaction on, they merge into one block; once it is uploaded, its sources leave the bucket.
      w = await startServer({ dataDir, args: [...args, "--compactor.interval", "1s"], env });
      try {
        await waitFor("one compacted block in the bucket", async () => {
          const keys = await metaKeys();
          return keys.length === 1 && !sources.includes(ulidOf(keys[0]));
        });
        const [key] = await metaKeys();
        const meta = JSON.parse(new TextDecoder().decode(await bucket.get(key)));
        expect(meta.compaction.level).toBeGreaterThan(1);
        expect([...meta.compaction.sources].sort()).toEqual(sources);
        // Nothing of the sources is left in the bucket: no data file without its meta.json.
        const keys = await Array.fromAsync(bucket.list(`${prefix}/`, { recursive: true }));
        for (const u of sources) expect(keys.filter((k) => k.includes(u))).toEqual([]);

        // The catalog lists the compacted block both locally and in the bucket, and nothing of the sources.
        await waitFor("the catalog to record the bucket copy", async () => {
          const db = new Database(join(dataDir, "catalog.sqlite"), { readonly: true });
          try {
            const rows = db.query("SELECT ulid, location FROM blocks").all() as { ulid: string; location: string }[];
            return rows.length === 1 && rows[0].ulid === meta.ulid && rows[0].location === "both";
          } finally {
            db.close();
          }
        });

        for (const round of [1, 2, 3]) expect(Number((await query(w, `${svc(f)}-${round}`, type)).total), `round ${round}`).toBe(want);
        const reader = await startServer({ args: [...args, "--read-only"], env });
        try {
          for (const round of [1, 2, 3]) expect(Number((await query(reader, `${svc(f)}-${round}`, type)).total), `reader round ${round}`).toBe(want);
        } finally {
          await reader.stop();
          removeDir(reader.dataDir);
        }
      } finally {
        await w.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
