// Bytes on disk per ingested profile, as a ratio to the gzipped pprof bytes received: the Go CPU and
// the Java fixtures, each sent as one service every 10 s for a simulated day (8,640 profiles) with
// values of their own, gzipped as clients send them. Flushed every simulated hour (24 blocks of
// level 1), then merged into one day block as the compactor would. Goal: ≤ 0.25.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../server/app.ts";
import { compactBlocks } from "../../storage/compact.ts";
import { benchConfig, flush, ingest, pool } from "./app-client.ts";
import { partMain, progress } from "./child.ts";
import { blockDirs, dirBytes } from "./disk.ts";
import { loadFixture, PprofTemplate } from "./pprof-template.ts";
import { fmt, mb, type Table } from "./table.ts";

const PROFILES_PER_HOUR = 360;
const HOURS = Number(process.env.HEARTH_BYTES_HOURS ?? 24);
const GOAL = 0.25;

async function bytesPerProfile(t: Table, fixture: string, what: string): Promise<void> {
  const tp = PprofTemplate.from(loadFixture(fixture), { durationNanos: 10e9 });
  const dir = mkdtempSync(join(tmpdir(), "hearth-bench-bytes-"));
  const config = benchConfig(dir, "none");
  // Blocks are merged below, once, so the sizes do not depend on when the compactor's timer fires.
  config.compactor.enabled = false;
  const app = await createApp(config, () => {});
  const t0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - HOURS * 3_600_000;
  let received = 0;
  const n = HOURS * PROFILES_PER_HOUR;
  try {
    for (let h = 0; h < HOURS; h++) {
      await pool(PROFILES_PER_HOUR, 4, (i) => {
        const p = h * PROFILES_PER_HOUR + i;
        const gz = Bun.gzipSync(tp.body(tp.values(p), t0 + p * 10_000));
        received += gz.length;
        return ingest(app, "bench-bytes", gz);
      });
      await flush(app);
    }
  } finally {
    await app.close();
  }
  try {
    const blocksDir = join(dir, "anonymous", "blocks");
    const hourly = blockDirs(blocksDir);
    const hourlyBytes = hourly.reduce((a, d) => a + dirBytes(d), 0);
    const day = await compactBlocks(hourly, blocksDir);
    const dayBytes = dirBytes(join(blocksDir, day.ulid));
    if (day.stats.numProfiles !== n * tp.k) throw new Error(`${fixture}: the day block holds ${day.stats.numProfiles} profiles, expected ${n * tp.k}`);
    const input = `${what} (${fixture}) × ${n}, ${fmt(received / n, 0)} B gzipped each`;
    const verdict = (r: number) => `${fmt(r, 4)} (goal ≤ ${GOAL}: ${r <= GOAL ? "met" : "NOT met"})`;
    t.row(`bytes on disk per profile, ${HOURS} hourly blocks`, input, `${fmt(hourlyBytes / n, 1)} B per profile, ${mb(hourlyBytes)} in ${hourly.length} blocks`, `${mb(received)} gzipped pprof received`, verdict(hourlyBytes / received));
    t.row(`  the same merged into one block`, "", `${fmt(dayBytes / n, 1)} B per profile, ${mb(dayBytes)}`, "", verdict(dayBytes / received));
    progress(`bytes per profile: ${fixture} done`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bytesBench(t: Table): Promise<void> {
  await bytesPerProfile(t, "cpu.pb.gz", "Go CPU");
  await bytesPerProfile(t, "profile_java", "Java CPU");
}

if (import.meta.main) await partMain(bytesBench);
