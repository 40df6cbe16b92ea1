// planCompaction: aligned windows level by level, overlaps, grace periods, caps; and a simulated
// day of hourly cuts that must converge to one day-sized block with bounded rewriting.

import { describe, expect, test } from "bun:test";
import type { BlockMeta } from "./block/meta.ts";
import { DEFAULT_COMPACTION_RANGES, planCompaction, type PlanOptions } from "./compact.ts";

const MIN = 60_000;
const H = 60 * MIN;
const DAY = 24 * H;
const D0 = Date.UTC(2026, 2, 1); // a UTC midnight: day windows start here

let seq = 0;
function block(minTime: number, maxTime: number, o: { level?: number; samples?: number; ulid?: string } = {}): BlockMeta {
  const ulid = o.ulid ?? `B${String(seq++).padStart(4, "0")}`;
  return {
    ulid,
    minTime,
    maxTime,
    stats: { numSeries: 1, numProfiles: 1, numSamples: o.samples ?? 100 },
    compaction: { level: o.level ?? 1, sources: [ulid] },
    version: 1,
    files: [],
  };
}

/** An hourly head cut: profiles from `h` hours past D0 up to 10 s before the next hour. */
const hourly = (h: number) => block(D0 + h * H, D0 + (h + 1) * H - 10_000);

const plan = (metas: BlockMeta[], now: number, extra: Partial<PlanOptions> = {}) =>
  planCompaction(metas, { ranges: DEFAULT_COMPACTION_RANGES, now, ...extra }).map((g) => g.map((b) => b.ulid));

