// BlockReader: answers the head's queries (ProfileReader) from a block on disk. Opening reads only
// meta.json; the index, profiles.parquet and symbols are opened on the first query that needs them.

import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { AsyncBuffer } from "hyparquet";
import { mergedProfileShell, type ProfileReader, type SelectQuery, type SeriesPoints, type SeriesQuery, type SpanQuery, type TimeRange } from "../head/read.ts";
import type { Labels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { matchesLabels, type Matcher } from "../model/selector.ts";
import { Tree } from "../model/tree.ts";
import { decodeBlockSymbols, type BlockSymbols } from "./block-symbols.ts";
import { seriesPoints } from "./block-merge.ts";
import { profileFromStackSums, treeFromStackSums } from "../head/stack-merge.ts";
import { BlockCorruptError, readMeta, type BlockMeta } from "./meta.ts";
import { INDEX_FILE, PROFILES_FILE, SYMBOLS_FILE } from "./schema.ts";
import type { IndexSeries, SeriesIndex, SeriesProfiles } from "./series-index.ts";
import { checkBlockFile, openBlockIndex, openProfilesParquet, readGroupColumns, type ParquetHandle } from "./block-files.ts";
import { storageStep } from "../storage-step.ts";

const NO_SPANS = new BigUint64Array(0);

/** A run of wanted sample rows [start, end), tagged with the caller's index of its series. */
interface RowRun {
  start: number;
  end: number;
  tag: number;
}

/** The selected part of a series: its profiles lo..hi-1 (hi = lo + count) and their rows. */
interface SeriesPart {
  series: IndexSeries;
  profiles: SeriesProfiles | null;
  lo: number;
  hi: number;
  run: RowRun;
}


export interface BlockReaderOptions {
  /**
   * A file of the block that is not in its directory but elsewhere (a bucket): its bytes, read by
   * range. Only profiles.parquet is read this way.
   */
  remote?: (relPath: string, size: number) => AsyncBuffer;
}

const isAll = (r: TimeRange) => r.start === 0 && r.end === 0;

/**
 * What opened blocks keep in memory (decoded symbols, the series index, scratch arrays), shared by
 * every BlockReader of the process: past the budget, the least recently used readers that no
 * query is using let theirs go, and reopen them when queried again. Without it, a query over many
 * blocks would leave every one of them resident.
 */
class ResidentBlocks {
  /** Least recently used first (a Map keeps insertion order). */
  private readonly readers = new Map<BlockReader, number>();
  private bytes = 0;
  // A day of soak blocks holds ~4.7 MB of symbols each: 32 MiB keeps the last several hours open
  // (what dashboards ask for) and costs a day-long query little, now that symbols open cheaply.
  budget = 32 * 2 ** 20;

  /** `r` now holds `bytes` in memory and was just used. */
  touch(r: BlockReader, bytes: number): void {
    this.bytes += bytes - (this.readers.get(r) ?? 0);
    this.readers.delete(r);
    this.readers.set(r, bytes);
    if (this.bytes <= this.budget) return;
    for (const [other] of this.readers) {
      if (this.bytes <= this.budget) break;
      if (other !== r && !other.busy) other.close();
    }
  }

  forget(r: BlockReader): void {
    this.bytes -= this.readers.get(r) ?? 0;
    this.readers.delete(r);
  }

  get residentBytes(): number {
    return this.bytes;
  }
}

const resident = new ResidentBlocks();

/** Sets the memory budget of opened blocks' symbols and indexes, for the whole process (bytes). */
export function setResidentBlockBudget(bytes: number): void {
  resident.budget = bytes;
}

/** Bytes opened blocks hold in memory now (estimated). */
export function residentBlockBytes(): number {
  return resident.residentBytes;
}

export class BlockReader implements ProfileReader {
  private index: SeriesIndex | null = null;
  private parquet: Promise<ParquetHandle> | null = null;
  private symbols: BlockSymbols | null = null;
  // Scratch for summing by stack id, reused across queries like the head's.
  private scratch = new Float64Array(0);
  private seen = new Uint8Array(0);
  private scratchBusy = false;
  /** Queries running on this reader: its resources are not released under them. */
  busy = 0;

  private constructor(
    readonly dir: string,
    readonly meta: BlockMeta,
    private readonly opts: BlockReaderOptions = {},
  ) {}

  /**
   * Reads and validates meta.json only, so opening many blocks is cheap. The directory must be
   * named after the block's ULID: a leftover `<ULID>.tmp` (an interrupted write) is not a block.
   */
  static async open(dir: string, opts: BlockReaderOptions = {}): Promise<BlockReader> {
    const meta = readMeta(dir);
    if (basename(dir) !== meta.ulid) throw new BlockCorruptError(dir, "meta.json", `directory name is not the block's ULID ${meta.ulid}, so it is not a finished block`);
    return new BlockReader(dir, meta, opts);
  }

  /**
   * A block whose meta is already known (from the catalog): nothing is read, so opening a thousand
   * blocks costs no file access. The directory must still be named after the block's ULID.
   */
  static fromMeta(dir: string, meta: BlockMeta): BlockReader {
    if (basename(dir) !== meta.ulid) throw new BlockCorruptError(dir, "meta.json", `directory name is not the block's ULID ${meta.ulid}, so it is not a finished block`);
    return new BlockReader(dir, meta);
  }

  /** Releases the index, the Parquet handle and the symbols; a later query opens them again. */
  close(): void {
    this.index?.close();
    this.index = null;
    this.parquet = null;
    this.symbols = null;
    this.scratch = new Float64Array(0);
    this.seen = new Uint8Array(0);
    resident.forget(this);
  }

  /** Whether the index or the symbols are in memory. */
  get isResident(): boolean {
    return this.index !== null || this.symbols !== null;
  }

  /** Estimated bytes held: decoded symbols, the index, the scratch. */
  private residentEstimate(): number {
    const file = (name: string) => this.meta.files.find((f) => f.relPath === name)?.sizeBytes ?? 0;
    return (this.symbols?.bytes ?? 0) + (this.index ? 2 * file(INDEX_FILE) : 0) + this.scratch.byteLength + this.seen.byteLength;
  }

  /** Runs a query with this reader marked in use, and accounts what it left resident. */
  private async using<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
      if (this.index || this.symbols) resident.touch(this, this.residentEstimate());
    }
  }

  private overlaps(r: TimeRange): boolean {
    return isAll(r) || (this.meta.maxTime >= r.start && this.meta.minTime <= r.end);
  }

  private openIndex(): SeriesIndex {
    this.index ??= openBlockIndex(this.dir, this.meta);
    return this.index;
  }

  private seriesProfiles(s: IndexSeries): SeriesProfiles {
    try {
      return this.openIndex().profiles(s.ref);
    } catch (e) {
      if (e instanceof BlockCorruptError) throw e;
      throw new BlockCorruptError(this.dir, INDEX_FILE, e instanceof Error ? e.message : String(e));
    }
  }

  private openSymbols(): BlockSymbols {
    if (this.symbols) return this.symbols;
    const path = checkBlockFile(this.dir, this.meta, SYMBOLS_FILE);
    try {
      this.symbols = decodeBlockSymbols(readFileSync(path));
    } catch (e) {
      throw new BlockCorruptError(this.dir, SYMBOLS_FILE, e instanceof Error ? e.message : String(e));
    }
    return this.symbols;
  }

  private openParquet(): Promise<ParquetHandle> {
    this.parquet ??= this.loadParquet().catch((e) => {
      this.parquet = null;
      throw e;
    });
    return this.parquet;
  }

  private loadParquet(): Promise<ParquetHandle> {
    const entry = this.meta.files.find((f) => f.relPath === PROFILES_FILE);
    const remote = entry && this.opts.remote && !existsSync(join(this.dir, PROFILES_FILE)) ? this.opts.remote(PROFILES_FILE, entry.sizeBytes) : null;
    return openProfilesParquet(this.dir, this.meta, remote);
  }

  /**
   * Series matching `matchers` with at least one profile in `r` (the head's rule). Checking the
   * profiles, not just the series' first and last time, keeps answers the same however the
   * series' profiles are split into blocks.
   */
  private select(matchers: Matcher[], r: TimeRange, profileType?: string): IndexSeries[] {
    if (!this.overlaps(r)) return [];
    const all = isAll(r);
    return this.openIndex().series.filter((s) => {
      if (profileType !== undefined && s.profileType !== profileType) return false;
      if (!all) {
        if (s.maxTime < r.start || s.minTime > r.end) return false;
        if (s.minTime < r.start || s.maxTime > r.end) {
          const t = this.seriesProfiles(s).timeMs;
          const i = lowerBound(t, r.start);
          if (i >= t.length || t[i] > r.end) return false;
        }
      }
      return matchesLabels(matchers, s.labels);
    });
  }

  /**
   * The profiles of each selected series inside the range, as row runs. Times are sorted within a
   * series, so the profiles in range are one contiguous run of rows. `needProfiles` decodes the
   * per-profile list even when the whole series is wanted (selectSeries needs times).
   */
  private parts(q: SelectQuery, needProfiles: boolean): SeriesPart[] {
    const out: SeriesPart[] = [];
    const all = isAll(q);
    for (const s of this.select(q.matchers, q, q.profileTypeId)) {
      const whole = all || (s.minTime >= q.start && s.maxTime <= q.end);
      if (whole && !needProfiles) {
        out.push({ series: s, profiles: null, lo: 0, hi: s.numProfiles, run: { start: s.firstRow, end: s.lastRow + 1, tag: out.length } });
        continue;
      }
      const p = this.seriesProfiles(s);
      const lo = whole ? 0 : lowerBound(p.timeMs, q.start);
      const hi = whole ? p.timeMs.length : lowerBound(p.timeMs, q.end + 1);
      // The head still reports a series with no profile in range (as a group without points).
      if (lo >= hi && !needProfiles) continue;
      const start = lo < hi ? p.rowStart[lo] : s.firstRow;
      const end = lo < hi ? p.rowStart[hi - 1] + p.sampleCount[hi - 1] : start;
      out.push({ series: s, profiles: p, lo, hi: Math.max(lo, hi), run: { start, end, tag: out.length } });
    }
    return out;
  }

  /**
   * Reads the wanted rows' columns and hands them to `visit` piece by piece, in row order: each
   * piece is rows [row, row + len) of run `tag`, at `off` in the arrays. Each row group with
   * wanted rows is read once, for all of them. Span ids are read with `withSpans` (the caller
   * checks the block has them).
   */
  private async scan(
    runs: RowRun[],
    withStacks: boolean,
    visit: (tag: number, row: number, stacks: Int32Array, values: Float64Array, off: number, len: number, spans: BigUint64Array) => void,
    withSpans = false,
  ): Promise<void> {
    if (runs.length === 0) return;
    const pq = await this.openParquet();
    const starts = pq.groupStart;
    const total = starts[starts.length - 1];
    // Pieces: runs cut at row-group boundaries, in row order (runs come sorted by series_ref).
    const pieces: RowRun[] = [];
    let g = 0;
    for (const r of runs) {
      if (r.start < 0 || r.end > total || r.start > r.end) throw new BlockCorruptError(this.dir, INDEX_FILE, `row range [${r.start}, ${r.end}) outside profiles.parquet (${total} rows)`);
      let a = r.start;
      while (a < r.end) {
        while (starts[g + 1] <= a) g++;
        const b = Math.min(r.end, starts[g + 1]);
        pieces.push({ start: a, end: b, tag: r.tag });
        a = b;
      }
    }
    let i = 0;
    let gi = 0;
    while (i < pieces.length) {
      const first = pieces[i];
      while (starts[gi + 1] <= first.start) gi++;
      let j = i + 1;
      // Every piece in the group at once: in the block's own layout a group's column is one page,
      // decoded whole whatever part of it is wanted.
      while (j < pieces.length && pieces[j].start < starts[gi + 1]) j++;
      const c = await readGroupColumns(this.dir, pq, gi, { withSpans, withStacks, rows: [first.start, pieces[j - 1].end] });
      const spans = c.spans ?? NO_SPANS;
      for (let k = i; k < j; k++) {
        const p = pieces[k];
        visit(p.tag, p.start, c.stacks, c.values, p.start - c.start, p.end - p.start, spans);
      }
      // The group's pages are garbage now. The engine let a day-long query's pages (~40 MB a
      // query on the soak's store) pile up to +220 MB of RSS over repeated queries; the heap
      // governor's look here about halves that, for ~15 ms per collection it makes.
      storageStep();
      i = j;
    }
  }

  async profileTypes(r: TimeRange): Promise<string[]> {
    return this.using(() => this.profileTypesNow(r));
  }

  private async profileTypesNow(r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.select([], r)) out.add(s.profileType);
    return [...out];
  }

  async labelNames(matchers: Matcher[], r: TimeRange): Promise<string[]> {
    return this.using(() => this.labelNamesNow(matchers, r));
  }

  private async labelNamesNow(matchers: Matcher[], r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.select(matchers, r)) for (const l of s.labels) out.add(l.name);
    return [...out];
  }

  async labelValues(name: string, matchers: Matcher[], r: TimeRange): Promise<string[]> {
    return this.using(() => this.labelValuesNow(name, matchers, r));
  }

  private async labelValuesNow(name: string, matchers: Matcher[], r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.select(matchers, r)) for (const l of s.labels) if (l.name === name && l.value !== "") out.add(l.value);
    return [...out];
  }

  async series(matchers: Matcher[], r: TimeRange): Promise<Labels[]> {
    return this.using(() => this.seriesNow(matchers, r));
  }

  private async seriesNow(matchers: Matcher[], r: TimeRange): Promise<Labels[]> {
    return this.select(matchers, r).map((s) => s.labels);
  }

  /**
   * Sums the selected samples by block stack id; returns the ids touched (ascending) and sums, or
   * null when no rows are selected (then no symbols are loaded). With `spans`, only samples of
   * those spans count, and a block without span ids selects nothing.
   */
  private async sumStacks(q: SelectQuery, spans?: Set<bigint>): Promise<{ sym: BlockSymbols; ids: Uint32Array; sums: Float64Array } | null> {
    const parts = this.parts(q, false);
    if (parts.length === 0) return null;
    if (spans && !(await this.openParquet()).hasSpans) return null;
    const sym = this.openSymbols();
    const n = sym.stackCount;
    // Queries on one reader may interleave at awaits: the shared scratch serves one at a time.
    const shared = !this.scratchBusy;
    if (shared && this.scratch.length < n) {
      this.scratch = new Float64Array(n);
      this.seen = new Uint8Array(n);
    }
    const acc = shared ? this.scratch : new Float64Array(n);
    const seen = shared ? this.seen : new Uint8Array(n);
    if (shared) this.scratchBusy = true;
    const touched: number[] = [];
    let bad = -1;
    try {
      await this.scan(
        parts.map((p) => p.run),
        true,
        (_tag, _row, stacks, values, off, len, sp) => {
          const b = accumulate(stacks, values, off, off + len, n, acc, seen, touched, spans ? { spans: sp, want: spans } : null);
          if (b !== -1) bad = b;
        },
        spans !== undefined,
      );
      const ids = Uint32Array.from(touched).sort();
      const sums = new Float64Array(ids.length);
      for (let i = 0; i < ids.length; i++) sums[i] = acc[ids[i]];
      if (bad !== -1) throw new BlockCorruptError(this.dir, PROFILES_FILE, `stack id ${bad} out of range (${n} stacks in ${SYMBOLS_FILE})`);
      return { sym, ids, sums };
    } finally {
      for (const id of touched) {
        acc[id] = 0;
        seen[id] = 0;
      }
      if (shared) this.scratchBusy = false;
    }
  }

  async selectMergeTree(q: SelectQuery): Promise<Tree> {
    return this.using(() => this.selectMergeTreeNow(q));
  }

  private async selectMergeTreeNow(q: SelectQuery): Promise<Tree> {
    const r = await this.sumStacks(q);
    return r ? treeFromStackSums(r.sym, r.ids, r.sums) : new Tree();
  }

  async selectMergeProfile(q: SelectQuery): Promise<Profile> {
    return this.using(() => this.selectMergeProfileNow(q));
  }

  private async selectMergeProfileNow(q: SelectQuery): Promise<Profile> {
    const r = await this.sumStacks(q);
    return r ? profileFromStackSums(q, r.sym, r.ids, r.sums) : mergedProfileShell(q);
  }

  async selectMergeSpanTree(q: SpanQuery): Promise<Tree> {
    return this.using(async () => {
      const r = await this.sumStacks(q, q.spans);
      return r ? treeFromStackSums(r.sym, r.ids, r.sums) : new Tree();
    });
  }

  async selectSeries(q: SeriesQuery): Promise<SeriesPoints[]> {
    return this.using(() => this.selectSeriesNow(q));
  }

  private async selectSeriesNow(q: SeriesQuery): Promise<SeriesPoints[]> {
    const parts = this.parts(q, true);
    // Per selected series, the total of each of its profiles in range.
    const totals = parts.map((p) => new Float64Array(p.hi - p.lo));
    const cursor = parts.map((p) => p.lo);
    await this.scan(
      parts.map((p) => p.run),
      false,
      (tag, row, _stacks, values, off, len) => {
        const p = parts[tag];
        const prof = p.profiles!;
        const t = totals[tag];
        let k = cursor[tag];
        for (let i = 0; i < len; i++) {
          while (row + i >= prof.rowStart[k] + prof.sampleCount[k]) k++;
          t[k - p.lo] += values[off + i];
        }
        cursor[tag] = k;
      },
    );

    return seriesPoints(
      q,
      parts.map((p, tag) => ({ labels: p.series.labels, timeMs: p.profiles!.timeMs.subarray(p.lo, p.hi), totals: totals[tag] })),
    );
  }
}

/** Only rows whose span id (spans[row]) is one of `want`. */
interface SpanFilter {
  spans: BigUint64Array;
  want: Set<bigint>;
}

/**
 * acc[id] += value for rows [from, to) (those `only` lets through); ids seen for the first time go
 * to `touched`. Returns an out-of-range id if one was met (and skipped), else -1: a damaged file
 * must not write past acc.
 */
function accumulate(
  stacks: Int32Array,
  values: Float64Array,
  from: number,
  to: number,
  n: number,
  acc: Float64Array,
  seen: Uint8Array,
  touched: number[],
  only: SpanFilter | null,
): number {
  let bad = -1;
  for (let i = from; i < to; i++) {
    if (only !== null && !only.want.has(only.spans[i])) continue;
    const id = stacks[i];
    if (!(id >= 0 && id < n)) {
      bad = id;
      continue;
    }
    if (seen[id] === 0) {
      seen[id] = 1;
      touched.push(id);
    }
    acc[id] += values[i];
  }
  return bad;
}

/** First index i with a[i] >= x (a sorted ascending). */
function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
