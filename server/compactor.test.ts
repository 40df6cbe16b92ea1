// The compactor's queue: settle() merges until nothing is left to merge, answers unchanged.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type App } from "./app.ts";
import { defaultConfig } from "./config.ts";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5);
let now = T0;
let app: App;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hearth-compactor-"));
  const cfg = defaultConfig();
  cfg.dataDir = dir;
  cfg.limits.rejectOlderThan = 0;
  // Only settle() compacts here: the timer would not fire within the test anyway.
  cfg.compactor.interval = 24 * HOUR;
  app = await createApp(cfg, () => {}, { now: () => now });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const blockCount = () => readdirSync(join(dir, "anonymous", "blocks")).filter((d) => !d.includes(".")).length;

async function total(): Promise<number> {
  const q = new URLSearchParams({ query: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="app"}', from: String(T0 - 60_000), until: String(T0 + 6 * HOUR), format: "json" });
  const r = await app.http.fetch(new Request(`http://x/pyroscope/render?${q}`));
  if (r.status !== 200) throw new Error(`render: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { flamebearer: { numTicks: number } }).flamebearer.numTicks;
}

describe("compactor.settle", () => {
  test("merges in as many passes as it takes, then nothing is left; answers are unchanged", async () => {
    // 20 blocks over 5 hours (one per 15 minutes), more than one pass merges (at most 4 each).
    let sent = 0;
    for (let k = 0; k < 20; k++) {
      const t = T0 / 1000 + k * 900;
      const v = k + 1;
      const r = await app.http.fetch(new Request(`http://x/ingest?name=app.cpu&from=${t}&until=${t + 10}&format=folded`, { method: "POST", body: `main;work ${v}\nmain;idle 1\n` }));
      expect(r.status).toBe(200);
      // Folded samples at the default 100 Hz: 10 ms of CPU each.
      sent += (v + 1) * 1e7;
      expect((await app.http.fetch(new Request("http://x/ingester/flush", { method: "POST" }))).status).toBe(200);
    }
    expect(blockCount()).toBe(20);
    expect(await total()).toBe(sent);

    // Two days later every window is closed: the blocks merge up to day blocks.
    now = T0 + 48 * HOUR;
    await app.compactor.settle();
    expect(blockCount()).toBe(1);
    expect(await total()).toBe(sent);
    // Settled means another pass finds nothing to merge.
    expect((await app.compactor.compact()).size).toBe(0);
    expect(blockCount()).toBe(1);
  });
});
