// mergeBlocks: merges blocks into one, streaming: series by series in label order, each series'
// profiles merged by time across the sources and written as they are read. Memory holds decoded
// row groups of the sources (one per source read in order; up to a budget for sources read out of
// order), one row group of output, the output's symbols and per-profile metadata (the series index
// being built): never the sources' samples as a whole.

import { matchesLabels, type Matcher } from "../model/selector.ts";
import { BlockCorruptError, type BlockMeta } from "./meta.ts";
import { BlockSource, GroupCache, type SampleRows } from "./block-source.ts";
import { BlockWriter, compareSeriesKeys, seriesKey, sortByStack } from "./block-writer.ts";
import { PROFILES_FILE, SYMBOLS_FILE } from "./schema.ts";
import { StackRemap } from "./stack-remap.ts";
import type { BlockSymbols } from "./block-symbols.ts";
import { encodeBlockSymbols } from "./symbols-file-writer.ts";
import { SymbolTable } from "../head/symbol-table.ts";
import type { IndexSeries, SeriesProfiles } from "./series-index.ts";
import type { Labels } from "../model/labels.ts";
import { storageReleased, storageGroupWritten, storageStep } from "../storage-step.ts";

export interface MergeOptions {
  /** Leave out the rows of series matching ALL these matchers; empty or missing drops nothing. */
  drop?: Matcher[];
  level?: number;
  sources?: string[];
  walThroughSegment?: number;
  rowGroupSize?: number;
  /** Budget of decoded source row groups kept (see GroupCache). Default DEFAULT_MERGE_CACHE_BYTES. */
  cacheBytes?: number;
}

/**
 * 5 to 40 row groups (16K–128K rows, 0.2–1.5 MiB each decoded). A merge of sources in label order (every
 * block written now) needs one per source; blocks cut from a head by earlier versions keep the
 * head's series order, are read out of order and would need all their groups kept (~15 MB per
 * 32 MiB head), which no small budget covers. Measured on the soak's blocks, with 128K-row groups
 * then (a 2 h merged block + 3 head blocks): 370 group decodes at 8 MiB, 324 at 16 MiB, 530 at
 * 6 MiB; the merge took as long at 8 as at 16 MiB and peaked ~10 MB lower.
 */
export const DEFAULT_MERGE_CACHE_BYTES = 8 << 20;

export interface MergeStats {
  /** Rows (profiles × sample types) written. */
  rows: number;
  /** Rows left out because their series matched `drop`. */
  droppedRows: number;
  /** Rows left out because their series already held a row at the same time_ms. */
  duplicateRows: number;
}

export interface MergeResult {
  /** The new block, or null when nothing was left to write. */
  meta: BlockMeta | null;
  stats: MergeStats;
  /** Sizes of what the merge held besides row groups, for logs and tests. */
  symbols: { stacks: number; locations: number; functions: number; bytes: number };
}

/** One source's part of an output series. */
interface Part {
  src: number;
  series: IndexSeries;
}

/**
 * Merges the blocks `sources` (opened, in priority order) into a new block under `blocksDir`.
 * When two rows of a series share a time_ms, the one from the earliest source wins, and within a
 * source the first; the others are dropped as duplicates. Sources are not modified.
 */
