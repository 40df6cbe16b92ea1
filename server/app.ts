// Composition root: opens storage, then builds the roles in flow order (ingester → compactor →
// store-gateway → distributor → querier) and the HTTP app; closes them in reverse.

import type { Hono } from "hono";
import pkg from "../package.json" with { type: "json" };
import type { Config } from "./config.ts";
import { createCompactor, type Compactor } from "./compactor.ts";
import { createDistributor } from "./distributor.ts";
import { createHttpApp } from "./http.ts";
import { createIngester, createReadOnlyIngester, type ReplayStats } from "./ingester.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { openOverrides } from "./overrides.ts";
import { createQuerier } from "./querier.ts";
import { HeapGovernor } from "./heap-governor.ts";
import { onStorageReleased, onStorageStep } from "../storage/storage-step.ts";
import { createStoreGateway, type StoreGatewayRole } from "./store-gateway.ts";

export interface App {
  http: Hono;
  metrics: Metrics;
  compactor: Compactor;
  replay: ReplayStats;
  close(): Promise<void>;
}

export interface AppOptions {
  /** The clock retention and compaction plan by (ms since the epoch); benches simulating a past day pass theirs. */
  now?: () => number;
}

export async function createApp(config: Config, log: (msg: string) => void = console.log, opts: AppOptions = {}): Promise<App> {
  const metrics = createMetrics();
  const heap = new HeapGovernor();
  onStorageStep(() => heap.pokeStorage());
  onStorageReleased(() => heap.collectNow());
  metrics.registry.gauge({ name: "hearth_heap_collections", help: "Full garbage collections forced to keep the JS heap near its live size, since start.", collect: (m) => m.set({}, heap.collections) });
  metrics.registry.gauge({ name: "hearth_heap_collection_seconds", help: "Time spent in those collections since start.", collect: (m) => m.set({}, heap.collectMs / 1000) });
  const readOnly = config.storage.readOnly;
  if (readOnly && config.storage.backend === "none") throw new Error("storage.read_only needs a bucket (storage.backend s3 or filesystem)");
  const ingester = readOnly ? createReadOnlyIngester() : await createIngester(
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
  const compactor = createCompactor({ config, tenants: () => ingester.tenantDBs(), settings, log, now: opts.now });
  let gateway: StoreGatewayRole | null = null;
  if (config.storage.backend !== "none") {
    gateway = await createStoreGateway({ config, tenants: readOnly ? undefined : () => ingester.tenantDBs(), settings, catalog: ingester.catalog, log });
    const g = gateway;
    metrics.registry.gauge({ name: "hearth_bucket_upload_lag_seconds", help: "Age of the oldest finished block not yet uploaded to the bucket.", collect: (m) => m.set({}, g.stats().uploadLagMs / 1000) });
    metrics.registry.gauge({ name: "hearth_bucket_upload_errors", help: "Block uploads that failed since start (each is retried).", collect: (m) => m.set({}, g.stats().uploadErrors) });
    metrics.registry.gauge({ name: "hearth_bucket_uploaded_blocks", help: "Blocks uploaded to the bucket since start.", collect: (m) => m.set({}, g.stats().uploadedBlocks) });
    metrics.registry.gauge({ name: "hearth_bucket_cache_bytes", help: "Bytes of bucket blocks cached locally.", collect: (m) => m.set({}, g.stats().cacheBytes) });
    metrics.registry.gauge({ name: "hearth_bucket_range_cache_bytes", help: "Bytes of profiles.parquet pages read from the bucket and kept in memory.", collect: (m) => m.set({}, g.stats().rangeCacheBytes) });
    metrics.registry.gauge({ name: "hearth_bucket_range_fetched_bytes", help: "Bytes of profiles.parquet read from the bucket by range since start.", collect: (m) => m.set({}, g.stats().rangeFetchedBytes) });
  }
  const distributor = createDistributor({ ingester, limits: config.limits, tenantLimits: settings.overridesFor, metrics, afterIngest: () => heap.poke() });
  const querier = createQuerier({
    readers: (tenants) => tenants.flatMap((t) => [...ingester.readers(t), ...(gateway?.readers(t, ingester.tenantDBs().get(t)) ?? [])]),
    limits: config.limits,
  });
  const http = createHttpApp({
    config,
    distributor,
    ingester,
    querier,
    compactor,
    metrics,
    isReady: () => true,
    afterQuery: () => heap.poke(),
    version: { version: pkg.version, revision: process.env.HEARTH_REVISION ?? "", branch: "main" },
  });
  return {
    http,
    metrics,
    compactor,
    replay: ingester.replay,
    async close() {
      await compactor.close();
      await ingester.flush();
      // After the flush, so the blocks just cut are uploaded before the process goes.
      await gateway?.close();
      settings.close();
      await ingester.close();
      heap.close();
      onStorageStep(null);
    },
  };
}
