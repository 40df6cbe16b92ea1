// Retention plans: age, size cap and the disk guard, at their edges.

import { describe, expect, test } from "bun:test";
import type { BlockMeta } from "./block/meta.ts";
import { planDiskGuard, planRetention, retentionBlock, type RetentionBlock } from "./retention.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 4, 1);

/** A block of the hour ending `hoursAgo` before NOW. */
function block(ulid: string, hoursAgo: number, bytes = 100, extra: Partial<RetentionBlock> = {}): RetentionBlock {
  const maxTime = NOW - hoursAgo * HOUR;
  return { ulid, minTime: maxTime - HOUR + 1, maxTime, bytes, ...extra };
}

const keepAll = { now: NOW, retentionMs: 0, maxBytes: 0 };

describe("planRetention", () => {
  test("no blocks, nothing to delete", () => {
    expect(planRetention([], { now: NOW, retentionMs: DAY, maxBytes: 1 })).toEqual({ delete: [], reasons: {} });
  });

  test("0 retention and 0 cap keep everything, however old or big", () => {
    const blocks = [block("A", 24 * 365 * 10, 1e12), block("B", 1, 1e12)];
    expect(planRetention(blocks, keepAll).delete).toEqual([]);
  });

  test("blocks past the cutoff go, oldest first, whatever the input order", () => {
    const blocks = [block("C", 1), block("A", 50), block("B", 30)];
    const plan = planRetention(blocks, { now: NOW, retentionMs: DAY, maxBytes: 0 });
    expect(plan.delete).toEqual(["A", "B"]);
    expect(plan.reasons).toEqual({ A: "age", B: "age" });
  });

  test("exact boundary: a block whose newest profile is exactly at the cutoff stays", () => {
    const cutoff = NOW - DAY;
    const at: RetentionBlock = { ulid: "AT", minTime: cutoff - HOUR, maxTime: cutoff, bytes: 1 };
    const before: RetentionBlock = { ulid: "BEFORE", minTime: cutoff - HOUR, maxTime: cutoff - 1, bytes: 1 };
    expect(planRetention([at, before], { now: NOW, retentionMs: DAY, maxBytes: 0 }).delete).toEqual(["BEFORE"]);
  });

  test("a block straddling the cutoff is kept whole", () => {
    const cutoff = NOW - DAY;
    const straddling: RetentionBlock = { ulid: "S", minTime: cutoff - 12 * HOUR, maxTime: cutoff + 12 * HOUR, bytes: 1 };
    expect(planRetention([straddling], { now: NOW, retentionMs: DAY, maxBytes: 0 }).delete).toEqual([]);
  });

  test("size cap: the oldest go until the rest fit; what stays is the newest stretch", () => {
    const blocks = [block("A", 4, 100), block("B", 3, 100), block("C", 2, 100), block("D", 1, 100)];
    const plan = planRetention(blocks, { now: NOW, retentionMs: 0, maxBytes: 250 });
    expect(plan.delete).toEqual(["A", "B"]);
    expect(plan.reasons).toEqual({ A: "size", B: "size" });
    // A small old block is not kept in place of a newer one, even though it would fit.
    const mixed = [block("OLD", 5, 10), block("MID", 3, 300), block("NEW", 1, 100)];
    expect(planRetention(mixed, { now: NOW, retentionMs: 0, maxBytes: 150 }).delete).toEqual(["OLD", "MID"]);
  });

  test("size cap: exactly at the cap is within it", () => {
    const blocks = [block("A", 2, 100), block("B", 1, 100)];
    expect(planRetention(blocks, { now: NOW, retentionMs: 0, maxBytes: 200 }).delete).toEqual([]);
    expect(planRetention(blocks, { now: NOW, retentionMs: 0, maxBytes: 199 }).delete).toEqual(["A"]);
  });

  test("size cap: a single block larger than the cap goes too", () => {
    expect(planRetention([block("HUGE", 1, 1000)], { now: NOW, retentionMs: 0, maxBytes: 999 }).delete).toEqual(["HUGE"]);
  });

  test("age first, then size over what is left; each block has one reason", () => {
    const blocks = [block("A", 48, 100), block("B", 30, 100), block("C", 3, 100), block("D", 2, 100), block("E", 1, 100)];
    const plan = planRetention(blocks, { now: NOW, retentionMs: DAY, maxBytes: 200 });
    expect(plan.delete).toEqual(["A", "B", "C"]);
    expect(plan.reasons).toEqual({ A: "age", B: "age", C: "size" });
  });

  test("blocks freed by age count towards the cap", () => {
    const blocks = [block("OLD", 48, 1000), block("NEW", 1, 100)];
    const plan = planRetention(blocks, { now: NOW, retentionMs: DAY, maxBytes: 500 });
    expect(plan.delete).toEqual(["OLD"]);
  });

  test("ties on maxTime are broken by ULID, so the plan does not depend on input order", () => {
    const a = block("01A", 1, 100);
    const b = block("01B", 1, 100);
    const c = block("01C", 1, 100);
    for (const order of [[a, b, c], [c, b, a], [b, c, a]]) {
      expect(planRetention(order, { now: NOW, retentionMs: 0, maxBytes: 150 }).delete).toEqual(["01A", "01B"]);
    }
  });

  test("the input is not reordered", () => {
    const blocks = [block("B", 1), block("A", 2)];
    planRetention(blocks, { now: NOW, retentionMs: HOUR, maxBytes: 0 });
    expect(blocks.map((b) => b.ulid)).toEqual(["B", "A"]);
  });

  test("negative settings are refused", () => {
    expect(() => planRetention([], { now: NOW, retentionMs: -1, maxBytes: 0 })).toThrow(RangeError);
    expect(() => planRetention([], { now: NOW, retentionMs: 0, maxBytes: -1 })).toThrow(RangeError);
  });
});

