// The store-gateway role with its uploader: when a bucket is configured, finished blocks are
// shipped to it, local copies of uploaded blocks are dropped after a while, retention applies to
// the bucket too, and queries read the bucket's blocks through a bounded local cache.

import { join } from "node:path";
import { BlockCache } from "../storage/block/block-cache.ts";
import { PROFILES_FILE } from "../storage/block/schema.ts";
import { RangeCache } from "../storage/bucket/range-cache.ts";
import type { ProfileReader } from "../storage/head/read.ts";
import type { Bucket } from "../storage/bucket/bucket.ts";
import { prefixed } from "../storage/bucket/bucket.ts";
import { FsBucket } from "../storage/bucket/fs-bucket.ts";
import { S3Bucket } from "../storage/bucket/s3-bucket.ts";
import { ulidTime } from "../storage/block/meta.ts";
import { planRetention, retentionBlock } from "../storage/retention.ts";
import type { Catalog } from "../storage/catalog.ts";
import { Shipper } from "../storage/shipper.ts";
import { StoreGateway } from "../storage/store-gateway.ts";
import { supersededBlocks, type TenantDB } from "../storage/tenant-db.ts";
import type { Config } from "./config.ts";
import type { TenantSettingsSource } from "./overrides.ts";

export interface StoreGatewayRole {
  /** The bucket's blocks for a tenant, minus those `local` already serves (by ULID or sources). */
  readers(tenant: string, local: TenantDB | undefined): ProfileReader[];
  tenants(): string[];
  /** One upload + list refresh + local clean-up pass. */
  sync(): Promise<void>;
  stats(): { uploadLagMs: number; uploadErrors: number; uploadedBlocks: number; cacheBytes: number; rangeCacheBytes: number; rangeFetchedBytes: number };
  close(): Promise<void>;
}

export async function openBucket(config: Config): Promise<Bucket> {
  const st = config.storage;
  let bucket: Bucket;
  if (st.backend === "s3") {
    bucket = new S3Bucket({
      endpoint: st.s3.endpoint || undefined,
      region: st.s3.region || undefined,
      bucket: st.s3.bucket || undefined,
      virtualHostedStyle: st.s3.virtualHostedStyle,
      accessKeyId: st.s3.accessKeyId,
      secretAccessKey: st.s3.secretAccessKey,
    });
  } else if (st.backend === "filesystem") {
    if (!st.filesystem.dir) throw new Error("storage.filesystem.dir must be set with storage.backend filesystem");
    bucket = await FsBucket.open(st.filesystem.dir);
  } else throw new Error("no bucket configured");
  return st.prefix ? prefixed(bucket, st.prefix.replace(/\/+$/, "")) : bucket;
}

