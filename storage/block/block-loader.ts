// loadBlockIntoHead: reads a block back into a Head (series, rows, and the symbols those rows use).
// Compaction no longer goes through a head (see block-merger.ts, which streams); this stays for
// tools and tests that want a block's content in memory, and as the merge's reference behaviour.

import type { Head } from "../head/head.ts";
import { matchesLabels, type Matcher } from "../model/selector.ts";
import { BlockSource } from "./block-source.ts";
import { BlockCorruptError } from "./meta.ts";
import type { BlockReader } from "./reader.ts";
import { PROFILES_FILE, SYMBOLS_FILE } from "./schema.ts";
import { StackRemap } from "./stack-remap.ts";

export interface LoadBlockOptions {
  /**
   * Rows of series whose labels match ALL these matchers are left out (series deletion). An
   * empty or missing list drops nothing, unlike a query, where `{}` selects everything.
   */
  drop?: Matcher[];
}

export interface LoadBlockResult {
  /** Rows (profiles × sample types) appended to the head. */
  rows: number;
  /** Rows left out because their series matched `drop`. */
  droppedRows: number;
  /** Rows left out because their series already held a row at the same time_ms. */
  duplicateRows: number;
}

/**
 * Appends every row of a block to `head`, interning the block's symbols into the head's table.
 *
 * Exact duplicates are dropped, as Pyroscope's compactor does: a row whose series (same full
 * label set) already holds a row with the same time_ms, in the head or earlier in this block,
 * is skipped, and the row that got there first is kept. Loading blocks in a fixed order therefore
 * decides deterministically which copy survives.
 */
export async function loadBlockIntoHead(block: BlockReader | string, head: Head, opts: LoadBlockOptions = {}): Promise<LoadBlockResult> {
  const drop = opts.drop ?? [];
  const out: LoadBlockResult = { rows: 0, droppedRows: 0, duplicateRows: 0 };
  const source = await BlockSource.open(block);
  try {
    const kept = source.series.filter((s) => {
      const gone = drop.length > 0 && matchesLabels(drop, s.labels);
      if (gone) out.droppedRows += s.numProfiles;
      return !gone;
    });
    if (kept.length === 0) return out;

    const stacks = new StackRemap(source.symbols(), head.symbols);
    const rows = await source.rows();
    for (const s of kept) {
      const series = head.seriesFor(s.labels);
      // Times already in the series, built only once a row arrives at or before its newest time:
      // blocks loaded in time order append past the end and never pay for the set.
      let times: Set<number> | null = null;
      const p = source.profiles(s);
      for (let i = 0; i < p.timeMs.length; i++) {
        const t = p.timeMs[i];
        if (series.timeMs.length > 0 && t <= series.maxTime) {
          times ??= new Set(series.timeMs);
          if (times.has(t)) {
            out.duplicateRows++;
            continue;
          }
        }
        const n = p.sampleCount[i];
        const ids = new Uint32Array(n);
        const values = new Float64Array(n);
        await rows.read(p.rowStart[i], n, (from, blockIds, blockValues, at, len) => {
          for (let j = 0; j < len; j++) ids[from + j] = stacks.map(blockIds[at + j]);
          values.set(blockValues.subarray(at, at + len), from);
        });
        if (stacks.bad !== -1) throw new BlockCorruptError(source.dir, PROFILES_FILE, `stack id ${stacks.bad} out of range (${stacks.stackCount} stacks in ${SYMBOLS_FILE})`);
        head.appendRow(series, t, p.durationNs[i], ids, values);
        times?.add(t);
        out.rows++;
      }
    }
    return out;
  } finally {
    source.close();
  }
}
