// Soak: 50 services × 4 profile types every 10 s (load.ts), time compressed, over HTTP to the real
// app in a process of its own (soak-server.ts), whose RSS is the one reported: the load generator
// runs here, as clients would elsewhere. Profile time advances 10 s per round without sleeping. The ingester cuts
// heads by wall-clock age, so the soak flushes every simulated hour, as the age cut would; cuts by
// size and the compactor run as they would. RSS is sampled every simulated 5 minutes and reported
// per hour with the kernel's high-water mark (VmHWM), so peaks between samples count; the goal is
// that it stays under 256 MB (10^6 bytes each).
//
// By default the soak runs a whole simulated day (about 55 min on 2 cores), the measure.
// HEARTH_SOAK_BUDGET_S=<seconds> stops it after the last simulated hour that fits and says how
// many it covered, for quicker runs. For longer runs and investigations:
//   HEARTH_SOAK_HOURS, HEARTH_SOAK_SERVICES, HEARTH_SOAK_CONCURRENCY   the load
//   HEARTH_SOAK_MAX_BLOCK_MB   the ingester's maxBlockBytes
//   HEARTH_SOAK_COMPACTOR=0    compaction off (to tell its memory from the rest)
//   HEARTH_SOAK_IDLE_MS        idle per simulated minute (a real server at this load mostly idles)
//   HEARTH_SOAK_DIAG=1         the server's log; every 5 simulated minutes and after each flush, RSS
//                              before and after a full GC and 1 s of idle, the live heap, the head
//   HEARTH_SOAK_SNAPSHOT=dir   with DIAG, a heap snapshot whenever over 50 MB stays live after a flush
//   HEARTH_SOAK_LOG=1          only the server's log, with times (to line up with an RSS trace)
//   HEARTH_SOAK_KEEP=dir       the data dir to use and keep afterwards (for probing queries on it)
// Diagnostics change the run: the table's numbers are meant without them.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tenantDirs } from "../../storage/tenant-db.ts";
import { flush, overHttp, selectMergeTotal, type AppLike } from "./app-client.ts";
import { partMain, progress } from "./child.ts";
import { blockDirs, dirBytes } from "./disk.ts";
import { KIND, ROUND_MS, seedOf, ServiceLoad } from "./load.ts";
import { sumRows } from "./pprof-template.ts";
import { fmt, mb, ms, procRssMb, resetPeakRss, timeIt, timeOnce, type Table } from "./table.ts";

const env = process.env;
const SERVICES = Number(env.HEARTH_SOAK_SERVICES ?? 50);
const HOURS = Number(env.HEARTH_SOAK_HOURS ?? 24);
const BUDGET_S = Number(env.HEARTH_SOAK_BUDGET_S ?? Infinity);
const CONCURRENCY = Number(env.HEARTH_SOAK_CONCURRENCY ?? 4);
const DIAG = env.HEARTH_SOAK_DIAG === "1";
const IDLE_MS = Number(env.HEARTH_SOAK_IDLE_MS ?? 0);
const HOUR_MS = 3_600_000;
const ROUNDS_PER_HOUR = HOUR_MS / ROUND_MS;
const SAMPLE_EVERY = 30; // rounds: RSS every simulated 5 minutes
const RSS_GOAL_MB = 256;
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
/** The queried service: odd, so it sends the Java CPU profile (the larger one). */
const QUERY_SERVICE = 1;

