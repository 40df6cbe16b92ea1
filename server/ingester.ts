// The ingester: one head per tenant behind a write-ahead log. A push is acknowledged only once its
// records are durable in the WAL; start-up replays every tenant's WAL into a fresh head.

import { mkdirSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Head, type HeadStats } from "../storage/head/head.ts";
import { HeadReader, type ProfileReader } from "../storage/head/read.ts";
import { decodeRecords, encodeRecords } from "../storage/head/record.ts";
import { WAL } from "../storage/head/wal.ts";
import type { Labels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";

export interface IngestItem {
  labels: Labels;
  profile: Profile;
}

export interface IngesterConfig {
  dataDir: string;
  walFsync: "always" | "none";
  walSegmentBytes: number;
}

export interface Ingester {
  /** Appends to the tenant's WAL, then to its head; resolves once durable. */
  push(tenant: string, items: IngestItem[]): Promise<void>;
  /** Makes everything acknowledged durable on disk (today: syncs every WAL). */
  flush(): Promise<void>;
  reader(tenant: string): ProfileReader | undefined;
  stats(): Map<string, HeadStats>;
  close(): Promise<void>;
}

interface TenantDB {
  head: Head;
  reader: HeadReader;
  wal: WAL;
}

export interface ReplayStats {
  tenants: number;
  records: number;
  bytes: number;
  ms: number;
}

export async function createIngester(cfg: IngesterConfig, log: (msg: string) => void = console.log): Promise<Ingester & { replay: ReplayStats }> {
  const tenants = new Map<string, TenantDB>();
  const opening = new Map<string, Promise<TenantDB>>();
  let closed = false;

  async function openTenant(tenant: string): Promise<TenantDB> {
    const dir = join(cfg.dataDir, tenant, "wal");
    mkdirSync(dir, { recursive: true });
    const wal = await WAL.open(dir, { fsync: cfg.walFsync, segmentBytes: cfg.walSegmentBytes });
    const head = new Head();
    const db: TenantDB = { head, reader: new HeadReader(head), wal };
    return db;
  }

  async function tenantDB(tenant: string): Promise<TenantDB> {
    const have = tenants.get(tenant);
    if (have) return have;
    let p = opening.get(tenant);
    if (!p) {
      p = openTenant(tenant).then((db) => {
        tenants.set(tenant, db);
        opening.delete(tenant);
        return db;
      });
      opening.set(tenant, p);
    }
    return p;
  }

  // Replay: every tenant directory with a WAL.
  const t0 = performance.now();
  const replay: ReplayStats = { tenants: 0, records: 0, bytes: 0, ms: 0 };
  mkdirSync(cfg.dataDir, { recursive: true });
  for (const tenant of readdirSync(cfg.dataDir)) {
    if (!existsSync(join(cfg.dataDir, tenant, "wal"))) continue;
    const db = await tenantDB(tenant);
    const r = await db.wal.replay((payload) => {
      try {
        for (const rec of decodeRecords(payload)) db.head.append(rec.labels, rec.profile);
      } catch (e) {
        log(`wal replay: tenant ${tenant}: skipping an unreadable record: ${e instanceof Error ? e.message : e}`);
      }
    });
    replay.tenants++;
    replay.records += r.records;
    replay.bytes += r.bytes;
  }
  replay.ms = performance.now() - t0;

  return {
    replay,
    async push(tenant, items) {
      if (closed) throw new Error("ingester is closed");
      const db = await tenantDB(tenant);
      await db.wal.append(encodeRecords(items.map((it) => ({ tenant, labels: it.labels, profile: it.profile }))));
      for (const it of items) db.head.append(it.labels, it.profile);
    },
    async flush() {
      // Until blocks exist (the storage issue), flushing means every WAL is synced to disk.
      await Promise.all([...tenants.values()].map((db) => db.wal.flush()));
    },
    reader(tenant) {
      return tenants.get(tenant)?.reader;
    },
    stats() {
      const out = new Map<string, HeadStats>();
      for (const [t, db] of tenants) out.set(t, db.head.stats());
      return out;
    },
    async close() {
      closed = true;
      await Promise.all([...opening.values()]);
      for (const db of tenants.values()) await db.wal.close();
    },
  };
}
