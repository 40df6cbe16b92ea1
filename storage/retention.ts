// Retention planning: which blocks to delete for age, for a per-tenant size cap, and when the disk
// runs low. Pure functions over block summaries; the caller deletes (TenantDB.deleteBlocks).

import type { BlockMeta } from "./block/meta.ts";

/** What retention needs to know about a block. */
export interface RetentionBlock {
  ulid: string;
  /** Time range of the block's profiles in ms, both ends inclusive (as in meta.json). */
  minTime: number;
  maxTime: number;
  bytes: number;
  tenant?: string;
  /** Already in the bucket: under disk pressure its local copy goes first, since nothing is lost. */
  uploaded?: boolean;
}

export interface RetentionPolicy {
  /** ms */
  now: number;
  /** Keep profiles this long (ms); 0 = keep forever. */
  retentionMs: number;
  /** Most bytes of blocks to keep (per tenant); 0 = no cap. */
  maxBytes: number;
}

export type RetentionReason = "age" | "size";

export interface RetentionPlan {
  /** ULIDs to delete, oldest first. */
  delete: string[];
  reasons: Record<string, RetentionReason>;
}

/** A block's summary for retention; its size is what meta.json lists for its files. */
export function retentionBlock(meta: BlockMeta, tenant?: string): RetentionBlock {
  const bytes = meta.files.reduce((sum, f) => sum + f.sizeBytes, 0);
  return { ulid: meta.ulid, minTime: meta.minTime, maxTime: meta.maxTime, bytes, tenant };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Oldest first: by the newest profile a block holds, ties broken by ULID so plans are stable. */
function byAge(a: RetentionBlock, b: RetentionBlock): number {
  return a.maxTime - b.maxTime || cmp(a.ulid, b.ulid);
}

function checkNonNegative(name: string, n: number): void {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`${name} must be a non-negative number, got ${n}`);
}

/**
 * One tenant's retention: blocks whose newest profile is older than now - retentionMs go (a block
 * straddling the cutoff stays whole: it still holds profiles inside retention); then, while the
 * rest exceed maxBytes, the oldest go, so what remains is always the newest contiguous stretch.
 */
export function planRetention(blocks: readonly RetentionBlock[], policy: RetentionPolicy): RetentionPlan {
  checkNonNegative("retentionMs", policy.retentionMs);
  checkNonNegative("maxBytes", policy.maxBytes);
  const plan: RetentionPlan = { delete: [], reasons: {} };
  const sorted = [...blocks].sort(byAge);
  const cutoff = policy.retentionMs > 0 ? policy.now - policy.retentionMs : -Infinity;
  let total = sorted.reduce((sum, b) => sum + b.bytes, 0);
  // Sorted by maxTime, the blocks past the cutoff are a prefix, and size evicts from the front
  // too: both stop at the first block that may stay.
  for (const b of sorted) {
    let reason: RetentionReason;
    if (b.maxTime < cutoff) reason = "age";
    else if (policy.maxBytes > 0 && total > policy.maxBytes) reason = "size";
    else break;
    plan.delete.push(b.ulid);
    plan.reasons[b.ulid] = reason;
    total -= b.bytes;
  }
  return plan;
}

export interface DiskGuardPlan {
  /** Tenant → ULIDs to delete, in the order picked; only tenants with something to delete. */
  delete: Map<string, string[]>;
  /** Bytes those deletions free. */
  bytes: number;
  /** Bytes that had to be freed to reach the minimum (0 when free disk was enough). */
  needed: number;
  /** False when deleting every block would still leave less than the minimum free. */
  enough: boolean;
}

/**
 * When free disk is below minFreeBytes, picks blocks across all tenants, oldest first (blocks
 * already uploaded to the bucket before any that exist only here), and stops as soon as they
 * would free enough. minFreeBytes 0 turns the guard off.
 */
export function planDiskGuard(
  tenants: ReadonlyMap<string, readonly RetentionBlock[]>,
  freeBytes: number,
  minFreeBytes: number,
): DiskGuardPlan {
  checkNonNegative("minFreeBytes", minFreeBytes);
  const needed = minFreeBytes > 0 ? Math.max(0, minFreeBytes - freeBytes) : 0;
  const plan: DiskGuardPlan = { delete: new Map(), bytes: 0, needed, enough: true };
  if (needed === 0) return plan;
  const all: { tenant: string; block: RetentionBlock }[] = [];
  for (const [tenant, blocks] of tenants) for (const block of blocks) all.push({ tenant, block });
  all.sort(
    (a, b) =>
      Number(!a.block.uploaded) - Number(!b.block.uploaded) || byAge(a.block, b.block) || cmp(a.tenant, b.tenant),
  );
  for (const { tenant, block } of all) {
    if (plan.bytes >= needed) break;
    if (block.bytes <= 0) continue; // deleting it would free nothing
    let list = plan.delete.get(tenant);
    if (!list) plan.delete.set(tenant, (list = []));
    list.push(block.ulid);
    plan.bytes += block.bytes;
  }
  plan.enough = plan.bytes >= needed;
  return plan;
}
