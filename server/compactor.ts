// The compactor role: on a timer, enforces retention per tenant (age and size, with per-tenant
// overrides) and the free-disk guard across tenants, and merges small blocks into larger ones.

import { join } from "node:path";
import { compactBlocks, planCompaction, rewriteWithout } from "../storage/compact.ts";
import type { Matcher } from "../storage/model/selector.ts";
import { diskFree } from "../storage/disk.ts";
import { failpoint } from "../storage/failpoint.ts";
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
  /** One compaction pass; returns the ULIDs of the blocks written per tenant. */
  compact(): Promise<Map<string, string[]>>;
  /**
   * Deletes every series of `tenant` matching all `matchers`, in the head and in every block
   * (blocks are rewritten without them). Runs in the compactor's queue.
   */
  deleteSeries(tenant: string, matchers: Matcher[]): Promise<{ series: number; blocksRewritten: number }>;
  /** Waits for the queued passes, then runs compaction passes in the queue until one merges nothing. */
  settle(): Promise<void>;
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

  // Merges stream series by series, so memory follows the number of source blocks (a few MB
  // each), not their samples: at most 4 blocks per merge; the sample cap only bounds how long
  // one merge runs and how big its output gets.
  const MAX_MERGE_BLOCKS = 4;
  const MAX_MERGE_SAMPLES = 200_000_000;

  async function compact(): Promise<Map<string, string[]>> {
    const written = new Map<string, string[]>();
    for (const [tenant, db] of tenants()) {
      const groups = planCompaction(db.blockMetas(), {
        ranges: config.compactor.blockRanges,
        now: now(),
        // A window is merged once late profiles for it can no longer arrive in a head.
        minAgeMs: config.ingester.maxBlockDuration,
        maxSamples: MAX_MERGE_SAMPLES,
        maxBlocks: MAX_MERGE_BLOCKS,
        earlyMergeBlocks: MAX_MERGE_BLOCKS,
      });
      for (const group of groups) {
        if (closed) return written;
        const ulids = group.map((m) => m.ulid);
        const meta = await compactBlocks(
          ulids.map((u) => join(db.blocksDir, u)),
          db.blocksDir,
        );
        failpoint("compaction-before-swap");
        await db.replaceBlocks(ulids, join(db.blocksDir, meta.ulid));
        log(`compactor: tenant ${tenant}: merged ${ulids.length} blocks into ${meta.ulid} (level ${meta.compaction.level})`);
        written.set(tenant, [...(written.get(tenant) ?? []), meta.ulid]);
      }
    }
    return written;
  }

  // Passes never overlap: each waits for the one before, so retention never deletes a block a
  // merge is reading (the merge would bring its profiles back).
  const schedule = (fn: () => Promise<unknown>, what: string) => () => {
    if (closed) return;
    running = running.then(fn).catch((e) => log(`compactor: ${what} failed: ${e instanceof Error ? e.message : e}`));
  };
  const retentionTimer = setInterval(schedule(enforceRetention, "retention"), config.retention.interval);
  retentionTimer.unref?.();
  const compactTimer = config.compactor.enabled ? setInterval(schedule(compact, "compaction"), config.compactor.interval) : null;
  compactTimer?.unref?.();

  async function deleteSeriesNow(tenant: string, matchers: Matcher[]) {
    const db = tenants().get(tenant);
    if (!db) return { series: 0, blocksRewritten: 0 };
    // The head's profiles are covered once they are in a block.
    await db.cut();
    const all = { start: 0, end: 0 };
    const seen = new Set<string>();
    let blocksRewritten = 0;
    for (const b of db.blockEntries()) {
      const hit = await b.series(matchers, all);
      if (hit.length === 0) continue;
      for (const ls of hit) seen.add(ls.map((l) => `${l.name}=${l.value}`).join(","));
      const meta = await rewriteWithout(b.dir, db.blocksDir, matchers);
      await db.replaceBlocks([b.meta.ulid], meta ? join(db.blocksDir, meta.ulid) : null);
      blocksRewritten++;
      log(`compactor: tenant ${tenant}: block ${b.meta.ulid} rewritten without ${hit.length} deleted series${meta ? ` as ${meta.ulid}` : " (nothing left)"}`);
    }
    return { series: seen.size, blocksRewritten };
  }

  return {
    enforceRetention,
    compact,
    deleteSeries(tenant, matchers) {
      const next = running.then(() => deleteSeriesNow(tenant, matchers));
      running = next.catch(() => {});
      return next;
    },
    async settle() {
      for (;;) {
        const next = running.then(compact);
        running = next.catch(() => {});
        if ((await next).size === 0) return;
      }
    },
    async close() {
      closed = true;
      clearInterval(retentionTimer);
      if (compactTimer) clearInterval(compactTimer);
      await running;
    },
  };
}
