// loadBlockIntoHead: reads a block back into a Head (series, rows, and the symbols those rows use),
// so the block writer can merge blocks (compaction) or copy one without some series (deletion).

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parquetMetadataAsync, parquetRead, type AsyncBuffer, type FileMetaData } from "hyparquet";
import type { Head } from "../head/head.ts";
import { matchesLabels, type Matcher } from "../model/selector.ts";
import { decodeBlockSymbols, type BlockSymbols } from "./block-symbols.ts";
import { BlockCorruptError, type BlockMeta } from "./meta.ts";
import { BlockReader } from "./reader.ts";
import { COL_STACK, COL_VALUE, INDEX_FILE, PROFILES_FILE, PROFILES_SCHEMA, SYMBOLS_FILE, parquetDecompressors } from "./schema.ts";
import { SeriesIndex } from "./series-index.ts";

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

const UNSET = 0xffffffff;

/**
 * Appends every row of a block to `head`, interning the block's symbols into the head's table.
 *
 * Exact duplicates are dropped, as Pyroscope's compactor does: a row whose series (same full
 * label set) already holds a row with the same time_ms, in the head or earlier in this block,
 * is skipped, and the row that got there first is kept. Loading blocks in a fixed order therefore
 * decides deterministically which copy survives.
 */
export async function loadBlockIntoHead(block: BlockReader | string, head: Head, opts: LoadBlockOptions = {}): Promise<LoadBlockResult> {
  const reader = typeof block === "string" ? await BlockReader.open(block) : block;
  const { dir, meta } = reader;
  const drop = opts.drop ?? [];
  const out: LoadBlockResult = { rows: 0, droppedRows: 0, duplicateRows: 0 };

  const index = openIndex(dir, meta);
  try {
    const kept = index.series.filter((s) => {
      const gone = drop.length > 0 && matchesLabels(drop, s.labels);
      if (gone) out.droppedRows += s.numProfiles;
      return !gone;
    });
    if (kept.length === 0) return out;

    const sym = openSymbols(dir, meta);
    const stacks = new StackMapper(sym, head);
    const rows = new SampleRows(dir, await openParquet(dir, meta));
    for (const s of kept) {
      const series = head.seriesFor(s.labels);
      // Times already in the series, built only once a row arrives at or before its newest time:
      // blocks loaded in time order append past the end and never pay for the set.
      let times: Set<number> | null = null;
      const p = index.profiles(s.ref);
      if (p.timeMs.length !== s.numProfiles) throw new BlockCorruptError(dir, INDEX_FILE, `series ${s.ref} holds ${p.timeMs.length} profiles, its row says ${s.numProfiles}`);
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
        if (stacks.bad !== -1) throw new BlockCorruptError(dir, PROFILES_FILE, `stack id ${stacks.bad} out of range (${sym.stackCount} stacks in ${SYMBOLS_FILE})`);
        head.appendRow(series, t, p.durationNs[i], ids, values);
        times?.add(t);
        out.rows++;
      }
    }
    return out;
  } finally {
    index.close();
  }
}

/**
 * Block stack id → head stack id, interned on first use, so the head gets only the stacks of the
 * rows it keeps. Block stacks list parents before children, as the head's do.
 */
class StackMapper {
  private readonly ids: Uint32Array;
  private globalLoc: Uint32Array | null = null;
  private path: number[] = [];
  /** An out-of-range block stack id met (then mapped to 0), or -1. */
  bad = -1;

  constructor(
    private readonly sym: BlockSymbols,
    private readonly head: Head,
  ) {
    this.ids = new Uint32Array(sym.stackCount).fill(UNSET);
    this.ids[0] = 0;
  }

  map(id: number): number {
    const m = this.ids[id];
    if (m !== undefined && m !== UNSET) return m;
    if (!(id >= 0 && id < this.ids.length)) {
      this.bad = id;
      return 0;
    }
    return this.intern(id);
  }

  private intern(id: number): number {
    const sym = this.head.symbols;
    // Locations are few next to samples: intern them all at the first stack that needs one.
    const globalLoc = (this.globalLoc ??= sym.internLocations(this.sym));
    // Climb to the nearest ancestor already mapped, then intern back down to `id`.
    const path = this.path;
    path.length = 0;
    let node = id;
    while (this.ids[node] === UNSET) {
      path.push(node);
      node = this.sym.stackParent[node];
    }
    let parent = this.ids[node];
    for (let i = path.length - 1; i >= 0; i--) {
      const b = path[i];
      parent = sym.internStackNode(parent, globalLoc[this.sym.stackLoc[b]]);
      this.ids[b] = parent;
    }
    return parent;
  }
}

/** First row of each row group, plus the total at the end. */
interface ParquetHandle {
  file: AsyncBuffer;
  metadata: FileMetaData;
  groupStart: number[];
}

/**
 * Sample rows of profiles.parquet read one whole row group at a time, forward: a compaction
 * visits every row in order, so each group is decoded once and memory stays at one group.
 */
class SampleRows {
  private group = -1;
  private stacks = new Int32Array(0);
  private values = new Float64Array(0);

  constructor(
    private readonly dir: string,
    private readonly pq: ParquetHandle,
  ) {}