export async function mergeBlocks(sources: BlockSource[], blocksDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  const drop = opts.drop ?? [];
  const stats: MergeStats = { rows: 0, droppedRows: 0, duplicateRows: 0 };

  // The union of the sources' series, in label order; each with its parts in source order.
  const byKey = new Map<string, { labels: Labels; profileType: string; parts: Part[] }>();
  sources.forEach((source, src) => {
    for (const s of source.series) {
      const key = seriesKey(s.labels);
      const e = byKey.get(key);
      if (e) e.parts.push({ src, series: s });
      else byKey.set(key, { labels: s.labels, profileType: s.profileType, parts: [{ src, series: s }] });
    }
  });
  const series = [...byKey.keys()].sort(compareSeriesKeys).map((k) => byKey.get(k)!);
  byKey.clear();

  const out = new SymbolTable();
  // One source's symbols at a time: decoded, their locations interned, then let go and collected
  // before the next. Each leaves 10–30 MB of garbage (the file,
  // decoded strings); four at once, before any collection, raised a merge's peak by ~55 MB.
  // Sources of one window hold mostly the same services' symbols, so the output is about the size
  // of the first and is allocated at that size once (growing it cost a merge ~2× its size in
  // garbage); its stacks at the largest source's count.
  const remaps: StackRemap[] = [];
  for (const source of sources) {
    const sym = source.symbols();
    if (remaps.length === 0) out.reserve({ functions: sym.functionCount, locations: sym.packed.mapping.length, lines: sym.packed.lineFn.length, stacks: 0 });
    const remap = new StackRemap(sym, out);
    remap.internLocations();
    remaps.push(remap);
    storageReleased();
  }
  out.reserve({ functions: 0, locations: 0, lines: 0, stacks: Math.max(...remaps.map((r) => r.stackCount)) });
  const rows: (SampleRows | null)[] = sources.map(() => null);
  const cache = new GroupCache(opts.cacheBytes ?? DEFAULT_MERGE_CACHE_BYTES);
  let ids = new Uint32Array(1024);
  let values = new Float64Array(1024);
  let sortKeys = new Float64Array(1024);
  let spans = new BigUint64Array(1024);
  // The row being read: its source's remap, and whether any of its samples has a span id. One
  // visitor for every read, not a closure per row.
  let remap: StackRemap | null = null;
  let rowSpans = false;
  const visit = (from: number, blockIds: Int32Array, blockValues: Float64Array, at: number, len: number, blockSpans: BigUint64Array | null) => {
    const m = remap!;
    for (let j = 0; j < len; j++) ids[from + j] = m.map(blockIds[at + j]);
    values.set(blockValues.subarray(at, at + len), from);
    if (blockSpans) {
      spans.set(blockSpans.subarray(at, at + len), from);
      rowSpans = true;
    }
  };

  // The output has a span_id column when a source has one.
  let withSpans = false;
  for (const source of sources) {
    if ((await source.rows(cache)).hasSpans) withSpans = true;
    // Parsing a large footer makes ~100K BigInts of garbage (hyparquet reads every i64 as one).
    // Collected source by source, they no longer grew the heap by ~25 MB for the whole merge.
    storageReleased();
  }
  const expectedSamples = sources.reduce((n, s) => n + s.meta.stats.numSamples, 0);
  const w = BlockWriter.create(blocksDir, { rowGroupSize: opts.rowGroupSize, spans: withSpans, expectedSamples });
  try {
    // Announce every read to come, so a source read out of row order keeps the groups it will
    // come back to (GroupCache), and one read in order lets each go once past it.
    let k = 0;
    for (const e of series) {
      if (drop.length > 0 && matchesLabels(drop, e.labels)) {
        for (const p of e.parts) stats.droppedRows += p.series.numProfiles;
        continue;
      }
      series[k++] = e;
      for (const p of e.parts) (rows[p.src] ??= await sources[p.src].rows(cache)).pin(p.series.firstRow, p.series.lastRow);
    }
    series.length = k;

    for (const { labels, profileType, parts } of series) {
      storageStep();
      const profiles: SeriesProfiles[] = parts.map((p) => sources[p.src].profiles(p.series));
      const cursor = new Array<number>(parts.length).fill(0);
      let started = false;
      for (;;) {
        // The earliest time left; on a tie the earliest source (the lowest part) wins.
        let win = -1;
        let t = Infinity;
        for (let k = 0; k < parts.length; k++) {
          if (cursor[k] < profiles[k].timeMs.length && profiles[k].timeMs[cursor[k]] < t) {
            t = profiles[k].timeMs[cursor[k]];
            win = k;
          }
        }
        if (win < 0) break;
        const p = profiles[win];
        const i = cursor[win];
        const n = p.sampleCount[i];
        const src = parts[win].src;
        if (ids.length < n) {
          ids = new Uint32Array(n);
          values = new Float64Array(n);
          sortKeys = new Float64Array(n);
          spans = new BigUint64Array(n);
        }
        const rm = (remap = remaps[src]);
        rowSpans = false;
        const r = rows[src]!;
        // Most profiles lie in the group already decoded: read them without an async call.
        if (!r.tryRead(p.rowStart[i], n, visit)) await r.read(p.rowStart[i], n, visit);
        if (rm.bad !== -1) throw new BlockCorruptError(sources[src].dir, PROFILES_FILE, `stack id ${rm.bad} out of range (${rm.stackCount} stacks in ${SYMBOLS_FILE})`);
        sortByStack(ids, values, n, sortKeys, rowSpans ? spans : null);
        if (!started) {
          w.startSeries(labels, profileType);
          started = true;
        }
        if (w.appendProfile(t, p.durationNs[i], ids, values, n, rowSpans ? spans : null)) await storageGroupWritten();
        stats.rows++;
        // Every other row at this time, in any source, is a duplicate.
        for (let k = 0; k < parts.length; k++) {
          const tk = profiles[k].timeMs;
          while (cursor[k] < tk.length && tk[cursor[k]] === t) {
            if (k !== win || cursor[k] !== i) stats.duplicateRows++;
            cursor[k]++;
          }
        }
      }
      for (const p of parts) rows[p.src]!.unpin(p.series.firstRow, p.series.lastRow);
    }

    const symbols = {
      stacks: out.stackCount,
      locations: out.locationCount,
      functions: out.functionCount,
      bytes: out.bytes + remaps.reduce((b, r) => b + r.bytes, 0),
    };
    if (stats.rows === 0) {
      w.abort();
      return { meta: null, stats, symbols };
    }
    // The rows are written: what read them goes before the symbols are encoded (a merge of four
    // head blocks peaked ~20 MB lower).
    remaps.length = 0;
    remap = null;
    rows.fill(null);
    cache.clear();
    storageReleased();
    // Every stack in `out` was interned for a written row (or is an ancestor of one), so all are
    // written, with the ids the rows were written with.
    const { bytes } = encodeBlockSymbols(out, null);
    const meta = await w.finish(bytes, { level: opts.level, sources: opts.sources, walThroughSegment: opts.walThroughSegment });
    storageReleased();
    return { meta, stats, symbols };
  } catch (e) {
    w.abort();
    throw e;
  }
}
