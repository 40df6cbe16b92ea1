// BlockSource: one block opened to be read through whole, as compaction and series deletion do:
// its series index, its symbols, and its sample rows read forward one row group at a time. Every
// file is checked against meta.json, and damage is reported as BlockCorruptError naming the block.

import { readFileSync } from "node:fs";
import { checkBlockFile, openBlockIndex, openProfilesParquet, readGroupColumns, type ParquetHandle } from "./block-files.ts";
import { decodeBlockSymbols, type BlockSymbols } from "./block-symbols.ts";
import { BlockCorruptError, type BlockMeta } from "./meta.ts";
import { BlockReader } from "./reader.ts";
import { INDEX_FILE, SYMBOLS_FILE } from "./schema.ts";
import { SeriesIndex, type IndexSeries, type SeriesProfiles } from "./series-index.ts";

export class BlockSource {
  private rowsP: Promise<SampleRows> | null = null;

  private constructor(
    readonly dir: string,
    readonly meta: BlockMeta,
    readonly index: SeriesIndex,
  ) {}

  /** Opens the series index (checked against meta.json); symbols and rows open on first use. */
  static async open(block: BlockReader | string): Promise<BlockSource> {
    const { dir, meta } = typeof block === "string" ? await BlockReader.open(block) : block;
    return new BlockSource(dir, meta, openBlockIndex(dir, meta));
  }

  get series(): IndexSeries[] {
    return this.index.series;
  }

  /** A series' profiles in time order, checked against its index row. */
  profiles(s: IndexSeries): SeriesProfiles {
    let p: SeriesProfiles;
    try {
      p = this.index.profiles(s.ref);
    } catch (e) {
      throw new BlockCorruptError(this.dir, INDEX_FILE, e instanceof Error ? e.message : String(e));
    }
    if (p.timeMs.length !== s.numProfiles) throw new BlockCorruptError(this.dir, INDEX_FILE, `series ${s.ref} holds ${p.timeMs.length} profiles, its row says ${s.numProfiles}`);
    return p;
  }

  /** Decodes symbols.bin; the caller keeps what it needs (it is not cached here). */
  symbols(): BlockSymbols {
    const path = checkBlockFile(this.dir, this.meta, SYMBOLS_FILE);
    try {
      return decodeBlockSymbols(readFileSync(path));
    } catch (e) {
      throw new BlockCorruptError(this.dir, SYMBOLS_FILE, e instanceof Error ? e.message : String(e));
    }
  }

  /** The sample rows, opened once; decoded groups are kept in `cache` (by default, one group). */
  rows(cache: GroupCache = new GroupCache(0)): Promise<SampleRows> {
    this.rowsP ??= openProfilesParquet(this.dir, this.meta).then((pq) => new SampleRows(this.dir, pq, cache));
    return this.rowsP;
  }

  close(): void {
    this.index.close();
    this.rowsP = null;
  }
}

/** A decoded row group of one source: its stack_id and value columns, and span_id if it has one. */
interface CachedGroup {
  owner: SampleRows;
  group: number;
  stacks: Int32Array;
  values: Float64Array;
  spans: BigUint64Array | null;
}

/**
 * Decoded row groups kept across the sources of one merge. A source read in row order needs one
 * group at a time; a source whose series are not in the merge's order (blocks cut from a head
 * keep the head's series order) jumps between its groups, and keeping a group until its last
 * series is read saves decoding it again (~5 ms) for every series. Sources say which groups they
 * still need (SampleRows.pin); past the byte budget the least recently used group goes anyway, so
 * memory stays bounded whatever the sources hold. At least one group is always kept.
 */
export class GroupCache {
  /** Insertion order is use order: the first entry is the least recently used. */
  private readonly lru = new Set<CachedGroup>();
  private bytes = 0;

  constructor(readonly budgetBytes: number) {}

  /** Bytes of decoded groups held now. */
  get heldBytes(): number {
    return this.bytes;
  }

  touch(e: CachedGroup): void {
    this.lru.delete(e);
    this.lru.add(e);
  }

  /** Evicts until a group of `bytes` fits the budget (or nothing is left to evict). */
  makeRoom(bytes: number): void {
    for (const e of this.lru) {
      if (this.bytes + bytes <= this.budgetBytes) break;
      this.release(e);
    }
  }

  add(e: CachedGroup): void {
    this.lru.add(e);
    this.bytes += groupBytes(e);
  }

  /** Drops every group. */
  clear(): void {
    for (const e of this.lru) this.release(e);
  }

