// `npm run bench`: speed as ratios against a floor measured in the same run (DESIGN §6).
// Ingest: each pprof fixture through the real HTTP app (decode, labels, WAL with fsync, head) vs
// gunzip + a bare protobuf wire walk of the same bytes. Query: SelectMergeStacktraces over one hour
// of 10 s profiles vs a typed-array sum over the same (stacktrace id, value) rows.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createApp } from "../../server/app.ts";
import { defaultConfig } from "../../server/config.ts";
import { encodePprof } from "../../server/api/pprof-encode.ts";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { wireWalk } from "./wire-walk.ts";

const FIXTURES = new URL("../../../shared/fixtures/pprof/", import.meta.url).pathname;
const INGEST_FIXTURES = ["cpu.pb.gz", "go.cpu.labels.pprof", "heap", "profile_java", "nodejs-wall.pb.gz", "dotnet-pprof-73.pb.gz", "profile_ruby"];

function unzip(b: Uint8Array): Uint8Array {
  return b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
}

/**
 * Seconds per call of fn: after a warm-up, the best of five rounds of at least `ms` each. The
 * best round is the one least disturbed by whatever else shares the machine.
 */
async function timeIt(fn: () => unknown | Promise<unknown>, ms = 150): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await fn();
      n++;
    }
    best = Math.min(best, (performance.now() - t0) / 1000 / n);
  }
  return best;
}

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (x: number, d = 1) => x.toFixed(d);

/**
 * One hour of 10 s profiles of one service: `fixture` with its values varied per profile, then
 * SelectMergeStacktraces over the hour against a typed-array sum over the same stored rows.
 */
async function queryBench(fixture: string, typeId: string, valueIndex: number) {
  const base = decodePprof(unzip(new Uint8Array(readFileSync(FIXTURES + fixture))));
  const k = base.sampleTypes.length;
  const qDir = mkdtempSync(join(tmpdir(), "hearth-bench-q-"));
  const qConfig = defaultConfig();
  qConfig.dataDir = qDir;
  qConfig.ingester.walFsync = "none";
  const qApp = await createApp(qConfig, () => {});
  try {
    const t0 = Date.UTC(2026, 0, 1);
    const profiles = 360;
    const vary = (v: number, p: number, i: number) => v * (1 + ((p + i) % 7));
    const bodies = Array.from({ length: profiles }, (_, p) =>
      encodePprof({ ...base, timeNanos: BigInt(t0 + p * 10_000) * 1000000n, samples: { ...base.samples, values: base.samples.values.map((v, j) => vary(v, p, Math.floor(j / k))) } }),
    );
    const ingestStart = performance.now();
    for (const bytes of bodies) {
      const r = await qApp.http.fetch(new Request(`http://bench/ingest?format=pprof&name=bench-query`, { method: "POST", body: bytes }));
      if (r.status !== 200) throw new Error(`ingest: ${r.status} ${await r.text()}`);
    }
    const ingestSec = (performance.now() - ingestStart) / 1000;
    const body = JSON.stringify({ profileTypeID: typeId, labelSelector: '{service_name="bench-query"}', start: t0, end: t0 + 3600_000 });
    const call = async () => {
      const r = await qApp.http.fetch(
        new Request("http://bench/querier.v1.QuerierService/SelectMergeStacktraces", { method: "POST", headers: { "content-type": "application/json" }, body }),
      );
      if (r.status !== 200) throw new Error(`query: ${r.status} ${await r.text()}`);
      return r.json();
    };
    // The floor: the rows the head stores (one entry per distinct stack of each profile) as
    // typed arrays, summed into one value per stack id.
    const bs = base.samples;
    const stackIndex = new Map<string, number>();
    const stackOf = Array.from({ length: bs.count }, (_, i) => {
      const key = bs.locs.subarray(bs.locStart[i], bs.locStart[i + 1]).join(",");
      let id = stackIndex.get(key);
      if (id === undefined) stackIndex.set(key, (id = stackIndex.size + 1));
      return id;
    });
    const nStacks = stackIndex.size + 1;
    const rowsIds: Uint32Array[] = [];
    const rowsVals: Float64Array[] = [];
    for (let p = 0; p < profiles; p++) {
      const sums = new Float64Array(nStacks);
      for (let i = 0; i < bs.count; i++) sums[stackOf[i]] += vary(bs.values[i * k + valueIndex], p, i);
      const ids = [...sums.keys()].filter((id) => sums[id] !== 0);
      rowsIds.push(Uint32Array.from(ids));
      rowsVals.push(Float64Array.from(ids, (id) => sums[id]));
    }
    const floorQ = await timeIt(() => {
      const sums = new Float64Array(nStacks);
      for (let r = 0; r < rowsIds.length; r++) {
        const ids = rowsIds[r];
        const vs = rowsVals[r];
        for (let i = 0; i < ids.length; i++) sums[ids[i]] += vs[i];
      }
      return sums;
    });
    // The answer must be the real one, or the timing means nothing.
    const expectTotal = rowsVals.reduce((a, vs) => a + vs.reduce((x, y) => x + y, 0), 0);
    const got = Number((await call()).flamegraph?.total ?? 0);
    if (got !== expectTotal) throw new Error(`query total ${got}, expected ${expectTotal}`);
    const q = await timeIt(call);
    row(`SelectMergeStacktraces, 1 h of 10 s profiles`, `${fixture}: ${profiles} × ${rowsIds[0].length} stacks`, `${fmt(q * 1000, 2)} ms`, `${fmt(floorQ * 1000, 3)} ms`, fmt(q / floorQ, 1));
    row("  ingest of those profiles (no fsync)", "", `${fmt(profiles / ingestSec, 0)} profiles/s`, "", "");
  } finally {
    await qApp.close();
    rmSync(qDir, { recursive: true, force: true });
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "hearth-bench-"));
const config = defaultConfig();
config.dataDir = dataDir;
const app = await createApp(config, () => {});
const noSyncDir = mkdtempSync(join(tmpdir(), "hearth-bench-nosync-"));
const noSyncConfig = defaultConfig();
noSyncConfig.dataDir = noSyncDir;
noSyncConfig.ingester.walFsync = "none";
const noSyncApp = await createApp(noSyncConfig, () => {});

