// Compaction: plans which blocks to merge (aligned time windows, level by level up to a day, and
// overlapping blocks), merges them into one block with duplicates dropped, and rewrites a block
// without deleted series. Source blocks are never deleted here: the caller swaps and deletes them.

import { mergeBlocks, type MergeStats } from "./block/block-merger.ts";
import { BlockSource } from "./block/block-source.ts";
import type { BlockMeta } from "./block/meta.ts";
import { BlockReader } from "./block/reader.ts";
import type { Matcher } from "./model/selector.ts";

const HOUR = 3_600_000;

/** Pyroscope v1's default -compactor.block-ranges (from Mimir): blocks grow to 2 h, then 12 h, then a day. */
export const DEFAULT_COMPACTION_RANGES = [2 * HOUR, 12 * HOUR, 24 * HOUR];

export interface PlanOptions {
  /** Window sizes in ms, e.g. DEFAULT_COMPACTION_RANGES; windows are aligned to multiples since the epoch. */
  ranges: number[];
  /** The current time in ms: windows that are not over yet are left to fill. */
  now: number;
  /**
   * Grace after a window ends (and after an overlapping block's last profile) before it is
   * merged, so the block cut from the head that was live at the window's end can join in. A
   * head's cut age is a good value. Default 0.
   */
  minAgeMs?: number;
  /**
   * Most samples (meta.stats.numSamples) one merge may write: larger groups are split into
   * consecutive runs under the cap. A merge streams, so this bounds its duration and output size,
   * not its memory. Default: no cap.
   */
  maxSamples?: number;
  /**
   * Most blocks one merge may read: a merge holds one row group (~1.5 MB) per source, so this
   * bounds its memory. Larger groups are split like for maxSamples. Default: no cap.
   */
  maxBlocks?: number;
  /**
   * Early merges: once this many blocks cut from heads (level 1) lie in one window of the
   * smallest range that is not over yet, they are merged, oldest first. A head under load is cut
   * by size every few minutes, so without this a query over the last hour would open dozens of
   * small blocks until their window closed. Default: off.
   */
  earlyMergeBlocks?: number;
}

/** Blocks by time range, then ULID: the order every plan lists them in. */
function byTime(a: BlockMeta, b: BlockMeta): number {
  return a.minTime - b.minTime || a.maxTime - b.maxTime || (a.ulid < b.ulid ? -1 : a.ulid > b.ulid ? 1 : 0);
}

/**
 * Groups of ≥ 2 blocks to merge, disjoint, each sorted by time, groups in time order. Pure and
 * deterministic.
 *
 * 1. Windows, largest range first: the blocks that fit entirely inside one aligned window of the
 *    range, once the window is over (+ minAgeMs), are merged into one. Largest first, so a
 *    compactor that was away merges a finished day at once instead of climbing level by level;
 *    while a day is open its 2 h and 12 h windows close one by one and are merged as they do.
 *    A block alone in its window (say one already spanning it) is left as it is.
 * 2. Early: in a window of the smallest range that is still open, blocks cut from heads (level 1)
 *    are merged in groups of earlyMergeBlocks, oldest first; the window's merge at its close
 *    then takes their results.
 * 3. Overlaps: blocks not planned above whose time ranges overlap (transitively) and together fit
 *    one window of the smallest range are merged once their last profile is minAgeMs old, to
 *    drop duplicates early. The smallest window bounds the rewriting: late profiles at a head's
 *    cut make neighbouring blocks overlap, and merging unbounded chains of those would rewrite
 *    the day so far at every cut. Larger overlaps wait for their window in step 1.
 *
 * A block straddling a boundary of every range is never planned: it stays as it is (correct,
 * only a little costlier to query).
 */
export function planCompaction(metas: BlockMeta[], opts: PlanOptions): BlockMeta[][] {
  for (const r of opts.ranges) if (!Number.isSafeInteger(r) || r <= 0) throw new RangeError(`compaction range must be a positive number of ms, got ${r}`);
  const ranges = [...new Set(opts.ranges)].sort((a, b) => a - b);
  const minAge = opts.minAgeMs ?? 0;
  const maxSamples = opts.maxSamples ?? Infinity;
  const maxBlocks = opts.maxBlocks ?? Infinity;
  if (!(maxBlocks >= 2)) throw new RangeError(`maxBlocks must be at least 2, got ${maxBlocks}`);
  const blocks = [...metas].sort(byTime);
  const planned = new Set<string>();
  const plans: BlockMeta[][] = [];
  const take = (group: BlockMeta[]) => {
    for (const run of capRuns(group, maxSamples, maxBlocks)) {
      if (run.length < 2) continue;
      plans.push(run);
      for (const b of run) planned.add(b.ulid);
    }
  };

  for (let i = ranges.length - 1; i >= 0; i--) {
    const range = ranges[i];
    const windows = new Map<number, BlockMeta[]>();
    for (const b of blocks) {
      if (planned.has(b.ulid)) continue;
      const w = Math.floor(b.minTime / range);
      if (Math.floor(b.maxTime / range) !== w) continue;
      const list = windows.get(w);
      if (list) list.push(b);
      else windows.set(w, [b]);
    }
    for (const [w, group] of [...windows].sort((a, b) => a[0] - b[0])) {
      if (group.length >= 2 && (w + 1) * range + minAge <= opts.now) take(group);
    }
  }

  const early = opts.earlyMergeBlocks ?? 0;
  if (ranges.length > 0 && early >= 2) {
    const smallest = ranges[0];
    const open = new Map<number, BlockMeta[]>();
    for (const b of blocks) {
      if (planned.has(b.ulid) || b.compaction.level !== 1) continue;
      const w = Math.floor(b.minTime / smallest);
      if (Math.floor(b.maxTime / smallest) !== w || (w + 1) * smallest + minAge <= opts.now) continue;
      const list = open.get(w);
      if (list) list.push(b);
      else open.set(w, [b]);
    }
    for (const group of open.values()) for (let i = 0; i + early <= group.length; i += early) take(group.slice(i, i + early));
  }

  if (ranges.length > 0) {
    const smallest = ranges[0];
    let cluster: BlockMeta[] = [];
    let clusterMax = -Infinity;
    const flush = () => {
      const fits = cluster.length >= 2 && Math.floor(cluster[0].minTime / smallest) === Math.floor(clusterMax / smallest);
      if (fits && cluster.every((b) => b.maxTime + minAge <= opts.now)) take(cluster);
      cluster = [];
      clusterMax = -Infinity;
    };
    for (const b of blocks) {
      if (planned.has(b.ulid)) continue;
      if (b.minTime > clusterMax) flush();
      cluster.push(b);
      clusterMax = Math.max(clusterMax, b.maxTime);
    }
    flush();
  }
  return plans.sort((a, b) => byTime(a[0], b[0]));
}