describe("planDiskGuard", () => {
  const tenants = () =>
    new Map<string, RetentionBlock[]>([
      ["a", [block("A1", 10, 100), block("A2", 5, 100)]],
      ["b", [block("B1", 8, 100), block("B2", 1, 100)]],
    ]);

  test("enough free disk, or the guard off: nothing to delete", () => {
    expect(planDiskGuard(tenants(), 1000, 1000)).toEqual({ delete: new Map(), bytes: 0, needed: 0, enough: true });
    expect(planDiskGuard(tenants(), 0, 0).delete.size).toBe(0);
    expect(planDiskGuard(new Map(), 0, 0).enough).toBe(true);
  });

  test("no blocks under pressure: nothing to delete, and not enough", () => {
    expect(planDiskGuard(new Map(), 10, 100)).toEqual({ delete: new Map(), bytes: 0, needed: 90, enough: false });
    expect(planDiskGuard(new Map([["a", []]]), 10, 100).delete.size).toBe(0);
  });

  test("the globally oldest go first, across tenants, and no more than needed", () => {
    const plan = planDiskGuard(tenants(), 900, 1050);
    expect(plan.needed).toBe(150);
    expect(plan.bytes).toBe(200);
    expect(plan.enough).toBe(true);
    expect(plan.delete).toEqual(new Map([["a", ["A1"]], ["b", ["B1"]]]));
  });

  test("exactly enough stops there", () => {
    const plan = planDiskGuard(tenants(), 900, 1000);
    expect(plan.delete).toEqual(new Map([["a", ["A1"]]]));
    expect(plan.bytes).toBe(100);
  });

  test("everything goes when even that is not enough", () => {
    const plan = planDiskGuard(tenants(), 0, 10_000);
    expect(plan.bytes).toBe(400);
    expect(plan.enough).toBe(false);
    expect(plan.delete).toEqual(new Map([["a", ["A1", "A2"]], ["b", ["B1", "B2"]]]));
  });

  test("ties across tenants break by ULID then tenant", () => {
    const t = new Map<string, RetentionBlock[]>([
      ["z", [block("SAME", 3, 100)]],
      ["y", [block("SAME", 3, 100)]],
      ["x", [block("LATER", 3, 100)]],
    ]);
    expect(planDiskGuard(t, 0, 200).delete).toEqual(new Map([["x", ["LATER"]], ["y", ["SAME"]]]));
  });

  test("blocks already in the bucket go before older ones that exist only here", () => {
    const t = new Map<string, RetentionBlock[]>([
      ["a", [block("OLD_LOCAL", 10, 100), block("NEW_UPLOADED", 1, 100, { uploaded: true })]],
    ]);
    expect(planDiskGuard(t, 0, 100).delete).toEqual(new Map([["a", ["NEW_UPLOADED"]]]));
  });

  test("empty blocks free nothing and are left alone", () => {
    const t = new Map<string, RetentionBlock[]>([["a", [block("EMPTY", 10, 0), block("FULL", 5, 100)]]]);
    expect(planDiskGuard(t, 0, 50).delete).toEqual(new Map([["a", ["FULL"]]]));
  });
});

test("retentionBlock sums the files meta.json lists", () => {
  const meta: BlockMeta = {
    ulid: "01HZZZZZZZZZZZZZZZZZZZZZZZ",
    minTime: 1,
    maxTime: 2,
    stats: { numSeries: 1, numProfiles: 1, numSamples: 1 },
    compaction: { level: 1, sources: [] },
    version: 1,
    files: [
      { relPath: "profiles.parquet", sizeBytes: 1000 },
      { relPath: "index.sqlite", sizeBytes: 24 },
    ],
  };
  expect(retentionBlock(meta, "t")).toEqual({ ulid: meta.ulid, minTime: 1, maxTime: 2, bytes: 1024, tenant: "t" });
});