  /** Drops a group from the cache (and its source). */
  release(e: CachedGroup): void {
    if (!this.lru.delete(e)) return;
    this.bytes -= groupBytes(e);
    e.owner.forget(e.group);
  }
}

const groupBytes = (e: CachedGroup) => e.values.length * 12 + (e.spans?.byteLength ?? 0);

/**
 * Sample rows of profiles.parquet, decoded one whole row group at a time (a group's column is one
 * page) and kept in a GroupCache: reading a block's rows in order decodes each group once.
 */
export class SampleRows {
  private readonly groups = new Map<number, CachedGroup>();
  private last: CachedGroup | null = null;
  /** Per group, the reads still to come that were announced with pin(). */
  private readonly pins: Uint32Array;

  constructor(
    private readonly dir: string,
    private readonly pq: ParquetHandle,
    private readonly cache: GroupCache,
  ) {
    this.pins = new Uint32Array(Math.max(0, pq.groupStart.length - 1));
  }

  /**
   * Announces a read of rows [first, last] to come: their groups are kept (within the cache's
   * budget) until unpin() says the read is done.
   */
  pin(first: number, last: number): void {
    this.eachGroup(first, last, (g) => this.pins[g]++);
  }

  /** The read announced by pin(first, last) is done: groups no other read needs are let go. */
  unpin(first: number, last: number): void {
    this.eachGroup(first, last, (g) => {
      if (this.pins[g] > 0 && --this.pins[g] === 0) {
        const e = this.groups.get(g);
        if (e) this.cache.release(e);
      }
    });
  }

  private eachGroup(first: number, last: number, f: (g: number) => void): void {
    const starts = this.pq.groupStart;
    const total = starts[starts.length - 1];
    if (last < first || first >= total || last < 0) return;
    const to = groupOf(starts, Math.min(last, total - 1));
    for (let g = groupOf(starts, Math.max(0, first)); g <= to; g++) f(g);
  }

  /** Whether the rows carry span ids (else `spans` is null in read()). */
  get hasSpans(): boolean {
    return this.pq.hasSpans;
  }

  /** Hands rows [start, start + n) to `visit` in pieces: piece rows are at `at` in the arrays, `from` in the profile. */
  async read(
    start: number,
    n: number,
    visit: (from: number, stacks: Int32Array, values: Float64Array, at: number, len: number, spans: BigUint64Array | null) => void,
  ): Promise<void> {
    const starts = this.pq.groupStart;
    const total = starts[starts.length - 1];
    if (start < 0 || start + n > total) throw new BlockCorruptError(this.dir, INDEX_FILE, `row range [${start}, ${start + n}) outside profiles.parquet (${total} rows)`);
    let done = 0;
    while (done < n) {
      const row = start + done;
      let e = this.last;
      if (!e || row < starts[e.group] || row >= starts[e.group + 1]) {
        const g = groupOf(starts, row);
        e = this.groups.get(g) ?? (await this.load(g));
        this.cache.touch(e);
        this.last = e;
      }
      const end = starts[e.group + 1];
      const len = Math.min(n - done, end - row);
      visit(done, e.stacks, e.values, row - starts[e.group], len, e.spans);
      done += len;
    }
  }

  /**
   * read() without an async call when rows [start, start + n) all lie in the group read last (as
   * most of a profile's do): visits them and returns true; else returns false and visits nothing.
   */
  tryRead(
    start: number,
    n: number,
    visit: (from: number, stacks: Int32Array, values: Float64Array, at: number, len: number, spans: BigUint64Array | null) => void,
  ): boolean {
    const e = this.last;
    if (!e || n <= 0) return false;
    const starts = this.pq.groupStart;
    const first = starts[e.group];
    if (start < first || start + n > starts[e.group + 1]) return false;
    visit(0, e.stacks, e.values, start - first, n, e.spans);
    return true;
  }

  /** Called by the cache when it evicts one of this source's groups. */
  forget(g: number): void {
    if (this.last?.group === g) this.last = null;
    this.groups.delete(g);
  }

  private async load(g: number): Promise<CachedGroup> {
    const n = this.pq.groupStart[g + 1] - this.pq.groupStart[g];
    this.cache.makeRoom(n * (this.pq.hasSpans ? 20 : 12));
    // The decoded pages themselves (no copy into reused arrays): one buffer per column per load.
    const { stacks, values, spans } = await readGroupColumns(this.dir, this.pq, g, { withSpans: this.pq.hasSpans });
    const e: CachedGroup = { owner: this, group: g, stacks, values, spans };
    this.groups.set(g, e);
    this.cache.add(e);
    return e;
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
