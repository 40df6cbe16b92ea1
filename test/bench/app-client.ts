// The real app, in-process, as the benchmarks drive it: requests go through app.http.fetch (Hono
// routing, body parsing, decode, distributor, ingester) without a socket.

import { createApp, type App } from "../../server/app.ts";
import { defaultConfig, type Config } from "../../server/config.ts";

/**
 * Config for a bench data dir. Time-compressed load sends timestamps far from the wall clock, so
 * the ingest time window limits are off.
 */
export function benchConfig(dataDir: string, walFsync: "always" | "none" = "none"): Config {
  const c = defaultConfig();
  c.dataDir = dataDir;
  c.ingester.walFsync = walFsync;
  c.limits.rejectOlderThan = 0;
  c.limits.rejectNewerThan = 0;
  // The bench sends a day in minutes: far over any per-tenant rate a real client would need.
  c.limits.ingestionRateMb = 0;
  return c;
}

/** What the request helpers below need: the app in-process, or a server behind a socket (overHttp). */
export interface AppLike {
  http: { fetch(req: Request): Response | Promise<Response> };
}

/** A server in another process, as AppLike: each request goes to base (http://127.0.0.1:port) instead. */
export function overHttp(base: string): AppLike {
  return {
    http: {
      fetch: async (req) => {
        const u = new URL(req.url);
        const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
        return fetch(base + u.pathname + u.search, { method: req.method, headers: req.headers, body });
      },
    },
  };
}

export function openApp(dataDir: string, walFsync: "always" | "none" = "none", tweak: (c: Config) => void = () => {}): Promise<App> {
  const c = benchConfig(dataDir, walFsync);
  tweak(c);
  return createApp(c, () => {});
}

/** POST /ingest of one pprof body; throws unless the app answers 200. */
export async function ingest(app: AppLike, name: string, body: Uint8Array<ArrayBuffer>): Promise<void> {
  const r = await app.http.fetch(new Request(`http://bench/ingest?format=pprof&name=${encodeURIComponent(name)}`, { method: "POST", body }));
  if (r.status !== 200) throw new Error(`ingest ${name}: ${r.status} ${await r.text()}`);
}

/** POST /ingester/flush: every head cut into a block before it answers. */
export async function flush(app: AppLike): Promise<void> {
  const r = await app.http.fetch(new Request("http://bench/ingester/flush", { method: "POST" }));
  if (r.status !== 200) throw new Error(`flush: ${r.status} ${await r.text()}`);
}

/** SelectMergeStacktraces as Grafana calls it (Connect JSON); returns the flamegraph total. */
export async function selectMergeTotal(app: AppLike, profileTypeID: string, labelSelector: string, start: number, end: number): Promise<number> {
  const r = await app.http.fetch(
    new Request("http://bench/querier.v1.QuerierService/SelectMergeStacktraces", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profileTypeID, labelSelector, start, end }),
    }),
  );
  if (r.status !== 200) throw new Error(`SelectMergeStacktraces: ${r.status} ${await r.text()}`);
  const json = (await r.json()) as { flamegraph?: { total?: string | number } };
  return Number(json.flamegraph?.total ?? 0);
}

/**
 * Runs job(0..count-1) with `concurrency` in flight, each request its own event-loop task as it
 * is behind a socket: a loop of bare awaits is one microtask chain, and timers and setImmediate
 * (the block writer yields with it) would never run.
 */
export async function pool(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      await job(i);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
