// WAL replay speed: a data dir holding ~200 MB of WAL (the soak's load, never cut into a block),
// then createApp in a fresh process, which replays it into the head. MB/s against the floor of
// reading the same segment files with readFileSync.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../server/app.ts";
import { benchConfig } from "./app-client.ts";
import { partMain, progress, report, runChild } from "./child.ts";
import { dirBytes } from "./disk.ts";
import { ROUND_MS, ServiceLoad } from "./load.ts";
import { fmt, mb, ms, type Table } from "./table.ts";

const WAL_MB = Number(process.env.HEARTH_WAL_MB ?? 200);
const TENANT = "anonymous";

/**
 * The WAL is what an ingester holds before its head is cut, so the head must not be cut while it
 * is written: no size cut, no compactor, and the process exits without close() (which flushes).
 */
function walConfig(dataDir: string) {
  const c = benchConfig(dataDir, "none");
  c.ingester.maxBlockBytes = 2 ** 40;
  c.compactor.enabled = false;
  return c;
}

async function generate(dataDir: string): Promise<{ profiles: number; walBytes: number; pprofBytes: number }> {
  const app = await createApp(walConfig(dataDir), () => {});
  const load = new ServiceLoad(50);
  const walDir = join(dataDir, TENANT, "wal");
  const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
  let round = 0;
  // The tenant directory appears with the first push.
  do await load.sendRound(app, round, start + round++ * ROUND_MS, 4);
  while (dirBytes(walDir) < WAL_MB * 1e6);
  return { profiles: round * load.perRound, walBytes: dirBytes(walDir), pprofBytes: load.bytesSent };
}

async function measure(dataDir: string) {
  const walDir = join(dataDir, TENANT, "wal");
  const readAll = () => {
    const t = performance.now();
    let n = 0;
    for (const name of readdirSync(walDir)) n += readFileSync(join(walDir, name)).length;
    return { sec: (performance.now() - t) / 1000, bytes: n };
  };
  const floor = readAll();
  const t = performance.now();
  const app = await createApp(walConfig(dataDir), () => {});
  const startSec = (performance.now() - t) / 1000;
  const rss = process.memoryUsage().rss / 1e6;
  return { floorSec: Math.min(floor.sec, readAll().sec), walBytes: floor.bytes, startSec, replay: app.replay, rss };
}

export async function walReplayBench(t: Table): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hearth-bench-wal-"));
  try {
    const g = await runChild<Awaited<ReturnType<typeof generate>>>("wal-replay.ts", ["--generate", dataDir]);
    progress(`wal replay: ${mb(g.walBytes)} of WAL from ${g.profiles} profiles`);
    const r = await runChild<Awaited<ReturnType<typeof measure>>>("wal-replay.ts", ["--measure", dataDir]);
    if (r.replay.records !== g.profiles) throw new Error(`replayed ${r.replay.records} records, ${g.profiles} were acknowledged`);
    const mbs = r.walBytes / 1e6;
    t.row(
      "WAL replay at start-up (createApp)",
      `${mb(r.walBytes)} WAL: ${g.profiles} profiles of the soak's load (${mb(g.pprofBytes)} of pprof)`,
      `${fmt(mbs / r.startSec, 1)} MB/s: ready in ${ms(r.startSec)}, RSS then ${fmt(r.rss, 0)} MB`,
      `${fmt(mbs / r.floorSec, 0)} MB/s readFileSync of the segments`,
      fmt(r.startSec / r.floorSec, 1),
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [mode, dir] = process.argv.slice(2);
  // Both report and exit at once: close() would cut the head into a block.
  if (mode === "--generate") {
    await report(await generate(dir));
    process.exit(0);
  } else if (mode === "--measure") {
    await report(await measure(dir));
    process.exit(0);
  } else await partMain(walReplayBench);
}