try {
  row("benchmark", "input", "result", "floor: gunzip + wire walk / typed-array sum", "time ratio (result/floor)");

  // --- Ingest --------------------------------------------------------------------------------
  for (const f of INGEST_FIXTURES) {
    const body = new Uint8Array(readFileSync(FIXTURES + f));
    const raw = unzip(body);
    const floor = await timeIt(() => wireWalk(unzip(body)));
    const decode = await timeIt(() => decodePprof(unzip(body)));
    let i = 0;
    const ingestInto = (a: typeof app) => async () => {
      const r = await a.http.fetch(
        new Request(`http://bench/ingest?format=pprof&name=bench-${i++ % 50}{fixture=${f}}&from=${Math.floor(Date.now() / 1000)}`, { method: "POST", body }),
      );
      if (r.status !== 200) throw new Error(`ingest ${f}: ${r.status} ${await r.text()}`);
    };
    const ingest = await timeIt(ingestInto(app));
    const ingestNoSync = await timeIt(ingestInto(noSyncApp));
    const mb = raw.length / 1e6;
    row("decode pprof (gunzip + decode)", `${f} ${fmt(raw.length / 1024)} KiB`, `${fmt(mb / decode)} MB/s`, `${fmt(mb / floor)} MB/s`, fmt(decode / floor, 2));
    row("  /ingest, WAL without fsync", "", `${fmt(mb / ingestNoSync)} MB/s, ${fmt(1 / ingestNoSync, 0)} profiles/s`, "", fmt(ingestNoSync / floor, 2));
    row("  /ingest, WAL with fsync (default)", "", `${fmt(mb / ingest)} MB/s, ${fmt(1 / ingest, 0)} profiles/s`, "", fmt(ingest / floor, 2));
  }

  // --- Query ---------------------------------------------------------------------------------
  await queryBench("profile_java", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 0);
  await queryBench("heap", "memory:inuse_space:bytes:space:bytes", 3);
} finally {
  await app.close();
  await noSyncApp.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(noSyncDir, { recursive: true, force: true });
}

// Print the table.
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, c) => cell.padEnd(widths[c])).join(" | "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
}
console.log(`\nrss ${fmt(process.memoryUsage().rss / 1e6, 0)} MB, bun ${Bun.version}`);