describe("planCompaction: windows", () => {
  test("two hourly blocks merge once their 2 h window is over", () => {
    const a = hourly(0);
    const b = hourly(1);
    expect(plan([a, b], D0 + 2 * H - 1)).toEqual([]);
    expect(plan([a, b], D0 + 2 * H)).toEqual([[a.ulid, b.ulid]]);
    // Input order does not matter.
    expect(plan([b, a], D0 + 2 * H)).toEqual([[a.ulid, b.ulid]]);
  });

  test("minAgeMs: a grace after the window ends", () => {
    const ms = [hourly(0), hourly(1)];
    expect(plan(ms, D0 + 2 * H + 30 * MIN, { minAgeMs: H })).toEqual([]);
    expect(plan(ms, D0 + 3 * H, { minAgeMs: H })).toHaveLength(1);
  });

  test("windows are aligned to multiples of the range since the epoch, ends inclusive", () => {
    // [1 h, 3 h) straddles the 2 h boundary: it waits for the 12 h window.
    const a = block(D0 + H, D0 + 2 * H + 5 * MIN);
    const b = block(D0 + 2 * H + 10 * MIN, D0 + 3 * H);
    expect(plan([a, b], D0 + 4 * H)).toEqual([]);
    expect(plan([a, b], D0 + 12 * H)).toEqual([[a.ulid, b.ulid]]);
    // A profile exactly on the boundary belongs to the next window.
    const c = block(D0, D0 + 2 * H);
    const d = block(D0 + 2 * H, D0 + 2 * H + MIN);
    expect(plan([c, d], D0 + 4 * H)).toEqual([]);
  });

  test("a block already spanning its window is not planned again; a late block joins it", () => {
    const day = block(D0, D0 + DAY - 1, { level: 4 });
    expect(plan([day], D0 + 10 * DAY)).toEqual([]);
    const twoH = block(D0 + 2 * H, D0 + 4 * H - 1, { level: 2 });
    expect(plan([twoH, hourly(8)], D0 + 5 * H)).toEqual([]);
    const late = block(D0 + 5 * H, D0 + 5 * H + 10_000);
    expect(plan([day, late], D0 + 2 * DAY)).toEqual([[day.ulid, late.ulid]]);
  });

  test("level by level within an open day: 2 h windows as they close, then 12 h", () => {
    const blocks = Array.from({ length: 7 }, (_, h) => hourly(h)); // 00:00 … 06:59
    const at7 = plan(blocks, D0 + 7 * H);
    expect(at7).toEqual([0, 2, 4].map((h) => [blocks[h].ulid, blocks[h + 1].ulid]));
    // At noon the 12 h window is over: everything in it merges at once, not pair by pair.
    const morning = Array.from({ length: 12 }, (_, h) => hourly(h));
    expect(plan(morning, D0 + 12 * H)).toEqual([morning.map((b) => b.ulid)]);
  });

  test("a compactor away for days merges each finished day at once", () => {
    const blocks = Array.from({ length: 72 }, (_, h) => hourly(h));
    const got = plan(blocks, D0 + 3 * DAY + 5 * MIN);
    expect(got).toEqual([0, 1, 2].map((d) => blocks.slice(d * 24, d * 24 + 24).map((b) => b.ulid)));
  });

  test("groups are disjoint and sorted; blocks in a group by time", () => {
    const blocks = Array.from({ length: 30 }, (_, h) => hourly(h));
    const shuffled = [...blocks].sort((a, b) => ((a.minTime * 7919) % 13) - ((b.minTime * 7919) % 13));
    const got = plan(shuffled, D0 + 31 * H);
    expect(got).toEqual(plan(blocks, D0 + 31 * H));
    const all = got.flat();
    expect(new Set(all).size).toBe(all.length);
    for (const g of got) expect(g).toEqual([...g].sort());
  });

  test("maxSamples splits a window into consecutive runs under the cap", () => {
    const blocks = Array.from({ length: 12 }, (_, h) => hourly(h));
    const got = plan(blocks, D0 + DAY - 1, { maxSamples: 450 });
    expect(got.map((g) => g.length)).toEqual([4, 4, 4]);
    // A block over the cap on its own is left alone rather than merged.
    const big = block(D0, D0 + 10 * MIN, { samples: 1000 });
    expect(plan([big, block(D0 + 20 * MIN, D0 + 30 * MIN)], D0 + DAY, { maxSamples: 500 })).toEqual([]);
  });

  test("maxBlocks splits a window into consecutive runs of at most that many blocks", () => {
    const blocks = Array.from({ length: 24 }, (_, h) => hourly(h));
    const got = plan(blocks, D0 + DAY, { maxBlocks: 10 });
    expect(got).toEqual([blocks.slice(0, 10), blocks.slice(10, 20), blocks.slice(20)].map((g) => g.map((b) => b.ulid)));
    // Both caps at once: whichever is reached first ends a run.
    expect(plan(blocks.slice(0, 12), D0 + DAY, { maxBlocks: 5, maxSamples: 350 }).map((g) => g.length)).toEqual([3, 3, 3, 3]);
    expect(plan(blocks.slice(0, 12), D0 + DAY, { maxBlocks: 2, maxSamples: 350 }).map((g) => g.length)).toEqual([2, 2, 2, 2, 2, 2]);
    // The runs' outputs fit the day window together and merge on the next pass.
    const merged = got.map((g, i) => block(D0 + i * 10 * H, D0 + Math.min(24, (i + 1) * 10) * H - 1, { level: 2 }));
    expect(plan(merged, D0 + DAY, { maxBlocks: 10 })).toEqual([merged.map((b) => b.ulid)]);
    expect(() => plan(blocks, D0 + DAY, { maxBlocks: 1 })).toThrow(RangeError);
  });

  test("ranges are validated", () => {
    expect(() => planCompaction([], { ranges: [0], now: 0 })).toThrow(RangeError);
    expect(() => planCompaction([], { ranges: [1.5], now: 0 })).toThrow(RangeError);
    expect(planCompaction([hourly(0), hourly(1)], { ranges: [], now: D0 + DAY })).toEqual([]);
  });
});

