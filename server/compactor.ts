// The compactor role: on a timer, enforces retention per tenant (age and size, with per-tenant
// overrides) and the free-disk guard across tenants, and merges small blocks into larger ones.

import { diskFree } from "../storage/disk.ts";
import { planDiskGuard, planRetention, retentionBlock, type RetentionBlock } from "../storage/retention.ts";
import type { TenantDB } from "../storage/tenant-db.ts";
import type { Config } from "./config.ts";
import type { TenantSettingsSource } from "./overrides.ts";

export interface CompactorDeps {
  config: Config;
  tenants: () => Map<string, TenantDB>;
  settings: TenantSettingsSource;
  log: (msg: string) => void;
  now?: () => number;
}

export interface Compactor {
  /** One retention + disk-guard pass; returns the ULIDs deleted per tenant. */
  enforceRetention(): Promise<Map<string, string[]>>;
  close(): Promise<void>;
}

export function createCompactor(deps: CompactorDeps): Compactor {
  const { config, tenants, settings, log } = deps;
  const now = deps.now ?? Date.now;
  let running: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function enforceRetention(): Promise<Map<string, string[]>> {
    const deleted = new Map<string, string[]>();
    const t = now();
    for (const [tenant, db] of tenants()) {
      const s = settings.overridesFor(tenant);
      const plan = planRetention(
        db.blockMetas().map((m) => retentionBlock(m, tenant)),
        { now: t, retentionMs: s.retention, maxBytes: s.retentionMaxBytes },
      );
      if (plan.delete.length === 0) continue;
      for (const ulid of plan.delete) log(`compactor: tenant ${tenant}: deleting block ${ulid} (retention: ${plan.reasons[ulid]})`);
      await db.deleteBlocks(plan.delete);
      deleted.set(tenant, [...plan.delete]);
    }
    if (config.retention.minFreeDisk > 0) {
      // Measured after the deletions above finished: files free space only once closed.
      const free = diskFree(config.dataDir).freeBytes;
      const all = new Map<string, RetentionBlock[]>();
      for (const [tenant, db] of tenants()) all.set(tenant, db.blockMetas().map((m) => retentionBlock(m, tenant)));
      const guard = planDiskGuard(all, free, config.retention.minFreeDisk);
      for (const [tenant, ulids] of guard.delete) {
        log(`compactor: free disk ${free} bytes is below the minimum ${config.retention.minFreeDisk}: deleting ${ulids.length} oldest block(s) of tenant ${tenant}`);
        await tenants().get(tenant)?.deleteBlocks(ulids);
        deleted.set(tenant, [...(deleted.get(tenant) ?? []), ...ulids]);
      }
      if (!guard.enough) log(`compactor: even with every block deleted, free disk stays below the minimum of ${config.retention.minFreeDisk} bytes`);
    }
    return deleted;
  }

  // Passes never overlap: each waits for the one before.
  const schedule = (fn: () => Promise<unknown>, what: string) => () => {
    if (closed) return;
    running = running.then(fn).catch((e) => log(`compactor: ${what} failed: ${e instanceof Error ? e.message : e}`));
  };
  const retentionTimer = setInterval(schedule(enforceRetention, "retention"), config.retention.interval);
  retentionTimer.unref?.();

  return {
    enforceRetention,
    async close() {
      closed = true;
      clearInterval(retentionTimer);
      await running;
    },
  };
}
