// End to end with the block catalog (data/catalog.sqlite): a flushed block is listed; a deleted
// catalog is rebuilt at restart with the same rows and the same answers; a data dir of 1,000
// blocks starts quickly, cold (catalog rebuilt from meta.json) and warm (metas from the catalog).

import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { cpSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { newUlid, readMeta, writeMeta } from "../storage/block/meta.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const HEAP = "memory:alloc_space:bytes:space:bytes";
const NO_COMPACTION = ["--compactor.enabled=false"];

interface Row {
  tenant: string;
  ulid: string;
  min_time: number;
  max_time: number;
  level: number;
  sources: string;
  num_samples: number;
  bytes: number;
  location: string;
  meta: string;
}

/** The catalog's rows, read through a separate read-only connection (the server may be running). */
function catalogRows(dataDir: string): Row[] {
  const db = new Database(join(dataDir, "catalog.sqlite"), { readonly: true });
  try {
    return db.query("SELECT * FROM blocks ORDER BY tenant, ulid").all() as Row[];
  } finally {
    db.close();
  }
}

const removeCatalog = (dataDir: string) => {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(join(dataDir, "catalog.sqlite" + suffix), { force: true });
};
const blockDirs = (dataDir: string, tenant = "anonymous") => readdirSync(join(dataDir, tenant, "blocks")).filter((n) => !n.includes(".")).sort();

async function post(s: RunningServer, path: string, body: unknown) {
  const r = await fetch(`${s.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return r.json();
}

/** Several queries' full answers (flame graphs, label values, series), to compare across restarts. */
async function answers(s: RunningServer, services: string[]) {
  const range = { start: 1000, end: Date.now() + 3600_000 };
  const out: unknown[] = [await post(s, "/querier.v1.QuerierService/LabelValues", { name: "service_name", ...range })];
  for (const service of services)
    for (const type of [CPU, HEAP]) {
      out.push(await post(s, "/querier.v1.QuerierService/SelectMergeStacktraces", { profileTypeID: type, labelSelector: `{service_name="${service}"}`, ...range }));
      out.push(await post(s, "/querier.v1.QuerierService/SelectSeries", { profileTypeID: type, labelSelector: `{service_name="${service}"}`, groupBy: [], step: 3600, ...range }));
    }
  return out;
}

const flush = async (s: RunningServer) => expect((await fetch(`${s.url}/ingester/flush`, { method: "POST" })).status).toBe(200);

describe("catalog", () => {
  test("a flushed block is listed; a deleted catalog is rebuilt at restart with the same rows and answers", async () => {
    const dataDir = tempDir();
    try {
      let s = await startServer({ dataDir, args: NO_COMPACTION });
      const services: string[] = [];
      for (const [i, f] of ["cpu.pb.gz", "heap"].entries()) {
        const service = `cat-${i}`;
        services.push(service);
        const r = await fetch(`${s.url}/ingest?format=pprof&name=${service}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) });
        expect(r.status).toBe(200);
        await flush(s);
        // Each flush adds exactly the block it wrote, while the server runs.
        const rows = catalogRows(dataDir);
        expect(rows.map((r) => r.ulid)).toEqual(blockDirs(dataDir));
        expect(rows.length).toBe(i + 1);
      }
      const rows = catalogRows(dataDir);
      for (const r of rows) {
        const meta = readMeta(join(dataDir, "anonymous", "blocks", r.ulid));
        expect(r).toMatchObject({ tenant: "anonymous", location: "local", level: 1, min_time: meta.minTime, max_time: meta.maxTime, num_samples: meta.stats.numSamples });
        expect(JSON.parse(r.sources)).toEqual([r.ulid]);
        expect(JSON.parse(r.meta)).toEqual(meta);
      }
      const before = await answers(s, services);
      await s.stop();
      expect(catalogRows(dataDir)).toEqual(rows);

      removeCatalog(dataDir);
      s = await startServer({ dataDir, args: NO_COMPACTION });
      try {
        expect(s.output()).toMatch(/catalog: .*catalog\.sqlite was missing; rebuilt from the meta\.json files: 2 blocks/);
        expect(catalogRows(dataDir)).toEqual(rows);
        expect(await answers(s, services)).toEqual(before);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });

  test("1,000 blocks: the server becomes ready and the catalog lists them all, with and without a catalog", async () => {
    const dataDir = tempDir();
    const N = 1000;
    try {
      // One small block written by the server, then copied under new ULIDs: 1,000 blocks.
      let s = await startServer({ dataDir, args: NO_COMPACTION });
      const r = await fetch(`${s.url}/ingest?name=${encodeURIComponent("many.cpu")}&from=now-1m`, { method: "POST", body: "main;work 42\n" });
      expect(r.status).toBe(200);
      await flush(s);
      await s.stop();
      const blocksDir = join(dataDir, "anonymous", "blocks");
      const [first] = blockDirs(dataDir);
      const meta = readMeta(join(blocksDir, first));
      for (let i = 1; i < N; i++) {
        const ulid = newUlid();
        cpSync(join(blocksDir, first), join(blocksDir, ulid), { recursive: true });
        writeMeta(join(blocksDir, ulid), { ...meta, ulid, compaction: { level: 1, sources: [ulid] } });
      }
      expect(blockDirs(dataDir).length).toBe(N);

      const startTimed = async (label: string) => {
        const t0 = performance.now();
        const server = await startServer({ dataDir, args: NO_COMPACTION });
        const wall = performance.now() - t0;
        const ingester = /hearth: ready \(.* in (\d+) ms\)/.exec(server.output())?.[1];
        console.log(`start-up with ${N} blocks, ${label}: ready after ${wall.toFixed(0)} ms from spawn (storage opened in ${ingester} ms)`);
        return server;
      };

      removeCatalog(dataDir);
      s = await startTimed("no catalog (rebuilt from meta.json)");
      try {
        expect(s.output()).toContain(`rebuilt from the meta.json files: ${N} blocks`);
        expect(catalogRows(dataDir).length).toBe(N);
      } finally {
        await s.stop();
      }

      s = await startTimed("with the catalog");
      try {
        expect(s.output()).not.toContain("rebuilt");
        const rows = catalogRows(dataDir);
        expect(rows.length).toBe(N);
        expect(rows.map((r) => r.ulid)).toEqual(blockDirs(dataDir));
        // Every block is served: the one profile counts once per copy.
        const body = await post(s, "/querier.v1.QuerierService/SelectMergeStacktraces", { profileTypeID: CPU, labelSelector: '{service_name="many"}', start: 1000, end: Date.now() + 3600_000 });
        expect(Number(body.flamegraph.total)).toBe(N * 42 * 1e7);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
