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

/** Runs fn repeatedly for at least `ms` (after a warm-up) and returns seconds per call. */
async function timeIt(fn: () => unknown | Promise<unknown>, ms = 400): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await fn();
    n++;
  }
  return (performance.now() - t0) / 1000 / n;
}

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (x: number, d = 1) => x.toFixed(d);

const dataDir = mkdtempSync(join(tmpdir(), "hearth-bench-"));
const config = defaultConfig();
config.dataDir = dataDir;
const app = await createApp(config, () => {});

try {
  row("benchmark", "input", "result", "floor", "ratio (result/floor)");

  // --- Ingest --------------------------------------------------------------------------------
  for (const f of INGEST_FIXTURES) {
    const body = new Uint8Array(readFileSync(FIXTURES + f));
    const raw = unzip(body);
    const floor = await timeIt(() => wireWalk(unzip(body)));
    const decode = await timeIt(() => decodePprof(unzip(body)));
    let i = 0;
    const ingest = await timeIt(async () => {
      const r = await app.http.fetch(
        new Request(`http://bench/ingest?format=pprof&name=bench-${i++ % 50}{fixture=${f}}&from=${Math.floor(Date.now() / 1000)}`, { method: "POST", body }),
      );
      if (r.status !== 200) throw new Error(`ingest ${f}: ${r.status} ${await r.text()}`);
    });
    const mb = raw.length / 1e6;
    row("decode pprof (gunzip + decode)", `${f} ${fmt(raw.length / 1024)} KiB`, `${fmt(mb / decode)} MB/s`, `${fmt(mb / floor)} MB/s`, fmt(decode / floor, 2));
    row("ingest pprof via /ingest (+WAL fsync, head)", `${f}`, `${fmt(mb / ingest)} MB/s, ${fmt(1 / ingest, 0)} profiles/s`, `${fmt(mb / floor)} MB/s`, fmt(ingest / floor, 2));
  }

  // --- Query ---------------------------------------------------------------------------------
  // One hour of 10 s CPU profiles of one service: the Java fixture with values varied per profile.
  const base = decodePprof(unzip(new Uint8Array(readFileSync(FIXTURES + "profile_java"))));
  const qDir = mkdtempSync(join(tmpdir(), "hearth-bench-q-"));
  const qConfig = defaultConfig();
  qConfig.dataDir = qDir;
  qConfig.ingester.walFsync = "none";
  const qApp = await createApp(qConfig, () => {});
  const t0 = Date.UTC(2026, 0, 1);
  const profiles = 360;
  const ingestStart = performance.now();
  for (let k = 0; k < profiles; k++) {
    const p = { ...base, timeNanos: BigInt(t0 + k * 10_000) * 1000000n, samples: { ...base.samples, values: base.samples.values.map((v, j) => v * (1 + ((k + j) % 7))) } };
    const bytes = encodePprof(p);
    const r = await qApp.http.fetch(new Request(`http://bench/ingest?format=pprof&name=bench-query`, { method: "POST", body: bytes }));
    if (r.status !== 200) throw new Error(`ingest: ${r.status} ${await r.text()}`);
  }
  const ingestSec = (performance.now() - ingestStart) / 1000;
  const req = {
    profileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
    labelSelector: '{service_name="bench-query"}',
    start: t0,
    end: t0 + 3600_000,
  };
  const call = async () => {
    const r = await qApp.http.fetch(
      new Request("http://bench/querier.v1.QuerierService/SelectMergeStacktraces", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(req),
      }),
    );
    if (r.status !== 200) throw new Error(`query: ${r.status} ${await r.text()}`);
    return r.json();
  };
  // The floor: the same rows as typed arrays, summed into one value per stack id.
  const rowsIds: Uint32Array[] = [];
  const rowsVals: Float64Array[] = [];
  const nStacks = base.samples.count + 1;
  for (let k = 0; k < profiles; k++) {
    rowsIds.push(Uint32Array.from({ length: base.samples.count }, (_, i) => i + 1));
    rowsVals.push(Float64Array.from({ length: base.samples.count }, (_, i) => base.samples.values[i] * (1 + ((k + i) % 7))));
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
  row("SelectMergeStacktraces, 1 h of 10 s profiles (HTTP, Connect JSON)", `${profiles} profiles × ${base.samples.count} samples`, `${fmt(q * 1000, 2)} ms`, `${fmt(floorQ * 1000, 3)} ms`, fmt(q / floorQ, 1));
  row("ingest of those profiles (no fsync)", `${profiles} profiles`, `${fmt(profiles / ingestSec, 0)} profiles/s`, "", "");
  await qApp.close();
  rmSync(qDir, { recursive: true, force: true });
} finally {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
}

// Print the table.
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, c) => cell.padEnd(widths[c])).join(" | "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
}
console.log(`\nrss ${fmt(process.memoryUsage().rss / 1e6, 0)} MB, bun ${Bun.version}`);
