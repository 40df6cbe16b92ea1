// The soak's server: the real app behind Bun.serve on 127.0.0.1, in a process of its own, so the
// RSS the soak reports is the server's alone (not the load generator's templates and request
// garbage). It differs from `npm start` in two ways only: the bench config (no ingest time window,
// no rate limit, WAL without fsync) and a clock the parent sets over IPC, so the compactor plans by
// simulated time as a real server would by its own.
//
// argv: JSON {dataDir, now, maxBlockBytes?, compactor?, diag?, snapshotDir?}. Messages in: {now}, {diag: true}
// (answers {diag: text}), {settle: true} (compacts until nothing is left to merge, answers
// {settled: true}), {close: true} (flushes, closes, exits 0). Message out first: {port}.

import { fullGC, heapStats } from "bun:jsc";
import { join } from "node:path";
import { createApp } from "../../server/app.ts";
import { benchConfig } from "./app-client.ts";

interface SoakServerArgs {
  dataDir: string;
  now: number;
  maxBlockBytes?: number;
  compactor?: boolean;
  diag?: boolean;
  snapshotDir?: string;
}

const args = JSON.parse(process.argv[2] ?? "{}") as SoakServerArgs;
const config = benchConfig(args.dataDir, "none");
if (args.maxBlockBytes) config.ingester.maxBlockBytes = args.maxBlockBytes;
if (args.compactor === false) config.compactor.enabled = false;

let simNow = args.now;
const log = args.diag ? (m: string) => process.stderr.write(`  [soak-server] ${(performance.timeOrigin + performance.now()) / 1000} ${m}\n`) : () => {};
const app = await createApp(config, log, { now: () => simNow });
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  // As server/main.ts sizes it.
  maxRequestBodySize: Math.max(config.limits.ingestionBodyLimitBytes, 1 << 20) + (1 << 20),
  fetch: (req) => app.http.fetch(req),
});

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

/** What is live after a full GC against RSS: tells retained garbage from retained data. */
async function diagnose(): Promise<string> {
  const before = process.memoryUsage().rss;
  fullGC();
  const collected = process.memoryUsage().rss;
  // Memory freed by a collection reaches the OS only later: finalizers run on the next tick, the
  // allocator returns pages after a delay.
  await Bun.sleep(1000);
  const h = heapStats();
  const top = Object.entries(h.objectTypeCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  let snap = "";
  if (args.snapshotDir && h.heapSize > 50e6) {
    const path = join(args.snapshotDir, `soak-${Date.now()}.heapsnapshot`);
    await Bun.write(path, Bun.generateHeapSnapshot("v8"));
    snap = `; heap snapshot ${path}`;
  }
  return (
    `RSS ${mb(before)} MB, after a full GC ${mb(collected)} MB, 1 s later ${mb(process.memoryUsage().rss)} MB; JS heap ${mb(h.heapSize)} MB ` +
    `(capacity ${mb(h.heapCapacity)}), extra ${mb(h.extraMemorySize)} MB; ${top}${snap}`
  );
}

process.on("message", (m: { now?: number; diag?: boolean; settle?: boolean; close?: boolean }) => {
  if (m.now !== undefined) simNow = m.now;
  if (m.diag) void diagnose().then((text) => process.send!({ diag: text }));
  if (m.settle) void app.compactor.settle().then(() => process.send!({ settled: true }));
  if (m.close) {
    void (async () => {
      await server.stop();
      await app.close();
      process.exit(0);
    })();
  }
});
process.send!({ port: server.port });