export async function createStoreGateway(deps: {
  config: Config;
  /** The ingester's tenants; undefined in read-only mode. */
  tenants: (() => Map<string, TenantDB>) | undefined;
  settings: TenantSettingsSource;
  /** The data dir's block catalog, told which blocks the bucket holds after each sync. */
  catalog?: Catalog | null;
  log: (msg: string) => void;
}): Promise<StoreGatewayRole> {
  const { config, settings, log } = deps;
  const st = config.storage;
  const bucket = await openBucket(config);
  // Index and symbols are cached on disk; profiles.parquet is read by range, only the row groups a query needs.
  const cache = await BlockCache.open(st.cacheDir || join(config.dataDir, "bucket-cache"), { maxBytes: st.cacheMaxBytes, remoteFiles: new Set([PROFILES_FILE]), log });
  const ranges = new RangeCache();
  const gateway = new StoreGateway(bucket, cache, { log, ranges });
  const shippers = new Map<string, Shipper>();
  const shipperFor = (tenant: string) => {
    let s = shippers.get(tenant);
    if (!s) {
      s = new Shipper(bucket, tenant, join(config.dataDir, tenant, "blocks"), { log });
      shippers.set(tenant, s);
    }
    return s;
  };

  async function syncOnce() {
    const local = deps.tenants?.() ?? new Map<string, TenantDB>();
    for (const [tenant] of local) {
      const r = await shipperFor(tenant).sync();
      if (r.failed.length) log(`store-gateway: tenant ${tenant}: ${r.failed.length} block(s) failed to upload; retrying next sync`);
    }
    await gateway.sync();
    if (deps.tenants) {
      const now = Date.now();
      let deleted = false;
      // Retention applies to the bucket too (local blocks are handled by the compactor).
      for (const tenant of gateway.tenants()) {
        const s = settings.overridesFor(tenant);
        const plan = planRetention(gateway.metas(tenant).map((m) => retentionBlock(m, tenant)), { now, retentionMs: s.retention, maxBytes: 0 });
        for (const ulid of plan.delete) {
          log(`store-gateway: tenant ${tenant}: deleting block ${ulid} from the bucket (retention)`);
          await shipperFor(tenant).deleteRemote(ulid);
          deleted = true;
        }
      }
      // Blocks a compaction superseded leave the bucket once the compacted block has been there for
      // two syncs: a read-only peer has by then listed it and stopped reading the sources.
      const delay = 2 * st.syncInterval;
      for (const tenant of gateway.allTenants()) {
        const settled = gateway.allMetas(tenant).filter((m) => m.compaction.level <= 1 || now - ulidTime(m.ulid) >= delay);
        for (const ulid of supersededBlocks(settled)) {
          log(`store-gateway: tenant ${tenant}: deleting block ${ulid} from the bucket (superseded by a compacted block)`);
          await shipperFor(tenant).deleteRemote(ulid);
          deleted = true;
        }
      }
      // Local copies of blocks the bucket serves are dropped once old enough.
      if (st.localRetention > 0) {
        for (const [tenant, db] of local) {
          const drop = db
            .blockMetas()
            .filter((m) => shipperFor(tenant).isUploaded(m.ulid) && gateway.has(tenant, m.ulid) && now - ulidTime(m.ulid) > st.localRetention)
            .map((m) => m.ulid);
          if (drop.length) await db.deleteBlocks(drop);
        }
      }
      // Deleting remote blocks changes the bucket's list; refresh so queries stop seeing them.
      if (deleted) await gateway.sync();
    }
    recordInCatalog();
  }

  function recordInCatalog() {
    const catalog = deps.catalog;
    if (!catalog) return;
    try {
      for (const tenant of new Set([...catalog.tenants(), ...gateway.allTenants()])) catalog.syncBucket(tenant, gateway.allMetas(tenant));
    } catch (e) {
      log(`store-gateway: the block catalog missed the bucket's list: ${e instanceof Error ? e.message : e}`);
    }
  }

  let running: Promise<void> = Promise.resolve();
  let closed = false;
  const sync = () => {
    const next = running.then(syncOnce);
    running = next.catch((e) => log(`store-gateway: sync failed: ${e instanceof Error ? e.message : e}`));
    return next;
  };
  await sync().catch(() => {});
  const timer = setInterval(() => {
    if (!closed) void sync().catch(() => {});
  }, st.syncInterval);
  timer.unref?.();

  return {
    readers(tenant, local) {
      const exclude = new Set<string>();
      for (const m of local?.blockMetas() ?? []) {
        exclude.add(m.ulid);
        for (const s of m.compaction.sources) exclude.add(s);
      }
      return gateway.readers(tenant, exclude);
    },
    tenants: () => gateway.tenants(),
    sync,
    stats() {
      let lag = 0;
      let errors = 0;
      let uploaded = 0;
      for (const s of shippers.values()) {
        lag = Math.max(lag, s.lag());
        errors += s.uploadErrors;
        uploaded += s.uploadedBlocks;
      }
      return { uploadLagMs: lag, uploadErrors: errors, uploadedBlocks: uploaded, cacheBytes: cache.bytes, rangeCacheBytes: ranges.bytes, rangeFetchedBytes: ranges.fetchedBytes };
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
      if (deps.tenants) await syncOnce().catch((e) => log(`store-gateway: final upload failed: ${e instanceof Error ? e.message : e}`));
      for (const s of shippers.values()) await s.close();
      await gateway.close();
      bucket.close?.();
    },
  };
}
