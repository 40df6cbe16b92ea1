// writeBlock: cuts a head into an immutable block on disk. Everything is written to <ULID>.tmp,
// fsynced, and renamed into place, so a block directory either is complete or does not exist.

import type { Head, MemSeries } from "../head/head.ts";
import { BlockWriter, compareSeriesKeys, sortByStack, type FinishOptions } from "./block-writer.ts";
import { encodeBlockSymbols } from "./symbols-file-writer.ts";
import type { BlockMeta } from "./meta.ts";
import { storageReleased, storageGroupWritten, storageStep } from "../storage-step.ts";

export interface WriteBlockOptions extends FinishOptions {
  ulid?: string;
  rowGroupSize?: number;
}

/** Writes `head` as a block under `blocksDir` and returns its meta. The head is not modified. */
export async function writeBlock(head: Head, blocksDir: string, opts: WriteBlockOptions = {}): Promise<BlockMeta> {
  // Series in label order, the order merges write and read them in: a merge then reads every
  // source forward, each row group once (in the head's order it jumped between groups).
  const series = head.series.filter((s) => s.timeMs.length > 0).sort((a, b) => compareSeriesKeys(a.key, b.key));
  if (series.length === 0) throw new Error("writeBlock: the head holds no profiles");
  const w = BlockWriter.create(blocksDir, { ...opts, spans: head.hasSpans, expectedSamples: head.samples });
  try {
    // Symbols first: the rows need the block's stack ids.
    // Only the stacks the rows use: the head may share its symbols with the head after it.
    const { bytes, stackMap } = encodeBlockSymbols(head.symbols, head.usedStacks());

    let ids = new Uint32Array(0);
    let values = new Float64Array(0);
    let keys = new Float64Array(0);
    let spans = new BigUint64Array(0);
    for (const s of series) {
      storageStep();
      w.startSeries(s.labels, s.profileType);
      for (const r of timeOrder(s)) {
        const src = s.rowStacks(r);
        const n = src.length;
        if (ids.length < n) {
          ids = new Uint32Array(n);
          values = new Float64Array(n);
          keys = new Float64Array(n);
          spans = new BigUint64Array(n);
        }
        for (let i = 0; i < n; i++) ids[i] = stackMap[src[i]];
        values.set(s.rowValues(r));
        const sp = s.spans[r];
        if (sp) spans.set(sp);
        sortByStack(ids, values, n, keys, sp ? spans : null);
        if (w.appendProfile(s.timeMs[r], s.durationNs[r], ids, values, n, sp ? spans : null)) await storageGroupWritten();
      }
    }
    const meta = await w.finish(bytes, opts);
    storageReleased();
    return meta;
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Row indexes of a series in time order (stable: equal times keep their append order). */
function timeOrder(s: MemSeries): number[] {
  const order = s.timeMs.map((_, i) => i);
  if (!s.sorted) order.sort((a, b) => s.timeMs[a] - s.timeMs[b] || a - b);
  return order;
}
