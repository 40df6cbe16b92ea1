// Composition root: opens storage, then builds the roles in flow order (ingester → distributor →
// querier) and the HTTP app; closes them in reverse.

import type { Hono } from "hono";
import pkg from "../package.json" with { type: "json" };
import type { Config } from "./config.ts";
import { createCompactor } from "./compactor.ts";
import { createDistributor } from "./distributor.ts";
import { createHttpApp } from "./http.ts";
import { createIngester, type ReplayStats } from "./ingester.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { openOverrides } from "./overrides.ts";
import { createQuerier } from "./querier.ts";

export interface App {
  http: Hono;
  metrics: Metrics;
  replay: ReplayStats;
  close(): Promise<void>;
}

export async function createApp(config: Config, log: (msg: string) => void = console.log): Promise<App> {
  const metrics = createMetrics();
  const ingester = await createIngester(
    {
      dataDir: config.dataDir,
      walFsync: config.ingester.walFsync,
      walSegmentBytes: config.ingester.walSegmentBytes,
      maxBlockDuration: config.ingester.maxBlockDuration,
      maxBlockBytes: config.ingester.maxBlockBytes,
    },
    log,
  );
  metrics.headSeries.setCollector((g) => {
    for (const [tenant, st] of ingester.stats()) g.set({ tenant }, st.series);
  });
  metrics.headBytes.setCollector((g) => {
    for (const [tenant, st] of ingester.stats()) g.set({ tenant }, st.bytes);
  });
  const settings = openOverrides(config, log);
  const compactor = createCompactor({ config, tenants: () => ingester.tenantDBs(), settings, log });
  const distributor = createDistributor({ ingester, limits: config.limits, metrics });
  const querier = createQuerier({
    readers: (tenants) => tenants.flatMap((t) => ingester.readers(t)),
    limits: config.limits,
  });
  const http = createHttpApp({
    config,
    distributor,
    ingester,
    querier,
    metrics,
    isReady: () => true,
    version: { version: pkg.version, revision: process.env.HEARTH_REVISION ?? "", branch: "main" },
  });
  return {
    http,
    metrics,
    replay: ingester.replay,
    async close() {
      await compactor.close();
      settings.close();
      await ingester.flush();
      await ingester.close();
    },
  };
}