/**
 * Splits a time-ordered group into consecutive runs of at most `maxBlocks` whose samples stay
 * within `max` (a block over it runs alone).
 */
function capRuns(group: BlockMeta[], max: number, maxBlocks: number): BlockMeta[][] {
  if (max === Infinity && group.length <= maxBlocks) return [group];
  const runs: BlockMeta[][] = [];
  let run: BlockMeta[] = [];
  let sum = 0;
  for (const b of group) {
    if (run.length > 0 && (sum + b.stats.numSamples > max || run.length >= maxBlocks)) {
      runs.push(run);
      run = [];
      sum = 0;
    }
    run.push(b);
    sum += b.stats.numSamples;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

export interface CompactOptions {
  /** Leave out the rows of series matching all these matchers (series deletion). */
  drop?: Matcher[];
  /** Called with what was merged, e.g. for a log line or metrics. */
  onStats?: (s: CompactStats) => void;
}

export type CompactStats = MergeStats;

/**
 * Merges the blocks in `sources` (block directories) into one new block in `blocksDir`: level =
 * the sources' highest + 1, sources = the union of theirs, wal.throughSegment = the highest.
 * Sources are ranked by the order their data was first written (the oldest ULID among their
 * compaction sources, then their own), so when two rows of a series share a time_ms the copy
 * written first is kept, even after it went through earlier compactions. Sources are not touched.
 *
 * The merge streams (see mergeBlocks): memory holds one row group (~1.5 MB) per source plus the
 * output's symbols, whatever the sources' samples. Returns null only when `drop` removed every row.
 */
export async function compactBlocks(sources: string[], blocksDir: string, opts?: { drop?: undefined; onStats?: (s: CompactStats) => void }): Promise<BlockMeta>;
export async function compactBlocks(sources: string[], blocksDir: string, opts: CompactOptions): Promise<BlockMeta | null>;
export async function compactBlocks(sources: string[], blocksDir: string, opts: CompactOptions = {}): Promise<BlockMeta | null> {
  if (sources.length === 0) throw new Error("compactBlocks: no source blocks");
  const readers = await Promise.all(sources.map((dir) => BlockReader.open(dir)));
  const order = (m: BlockMeta) => [[...m.compaction.sources].sort()[0] ?? m.ulid, m.ulid].join(" ");
  readers.sort((a, b) => (order(a.meta) < order(b.meta) ? -1 : order(a.meta) > order(b.meta) ? 1 : 0));
  for (let i = 1; i < readers.length; i++)
    if (readers[i].meta.ulid === readers[i - 1].meta.ulid) throw new Error(`compactBlocks: block ${readers[i].meta.ulid} is listed twice`);

  const opened: BlockSource[] = [];
  try {
    for (const r of readers) opened.push(await BlockSource.open(r));
    const metas = readers.map((r) => r.meta);
    const through = metas.map((m) => m.wal?.throughSegment).filter((s): s is number => s !== undefined);
    const { meta, stats } = await mergeBlocks(opened, blocksDir, {
      drop: opts.drop,
      level: Math.max(...metas.map((m) => m.compaction.level)) + 1,
      sources: [...new Set(metas.flatMap((m) => m.compaction.sources))].sort(),
      walThroughSegment: through.length > 0 ? Math.max(...through) : undefined,
    });
    opts.onStats?.(stats);
    return meta;
  } finally {
    for (const s of opened) s.close();
  }
}

/**
 * Writes a copy of the block at `blockDir` into `blocksDir` without the rows of series matching
 * all of `drop` (series deletion); null when nothing remains. Exact duplicates go too, as in a
 * compaction. The copy keeps the block's sources but one level up, so that if the process dies
 * between writing it and deleting the original, start-up sees the original as superseded
 * (tenant-db's supersededBlocks) instead of serving both. Check first with the block's
 * `series(drop, all time)` that something matches: this always writes a copy.
 */
export async function rewriteWithout(blockDir: string, blocksDir: string, drop: Matcher[]): Promise<BlockMeta | null> {
  // `{}` would delete the whole block: that is retention's job, and almost surely a mistake here.
  if (drop.length === 0) throw new Error("rewriteWithout: no matchers; refusing to delete every series");
  return compactBlocks([blockDir], blocksDir, { drop });
}