describe("planCompaction: early merges in the open window", () => {
  const five = (i: number, level = 1) => block(D0 + i * 5 * MIN, D0 + (i + 1) * 5 * MIN - 1, { level });
  const now = D0 + 50 * MIN; // the first 2 h window is still open

  test("groups of earlyMergeBlocks head blocks, oldest first; fewer wait; off by default", () => {
    const bs = [0, 1, 2, 3, 4, 5, 6].map((i) => five(i));
    expect(plan(bs, now)).toEqual([]);
    expect(plan(bs, now, { earlyMergeBlocks: 4 })).toEqual([bs.slice(0, 4).map((b) => b.ulid)]);
    expect(plan(bs.slice(0, 3), now, { earlyMergeBlocks: 4 })).toEqual([]);
  });

  test("merged blocks are not merged again until the window closes, then all together", () => {
    const merged = [five(0, 2), five(1, 2), five(2, 2), five(3, 2)];
    expect(plan(merged, now, { earlyMergeBlocks: 2 })).toEqual([]);
    expect(plan(merged, D0 + 2 * H, { earlyMergeBlocks: 2 })).toEqual([merged.map((b) => b.ulid)]);
  });

  test("a block across the window's end is left to the larger windows", () => {
    const bs = [20, 21, 22].map((i) => five(i));
    const across = block(D0 + 2 * H - MIN, D0 + 2 * H + MIN);
    expect(plan([...bs, across], D0 + 2 * H - 1, { earlyMergeBlocks: 4 })).toEqual([]);
    const first = five(19);
    expect(plan([first, ...bs, across], D0 + 2 * H - 1, { earlyMergeBlocks: 4 })).toEqual([[first, ...bs].map((b) => b.ulid)]);
  });
});

describe("planCompaction: overlaps", () => {
  test("overlapping blocks inside one 2 h window merge before the window ends", () => {
    const a = block(D0 + 5 * MIN, D0 + 50 * MIN);
    const b = block(D0 + 5 * MIN, D0 + 50 * MIN); // the same range twice: e.g. duplicated data
    const c = block(D0 + 55 * MIN, D0 + 56 * MIN); // touches neither
    expect(plan([a, b, c], D0 + 60 * MIN)).toEqual([[a.ulid, b.ulid]]);
    // Not before the last profile is minAgeMs old.
    expect(plan([a, b, c], D0 + 60 * MIN, { minAgeMs: 30 * MIN })).toEqual([]);
  });

  test("overlap is transitive, ends inclusive", () => {
    const a = block(D0, D0 + 10 * MIN);
    const b = block(D0 + 10 * MIN, D0 + 20 * MIN);
    const c = block(D0 + 15 * MIN, D0 + 30 * MIN);
    const d = block(D0 + 30 * MIN + 1, D0 + 40 * MIN);
    expect(plan([d, c, b, a], D0 + 45 * MIN)).toEqual([[a.ulid, b.ulid, c.ulid]]);
  });

  test("an overlap across a 2 h boundary waits for the larger window", () => {
    const a = block(D0 + H, D0 + 2 * H - 1);
    const b = block(D0 + 2 * H - 30_000, D0 + 3 * H); // late profiles from before the cut
    expect(plan([a, b], D0 + 4 * H)).toEqual([]);
    expect(plan([a, b], D0 + 12 * H)).toEqual([[a.ulid, b.ulid]]);
  });

  test("a block straddling midnight stays, and never drags two days together", () => {
    const d0 = block(D0, D0 + DAY - 1, { level: 4 });
    const straddle = block(D0 + DAY - MIN, D0 + DAY + H);
    const d1 = block(D0 + DAY, D0 + 2 * DAY - 1, { level: 4 });
    expect(plan([d0, straddle, d1], D0 + 10 * DAY)).toEqual([]);
  });
});