export async function soak(t: Table): Promise<void> {
  const load = new ServiceLoad(SERVICES);
  const keep = env.HEARTH_SOAK_KEEP;
  if (keep) mkdirSync(keep, { recursive: true });
  const dataDir = keep ?? mkdtempSync(join(tmpdir(), "hearth-bench-soak-"));
  // Simulated time ends at the last full hour before now: a day of the past, as clients sent it.
  const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const start = end - HOURS * HOUR_MS;
  // The compactor plans by simulated time, as a real server's would by its clock: windows close
  // as the day goes on, rather than all counting as closed (the day is in the past).
  let simNow = start;
  const server = await SoakServer.start({
    dataDir,
    now: simNow,
    maxBlockBytes: env.HEARTH_SOAK_MAX_BLOCK_MB ? Number(env.HEARTH_SOAK_MAX_BLOCK_MB) * 2 ** 20 : undefined,
    compactor: env.HEARTH_SOAK_COMPACTOR !== "0",
    diag: DIAG || env.HEARTH_SOAK_LOG === "1",
    snapshotDir: env.HEARTH_SOAK_SNAPSHOT,
  });
  const app = server.app;
  const rss0 = server.memory().rss;
  t.row(
    `soak: ${SERVICES} services × 4 profile types every 10 s`,
    `${HOURS} h simulated; the server in its own process, over HTTP; WAL without fsync; ${CONCURRENCY} requests in flight; flush every simulated hour`,
    `RSS at start ${fmt(rss0, 0)} MB`,
  );
  let peak = rss0;
  let round = 0;
  let hours = 0;
  const byHour: number[] = [];
  const t0 = performance.now();
  try {
    while (hours < HOURS) {
      const hourStart = performance.now();
      let hourPeak = 0;
      resetPeakRss(server.pid);
      for (let r = 0; r < ROUNDS_PER_HOUR; r++, round++) {
        simNow = start + round * ROUND_MS;
        server.setNow(simNow);
        await load.sendRound(app, round, simNow, CONCURRENCY);
        // A real server at this load idles most of the time; HEARTH_SOAK_IDLE_MS gives it some.
        if (IDLE_MS > 0 && round % 6 === 5) await Bun.sleep(IDLE_MS);
        if (r % SAMPLE_EVERY === SAMPLE_EVERY - 1) {
          hourPeak = Math.max(hourPeak, server.memory().rss);
          if (DIAG) progress(`soak diag: round ${round + 1}: ${await server.diagnose()}; ${await headGauges(app)}`);
        }
      }
      const before = server.memory().rss;
      const f = await timeOnce(() => flush(app));
      const m = server.memory();
      // The kernel's high-water mark also sees the peaks between samples (block writes, compaction).
      hourPeak = Math.max(hourPeak, before, m.rss, Number.isNaN(m.peak) ? 0 : m.peak);
      peak = Math.max(peak, hourPeak);
      hours++;
      byHour.push(hourPeak);
      t.row(
        `  simulated hour ${hours}`,
        `${round} rounds, ${round * load.perRound} profiles, ${fmt((performance.now() - t0) / 1000, 0)} s`,
        `RSS peak ${fmt(hourPeak, 0)} MB, ${fmt(m.rss, 0)} MB after the flush`,
        `flush ${ms(f.sec)}`,
      );
      progress(`soak: hour ${hours}/${HOURS} in ${fmt((performance.now() - hourStart) / 1000, 1)} s, RSS peak ${fmt(hourPeak, 0)} MB, ${fmt(m.rss, 0)} MB after the flush`);
      if (DIAG) progress(`soak diag: ${await server.diagnose()}; ${await headGauges(app)}`);
      const elapsed = (performance.now() - t0) / 1000;
      if (hours < HOURS && elapsed + elapsed / hours > BUDGET_S) break;
    }
    const soakSec = (performance.now() - t0) / 1000;
    const simEnd = start + round * ROUND_MS;
    const profiles = round * load.perRound;
    t.row(
      "  soak result",
      `${hours} of ${HOURS} simulated hours in ${fmt(soakSec, 0)} s (${fmt((hours * 3600) / soakSec, 0)}× real time)`,
      `peak RSS ${fmt(peak, 0)} MB (goal < ${RSS_GOAL_MB} MB: ${peak < RSS_GOAL_MB ? "met" : "NOT met"}); peak by hour: ${byHour.map((x) => fmt(x, 0)).join(" ")}`,
      `${fmt(profiles / soakSec, 0)} profiles/s, ${mb(load.bytesSent / soakSec)}/s`,
    );

    let blocks = 0;
    let blockBytes = 0;
    for (const tenant of tenantDirs(dataDir)) {
      const dirs = blockDirs(join(dataDir, tenant, "blocks"));
      blocks += dirs.length;
      for (const d of dirs) blockBytes += dirBytes(d);
    }
    t.row(
      "  on disk after the soak",
      `${profiles} profiles, ${mb(load.bytesSent)} of uncompressed pprof`,
      `${blocks} blocks, ${mb(blockBytes)} in blocks, ${mb(dirBytes(dataDir))} in all`,
      `${fmt(blockBytes / profiles, 0)} B per profile`,
      `${fmt(blockBytes / load.bytesSent, 4)} of the pprof bytes`,
    );

    // One service's CPU: the last hour, and all the soak wrote (a day when it fit). Asked once
    // the compactor is done, so the time is the query's, not a merge's running beside it.
    resetPeakRss(server.pid);
    const settle = await timeOnce(() => server.settle());
    const settled = server.memory();
    t.row("  compaction settled", "merges left after the last flush", `${ms(settle.sec)}; RSS peak ${fmt(settled.peak, 0)} MB, ${fmt(settled.rss, 0)} MB after`);
    resetPeakRss(server.pid);
    const tp = load.cpuOf(QUERY_SERVICE);
    const selector = `{service_name="${load.names[QUERY_SERVICE]}"}`;
    for (const [label, from] of [
      ["1 h", simEnd - HOUR_MS],
      [`${hours} h`, start],
    ] as const) {
      const buf = new Float64Array(tp.base.length);
      const rows: { ids: Uint32Array; vals: Float64Array }[] = [];
      for (let r = Math.round((from - start) / ROUND_MS); r < round; r++) rows.push(tp.rows(tp.values(seedOf(QUERY_SERVICE, r, KIND.cpu), buf), 0));
      const expect = rows.reduce((a, r) => a + r.vals.reduce((x, y) => x + y, 0), 0);
      const floor = await timeIt(() => sumRows(rows, tp.stacks));
      const first = await timeOnce(() => selectMergeTotal(app, CPU, selector, from, simEnd - 1));
      // The answer must be the real one: nothing was lost, and the timing means something.
      if (first.value !== expect) throw new Error(`soak query ${label}: total ${first.value}, expected ${expect}`);
      const warm = await timeIt(() => selectMergeTotal(app, CPU, selector, from, simEnd - 1));
      t.row(
        `  SelectMergeStacktraces ${label}, one service`,
        `${load.names[QUERY_SERVICE]} Java CPU: ${rows.length} profiles × ${Math.round(rows.reduce((n, r) => n + r.ids.length, 0) / rows.length)} stacks`,
        `${ms(warm)} (first call ${ms(first.sec)})`,
        `${ms(floor)} typed-array sum`,
        fmt(warm / floor, 1),
      );
    }
    const queried = server.memory();
    // A server at this load idles between requests, and Bun returns freed memory when its loop does.
    await Bun.sleep(2000);
    t.row("  RSS after the queries", "", `${fmt(queried.rss, 0)} MB (peak during them ${fmt(queried.peak, 0)} MB); ${fmt(server.memory().rss, 0)} MB after 2 s idle`);
  } finally {
    await server.close();
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The head gauges of /metrics, for diagnostics. */
async function headGauges(app: AppLike): Promise<string> {
  const text = await (await app.http.fetch(new Request("http://bench/metrics"))).text();
  const get = (name: string) => Number(text.split("\n").find((l) => l.startsWith(name + "{"))?.split(" ").pop() ?? NaN);
  return `head ${mb(get("hearth_head_bytes"))} accounted, ${get("hearth_head_series")} series`;
}

/** soak-server.ts in a child process, spoken to over HTTP (requests) and IPC (clock, diagnostics). */
class SoakServer {
  private constructor(
    private readonly proc: Bun.Subprocess,
    readonly app: AppLike,
    /** Callers waiting for a diagnosis, in the order they asked. */
    private readonly replies: ((text: string) => void)[],
    /** Callers waiting for compaction to settle. */
    private readonly settles: (() => void)[],
  ) {}

  static async start(args: object): Promise<SoakServer> {
    const port = Promise.withResolvers<number>();
    const replies: ((text: string) => void)[] = [];
    const settles: (() => void)[] = [];
    const path = new URL("./soak-server.ts", import.meta.url).pathname;
    const proc = Bun.spawn([process.execPath, path, JSON.stringify(args)], {
      stdout: "inherit",
      stderr: "inherit",
      ipc: (m: { port?: number; diag?: string; settled?: boolean }) => {
        if (m.port !== undefined) port.resolve(m.port);
        if (m.diag !== undefined) replies.shift()?.(m.diag);
        if (m.settled) settles.shift()?.();
      },
    });
    void proc.exited.then((code) => port.reject(new Error(`soak server exited with status ${code} before it listened`)));
    return new SoakServer(proc, overHttp(`http://127.0.0.1:${await port.promise}`), replies, settles);
  }

  get pid(): number {
    return this.proc.pid;
  }

  memory(): { rss: number; peak: number } {
    return procRssMb(this.proc.pid);
  }

  setNow(now: number): void {
    this.proc.send({ now });
  }

  diagnose(): Promise<string> {
    return new Promise((resolve) => {
      this.replies.push(resolve);
      this.proc.send({ diag: true });
    });
  }

  /** Resolves once the server's compactor has nothing left to merge. */
  settle(): Promise<void> {
    return new Promise((resolve) => {
      this.settles.push(resolve);
      this.proc.send({ settle: true });
    });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.send({ close: true });
    const code = await this.proc.exited;
    if (code !== 0) throw new Error(`soak server exited with status ${code}`);
  }
}

if (import.meta.main) await partMain(soak);