  /** Hands rows [start, start + n) to `visit` in pieces: piece rows are at `at` in the arrays, `from` in the profile. */
  async read(start: number, n: number, visit: (from: number, stacks: Int32Array, values: Float64Array, at: number, len: number) => void): Promise<void> {
    const starts = this.pq.groupStart;
    const total = starts[starts.length - 1];
    if (start < 0 || start + n > total) throw new BlockCorruptError(this.dir, INDEX_FILE, `row range [${start}, ${start + n}) outside profiles.parquet (${total} rows)`);
    let done = 0;
    while (done < n) {
      const row = start + done;
      if (this.group < 0 || row < starts[this.group] || row >= starts[this.group + 1]) await this.load(groupOf(starts, row));
      const end = starts[this.group + 1];
      const len = Math.min(n - done, end - row);
      visit(done, this.stacks, this.values, row - starts[this.group], len);
      done += len;
    }
  }

  private async load(g: number): Promise<void> {
    const start = this.pq.groupStart[g];
    const end = this.pq.groupStart[g + 1];
    const n = end - start;
    if (this.values.length < n) {
      this.stacks = new Int32Array(n);
      this.values = new Float64Array(n);
    }
    const stacks = this.stacks;
    const values = this.values;
    let gotStacks = 0;
    let gotValues = 0;
    try {
      await parquetRead({
        file: this.pq.file,
        metadata: this.pq.metadata,
        columns: [COL_STACK, COL_VALUE],
        rowStart: start,
        rowEnd: end,
        compressors: parquetDecompressors,
        onChunk: (c) => {
          const lo = Math.max(start, c.rowStart);
          const hi = Math.min(end, c.rowEnd);
          if (hi <= lo) return;
          const dst: Int32Array | Float64Array | null = c.columnName === COL_VALUE ? values : c.columnName === COL_STACK ? stacks : null;
          if (!dst) return;
          const src = c.columnData as ArrayLike<number>;
          const from = lo - c.rowStart;
          if (ArrayBuffer.isView(src)) dst.set((src as unknown as Float64Array).subarray(from, from + hi - lo), lo - start);
          else for (let k = 0; k < hi - lo; k++) dst[lo - start + k] = src[from + k];
          if (dst === values) gotValues += hi - lo;
          else gotStacks += hi - lo;
        },
      });
    } catch (e) {
      throw new BlockCorruptError(this.dir, PROFILES_FILE, e instanceof Error ? e.message : String(e));
    }
    if (gotValues !== n || gotStacks !== n) throw new BlockCorruptError(this.dir, PROFILES_FILE, `row group ${g} could not be read in full`);
    this.group = g;
  }
}

/** The row group holding `row` (starts ascending, row inside the file). */
function groupOf(starts: number[], row: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Checks that a block file is there with the size meta.json recorded; returns its path. */
function checkFile(dir: string, meta: BlockMeta, name: string): string {
  const want = meta.files.find((f) => f.relPath === name);
  if (!want) throw new BlockCorruptError(dir, name, "not listed in meta.json");
  const path = join(dir, name);
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new BlockCorruptError(dir, name, (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : String(e));
  }
  if (size !== want.sizeBytes) throw new BlockCorruptError(dir, name, `size ${size} bytes, meta.json says ${want.sizeBytes}`);
  return path;
}

function openIndex(dir: string, meta: BlockMeta): SeriesIndex {
  const path = checkFile(dir, meta, INDEX_FILE);
  let index: SeriesIndex;
  try {
    index = SeriesIndex.open(path);
  } catch (e) {
    throw new BlockCorruptError(dir, INDEX_FILE, e instanceof Error ? e.message : String(e));
  }
  if (index.series.length !== meta.stats.numSeries) {
    index.close();
    throw new BlockCorruptError(dir, INDEX_FILE, `${index.series.length} series, meta.json says ${meta.stats.numSeries}`);
  }
  return index;
}

function openSymbols(dir: string, meta: BlockMeta): BlockSymbols {
  const path = checkFile(dir, meta, SYMBOLS_FILE);
  try {
    return decodeBlockSymbols(readFileSync(path));
  } catch (e) {
    throw new BlockCorruptError(dir, SYMBOLS_FILE, e instanceof Error ? e.message : String(e));
  }
}

async function openParquet(dir: string, meta: BlockMeta): Promise<ParquetHandle> {
  const path = checkFile(dir, meta, PROFILES_FILE);
  const size = meta.files.find((f) => f.relPath === PROFILES_FILE)!.sizeBytes;
  const f = Bun.file(path);
  const file: AsyncBuffer = { byteLength: size, slice: (start, end) => f.slice(start, end ?? size).arrayBuffer() };
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new BlockCorruptError(dir, PROFILES_FILE, e instanceof Error ? e.message : String(e));
  }
  const cols = metadata.schema.slice(1).map((c) => `${c.name}:${c.type}`);
  const want = PROFILES_SCHEMA.slice(1).map((c) => `${c.name}:${c.type}`);
  if (cols.join() !== want.join()) throw new BlockCorruptError(dir, PROFILES_FILE, `unexpected columns ${cols.join(", ")}`);
  if (Number(metadata.num_rows) !== meta.stats.numSamples)
    throw new BlockCorruptError(dir, PROFILES_FILE, `${metadata.num_rows} rows, meta.json says ${meta.stats.numSamples} samples`);
  const groupStart = [0];
  for (const g of metadata.row_groups) groupStart.push(groupStart[groupStart.length - 1] + Number(g.num_rows));
  return { file, metadata, groupStart };
}
