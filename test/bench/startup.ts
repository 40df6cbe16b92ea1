// Start-up with 1,000 blocks: a tenant directory of 1,000 small blocks (one hour each), then
// createApp in a fresh process, until it is ready to serve. The floor is reading the 1,000
// meta.json files with readFileSync + JSON.parse. Goal: ready in under 1 s.
//
// Two starts: the first after the blocks appeared (no catalog entry yet: every meta.json is read and
// the catalog learns them), then an ordinary restart (metas come from the catalog).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeBlock } from "../../storage/block/writer.ts";
import { Head } from "../../storage/head/head.ts";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { openApp, selectMergeTotal } from "./app-client.ts";
import { partMain, progress, report, runChild } from "./child.ts";
import { loadFixture, PprofTemplate } from "./pprof-template.ts";
import { fmt, ms, type Table } from "./table.ts";

const BLOCKS = Number(process.env.HEARTH_STARTUP_BLOCKS ?? 1000);
const HOUR = 3_600_000;
const TENANT = "anonymous";
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

interface StartResult {
  floorSec: number;
  startSec: number;
  sinceProcessStartSec: number;
  blocks: number;
  query1h: number;
  query24h: number;
  total24h: number;
  rss: number;
}

/** Writes the blocks: each holds one Go CPU profile of one service, an hour after the previous. */
async function prepare(dataDir: string, t0: number): Promise<number> {
  const tp = PprofTemplate.from(loadFixture("cpu.pb.gz"), { durationNanos: 10e9 });
  const blocksDir = join(dataDir, TENANT, "blocks");
  mkdirSync(blocksDir, { recursive: true });
  let total = 0;
  for (let i = 0; i < BLOCKS; i++) {
    const head = new Head();
    const v = tp.values(i);
    if (i >= BLOCKS - 24) total += v.reduce((a, x, j) => (j % tp.k === 1 ? a + x : a), 0);
    head.append(
      [
        { name: "__name__", value: "process_cpu" },
        { name: "service_name", value: "svc" },
      ],
      decodePprof(tp.body(v, t0 + i * HOUR)),
    );
    await writeBlock(head, blocksDir);
    if (i % 250 === 249) progress(`start-up: ${i + 1} blocks written`);
  }
  return total;
}

/** In a fresh process: the floor, then createApp until ready, then a first query. */
async function measure(dataDir: string, t0: number): Promise<StartResult> {
  const blocksDir = join(dataDir, TENANT, "blocks");
  const readMetas = () => {
    const t = performance.now();
    let n = 0;
    for (const name of readdirSync(blocksDir)) if (JSON.parse(readFileSync(join(blocksDir, name, "meta.json"), "utf8")).stats.numProfiles > 0) n++;
    if (n !== BLOCKS) throw new Error(`floor read ${n} metas`);
    return (performance.now() - t) / 1000;
  };
  const floorSec = readMetas();
  const t = performance.now();
  const app = await openApp(dataDir);
  const startSec = (performance.now() - t) / 1000;
  // performance.now() counts from process start: module loading included.
  const sinceProcessStartSec = performance.now() / 1000;
  const end = t0 + BLOCKS * HOUR;
  let q = performance.now();
  await selectMergeTotal(app, CPU, '{service_name="svc"}', end - HOUR, end - 1);
  const query1h = (performance.now() - q) / 1000;
  q = performance.now();
  const total24h = await selectMergeTotal(app, CPU, '{service_name="svc"}', end - 24 * HOUR, end - 1);
  const query24h = (performance.now() - q) / 1000;
  const result = { floorSec: Math.min(floorSec, readMetas()), startSec, sinceProcessStartSec, blocks: app.replay.blocks, query1h, query24h, total24h, rss: process.memoryUsage().rss / 1e6 };
  await app.close();
  return result;
}

export async function startupBench(t: Table): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hearth-bench-startup-"));
  // Whole hours in the past, ending at the current hour: inside any query lookback limit.
  const t0 = Math.floor(Date.now() / HOUR) * HOUR - BLOCKS * HOUR;
  try {
    const w = performance.now();
    const total = await prepare(dataDir, t0);
    const writeSec = (performance.now() - w) / 1000;
    for (const which of ["first start (catalog learns the blocks)", "restart (metas from the catalog)"]) {
      const r = await runChild<StartResult>("startup.ts", ["--measure", dataDir, String(t0)]);
      if (r.blocks !== BLOCKS) throw new Error(`start-up served ${r.blocks} blocks, expected ${BLOCKS}`);
      if (r.total24h !== total) throw new Error(`24 h query after start-up: total ${r.total24h}, expected ${total}`);
      t.row(
        `start-up with ${BLOCKS} blocks: ${which}`,
        `${BLOCKS} blocks of 1 h (written in ${fmt(writeSec, 1)} s)`,
        `createApp ${ms(r.startSec)} (goal < 1 s: ${r.startSec < 1 ? "met" : "NOT met"}); process start → ready ${ms(r.sinceProcessStartSec)}`,
        `${ms(r.floorSec)} read + parse ${BLOCKS} meta.json`,
        fmt(r.startSec / r.floorSec, 1),
      );
      t.row("  first queries after start-up", "", `1 h: ${ms(r.query1h)}; 24 h (24 blocks): ${ms(r.query24h)}; RSS ${fmt(r.rss, 0)} MB`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf("--measure");
  if (i >= 0) await report(await measure(process.argv[i + 1], Number(process.argv[i + 2])));
  else await partMain(startupBench);
}