describe("planCompaction: a simulated day", () => {
  /**
   * Cuts a head every hour at :20 (late profiles overlap the previous block by 30 s) and runs
   * the planner every 10 minutes, merging what it plans. Checks that the day ends as one block,
   * that no block ever spans more than a day, and how often a profile is written.
   */
  test("hourly cuts converge to one day block; each profile is written a bounded number of times", () => {
    let blocks: BlockMeta[] = [];
    let writes = 0; // block-hours written, cut included
    let n = 0;
    let cuts = 0;
    const merge = (group: BlockMeta[]): BlockMeta => {
      const ulid = `M${String(n++).padStart(4, "0")}`;
      const b = block(Math.min(...group.map((g) => g.minTime)), Math.max(...group.map((g) => g.maxTime)), {
        ulid,
        level: Math.max(...group.map((g) => g.compaction.level)) + 1,
        samples: group.reduce((s, g) => s + g.stats.numSamples, 0),
      });
      writes += b.stats.numSamples;
      return b;
    };
    let prevCut = D0;
    for (let t = D0; t <= D0 + DAY + 3 * H; t += 10 * MIN) {
      // A cut every hour at :20, holding the profiles since the last cut plus 30 s of late ones.
      if ((t - D0) % H === 20 * MIN && prevCut < D0 + DAY) {
        blocks.push(block(Math.max(D0, prevCut - 30_000), Math.min(D0 + DAY - 1, t - 1), { samples: 60 }));
        writes += 60;
        cuts++;
        prevCut = t;
      }
      for (const group of planCompaction(blocks, { ranges: DEFAULT_COMPACTION_RANGES, now: t, minAgeMs: H })) {
        const gone = new Set(group.map((g) => g.ulid));
        blocks = [...blocks.filter((b) => !gone.has(b.ulid)), merge(group)];
      }
      for (const b of blocks) expect(b.maxTime - b.minTime).toBeLessThan(DAY);
    }
    expect(blocks).toHaveLength(1);
    expect([blocks[0].minTime, blocks[0].maxTime]).toEqual([D0, D0 + DAY - 1]);
    const ingested = cuts * 60;
    const amplification = writes / ingested;
    console.log(`simulated day: ${blocks.length} blocks left, each profile written ${amplification.toFixed(2)} times`);
    expect(amplification).toBeLessThanOrEqual(5);
  });

  /**
   * A head under load cut by size every 5 minutes, the compactor every minute with merges of at
   * most 4 blocks. Early merges must keep a query over the last hour to a handful of blocks while
   * the 2 h window is open, and the day must still end as one block.
   */
  for (const early of [0, 4]) {
    test(`cuts every 5 minutes, ${early ? "with" : "without"} early merges: blocks a last-hour query opens, rewriting, one block at the end`, () => {
      let blocks: BlockMeta[] = [];
      let writes = 0;
      let n = 0;
      let worst = 0;
      const merge = (group: BlockMeta[]): BlockMeta => {
        const b = block(Math.min(...group.map((g) => g.minTime)), Math.max(...group.map((g) => g.maxTime)), {
          ulid: `E${String(n++).padStart(4, "0")}`,
          level: Math.max(...group.map((g) => g.compaction.level)) + 1,
          samples: group.reduce((x, g) => x + g.stats.numSamples, 0),
        });
        writes += b.stats.numSamples;
        return b;
      };
      for (let t = D0 + MIN; t <= D0 + DAY + 4 * H; t += MIN) {
        if (t % (5 * MIN) === 0 && t <= D0 + DAY) {
          blocks.push(block(t - 5 * MIN, t - 1, { samples: 5 }));
          writes += 5;
        }
        for (const group of planCompaction(blocks, { ranges: DEFAULT_COMPACTION_RANGES, now: t, minAgeMs: H, maxBlocks: 4, earlyMergeBlocks: early })) {
          const gone = new Set(group.map((g) => g.ulid));
          blocks = [...blocks.filter((b) => !gone.has(b.ulid)), merge(group)];
        }
        if (t <= D0 + DAY) worst = Math.max(worst, blocks.filter((b) => b.maxTime >= t - H).length);
      }
      expect(blocks).toHaveLength(1);
      const amplification = writes / (288 * 5);
      console.log(`5-minute cuts, early merges ${early || "off"}: a last-hour query opens up to ${worst} blocks; each profile written ${amplification.toFixed(2)} times`);
      // Without early merges every 5-minute block of the last hour is opened (12); rewriting is
      // no worse with them (measured: 8.0 times without, 6.7 with).
      if (early) {
        expect(worst).toBeLessThanOrEqual(7);
        expect(amplification).toBeLessThanOrEqual(7);
      } else expect(worst).toBeGreaterThanOrEqual(12);
    });
  }
});
