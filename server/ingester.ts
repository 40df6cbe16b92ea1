// The ingester: one TenantDB (head + WAL + blocks) per tenant. A push is acknowledged only once
// its records are durable in the WAL. Heads are cut into blocks by age and by size, on flush,
// and at shutdown. One block catalog (data/catalog.sqlite) serves every tenant.

import { join } from "node:path";
import { Catalog } from "../storage/catalog.ts";
import type { HeadStats } from "../storage/head/head.ts";
import type { ProfileReader } from "../storage/head/read.ts";
import type { Labels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";
import { TenantDB, tenantDirs } from "../storage/tenant-db.ts";
import { ApiError } from "./errors.ts";

export interface IngestItem {
  labels: Labels;
  profile: Profile;
}

export interface IngesterConfig {
  dataDir: string;
  walFsync: "always" | "none";
  walSegmentBytes: number;
  /** Cut a head into a block once it is this old (ms). */
  maxBlockDuration: number;
  /** Cut a head into a block once it holds about this many bytes. */
  maxBlockBytes: number;
}

export interface Ingester {
  /** Appends to the tenant's WAL, then to its head; resolves once durable. */
  push(tenant: string, items: IngestItem[]): Promise<void>;
  /** Cuts every head into a block and answers once they are durable. */
  flush(): Promise<void>;
  readers(tenant: string): ProfileReader[];
  /** Each tenant's storage, for the compactor. */
  tenantDBs(): Map<string, TenantDB>;
  stats(): Map<string, HeadStats & { blocks: number }>;
  /** The data dir's block catalog (null for a read-only process). */
  readonly catalog: Catalog | null;
  close(): Promise<void>;
}

export interface ReplayStats {
  tenants: number;
  records: number;
  bytes: number;
  blocks: number;
  quarantined: number;
  ms: number;
}

export async function createIngester(cfg: IngesterConfig, log: (msg: string) => void = console.log): Promise<Ingester & { replay: ReplayStats }> {
  const tenants = new Map<string, TenantDB>();
  const opening = new Map<string, Promise<TenantDB>>();
  let closed = false;
  const t0 = performance.now();
  const catalog = Catalog.open(cfg.dataDir, { log });
  const opts = { walFsync: cfg.walFsync, walSegmentBytes: cfg.walSegmentBytes, log, catalog };

  const replay: ReplayStats = { tenants: 0, records: 0, bytes: 0, blocks: 0, quarantined: 0, ms: 0 };
  for (const tenant of tenantDirs(cfg.dataDir)) {
    const { db, stats } = await TenantDB.open(join(cfg.dataDir, tenant), opts);
    tenants.set(tenant, db);
    replay.tenants++;
    replay.records += stats.replayedRecords;
    replay.bytes += stats.replayedBytes;
    replay.blocks += stats.blocks;
    replay.quarantined += stats.quarantined;
  }
  replay.ms = performance.now() - t0;

  async function tenantDB(tenant: string): Promise<TenantDB> {
    const have = tenants.get(tenant);
    if (have) return have;
    let p = opening.get(tenant);
    if (!p) {
      p = TenantDB.open(join(cfg.dataDir, tenant), opts).then(({ db }) => {
        tenants.set(tenant, db);
        opening.delete(tenant);
        return db;
      });
      opening.set(tenant, p);
    }
    return p;
  }

  function cutInBackground(tenant: string, db: TenantDB, why: string) {
    db.cut().catch((e) => log(`ingester: tenant ${tenant}: cutting the head (${why}) failed: ${e instanceof Error ? e.message : e}`));
  }

  // Age-based cuts: checked often enough that a head is cut within a few percent of its age.
  const every = Math.max(1000, Math.min(10_000, cfg.maxBlockDuration / 20));
  const timer = setInterval(() => {
    for (const [tenant, db] of tenants) if (db.headStats().rows > 0 && db.headAgeMs() >= cfg.maxBlockDuration) cutInBackground(tenant, db, "age");
  }, every);
  timer.unref?.();

  return {
    replay,
    catalog,
    async push(tenant, items) {
      if (closed) throw new Error("ingester is closed");
      const db = await tenantDB(tenant);
      await db.append(tenant, items);
      if (db.headStats().bytes >= cfg.maxBlockBytes) cutInBackground(tenant, db, "size");
    },
    async flush() {
      await Promise.all([...tenants.values()].map((db) => db.cut()));
    },
    readers(tenant) {
      return tenants.get(tenant)?.readers() ?? [];
    },
    tenantDBs() {
      return tenants;
    },
    stats() {
      const out = new Map<string, HeadStats & { blocks: number }>();
      for (const [t, db] of tenants) out.set(t, { ...db.headStats(), blocks: db.blockCount() });
      return out;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await Promise.all([...opening.values()]);
      for (const db of tenants.values()) await db.close();
      // Last: closing a tenant may still record the blocks its final cut wrote.
      catalog.close();
    },
  };
}

/**
 * The ingester of a read-only process (storage.read_only): it holds nothing and refuses writes
 * with a clear error, so such a process only serves what the bucket holds.
 */
export function createReadOnlyIngester(): Ingester & { replay: ReplayStats } {
  const empty = new Map<string, TenantDB>();
  return {
    replay: { tenants: 0, records: 0, bytes: 0, blocks: 0, quarantined: 0, ms: 0 },
    async push() {
      throw new ApiError("permission_denied", "this Hearth is read-only (storage.read_only): send profiles to the instance that writes the bucket");
    },
    async flush() {},
    readers: () => [],
    tenantDBs: () => empty,
    stats: () => new Map(),
    catalog: null,
    async close() {},
  };
}
