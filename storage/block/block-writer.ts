// BlockWriter: writes a block as a stream of series and profiles, so a block of any size is written
// in the memory of one row group. profiles.parquet grows row group by row group in <ULID>.tmp;
// finish() adds the series index, symbols and meta.json, fsyncs, and renames the block into place.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { failpoint } from "../failpoint.ts";
import { labelsKey, type Labels } from "../model/labels.ts";
import { BLOCK_VERSION, newUlid, writeMeta, type BlockMeta } from "./meta.ts";
import {
  COL_SERIES,
  COL_SPAN,
  COL_STACK,
  COL_TIME,
  COL_VALUE,
  INDEX_FILE,
  PROFILES_FILE,
  PROFILES_SCHEMA,
  PROFILES_SCHEMA_SPANS,
  SYMBOLS_FILE,
  rowGroupSizeFor,
} from "./schema.ts";
import { writePlainChunk, type ChunkSink } from "./plain-column-chunk.ts";
import { SeriesToIndex, writeSeriesIndex } from "./series-index.ts";
import { fsyncDir, writeDurable } from "../durable.ts";

export interface BlockWriterOptions {
  ulid?: string;
  /** Rows per row group; by default rowGroupSizeFor(expectedSamples). */
  rowGroupSize?: number;
  /** About how many sample rows the block will hold. */
  expectedSamples?: number;
  /** Write the span_id column (some profile carries span ids). */
  spans?: boolean;
}

export interface FinishOptions {
  /** Compaction level: 1 for a block cut from a head. */
  level?: number;
  /** ULIDs of the blocks this one replaces; defaults to its own ULID. */
  sources?: string[];
  /** The last WAL segment whose records the block holds. */
  walThroughSegment?: number;
}

/**
 * The order merges write series in: by their label key. Readers take any order (a block cut from
 * a head keeps the head's); one shared by every merged block lets the next merge read each of
 * them forward, row group after row group.
 */
export function compareSeriesKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The label key series are ordered by (see compareSeriesKeys). */
export const seriesKey = labelsKey;

export class BlockWriter {
  readonly ulid: string;
  private readonly dir: string;
  private readonly tmp: string;
  private readonly sink: FileSink;
  private readonly pw: ParquetWriter;
  private readonly rowGroupSize: number;
  private readonly colSeries: Int32Array;
  private readonly colTime: BigInt64Array;
  /** colTime's bytes as 32-bit halves, low first. */
  private readonly colTimeHalves: Int32Array;
  private readonly colStack: Int32Array;
  private readonly colValue: Float64Array;
  private readonly colSpan: BigInt64Array | null;
  private fill = 0;
  private readonly indexed: SeriesToIndex[] = [];
  private current: SeriesToIndex | null = null;
  private rows = 0;
  private profiles = 0;
  private minTime = Infinity;
  private maxTime = -Infinity;

  private constructor(
    private readonly blocksDir: string,
    opts: BlockWriterOptions,
  ) {
    this.ulid = opts.ulid ?? newUlid();
    this.dir = join(blocksDir, this.ulid);
    if (existsSync(this.dir)) throw new Error(`writeBlock: block ${this.ulid} already exists in ${blocksDir}`);
    this.tmp = this.dir + ".tmp";
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
    this.rowGroupSize = opts.rowGroupSize ?? rowGroupSizeFor(opts.expectedSamples ?? 0);
    this.colSeries = new Int32Array(this.rowGroupSize);
    this.colTime = new BigInt64Array(this.rowGroupSize);
    this.colTimeHalves = new Int32Array(this.colTime.buffer);
    this.colStack = new Int32Array(this.rowGroupSize);
    this.colValue = new Float64Array(this.rowGroupSize);
    this.colSpan = opts.spans ? new BigInt64Array(this.rowGroupSize) : null;
    try {
      this.sink = new FileSink(join(this.tmp, PROFILES_FILE));
      const schema = opts.spans ? PROFILES_SCHEMA_SPANS : PROFILES_SCHEMA;
      this.pw = new ParquetWriter({ writer: this.sink, schema, codec: "ZSTD" });
    } catch (e) {
      rmSync(this.tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Starts writing a block `<ulid>.tmp` under blocksDir; finish() or abort() must follow. */
  static create(blocksDir: string, opts: BlockWriterOptions = {}): BlockWriter {
    return new BlockWriter(blocksDir, opts);
  }

  /** Samples written so far. */
  get numSamples(): number {
    return this.rows;
  }

  /** Starts the next series; each must have a profile before the next starts or finish(). */
  startSeries(labels: Labels, profileType: string): void {
    if (this.current && this.current.numProfiles === 0) throw new Error("BlockWriter: a series was started without profiles");
    this.current?.close();
    this.current = new SeriesToIndex(labels, profileType, this.rows);
    this.indexed.push(this.current);
  }

  /**
   * Appends one profile of the current series: `n` samples, stack ids of the block's symbols, and
   * their span ids if any (the writer must have been created with `spans`). The caller orders
   * them (by stack id, see sortByStack) and the series' profiles by time. Synchronous: an async
   * call per profile made a promise and a generator each, hundreds of thousands per merge, all
   * garbage. Returns whether a row group was written, after which a long write should let the
   * process serve requests (storageGroupWritten).
   */
  appendProfile(
    timeMs: number,
    durationNs: number,
    stacks: ArrayLike<number>,
    values: ArrayLike<number>,
    n: number,
    spans: BigUint64Array | null = null,
  ): boolean {
    const s = this.current;
    if (!s) throw new Error("BlockWriter: appendProfile before startSeries");
    if (s.numProfiles > 0 && timeMs < s.maxTime) throw new Error(`BlockWriter: profile at ${timeMs} after one at ${s.maxTime}: a series' profiles go in time order`);
    if (spans && !this.colSpan) throw new Error("BlockWriter: span ids given to a writer created without spans");
    if (!Number.isSafeInteger(timeMs)) throw new Error(`BlockWriter: time ${timeMs} is not a whole number of milliseconds`);
    const colSpan = this.colSpan;
    const ref = this.indexed.length - 1;
    // The INT64 time as its two 32-bit halves (little-endian), without a BigInt per profile.
    const hi = Math.floor(timeMs / 4294967296);
    const lo = timeMs - hi * 4294967296;
    const halves = this.colTimeHalves;
    let wrote = false;
    for (let i = 0; i < n; ) {
      const take = Math.min(n - i, this.rowGroupSize - this.fill);
      const f = this.fill;
      this.colSeries.fill(ref, f, f + take);
      for (let j = 2 * f, end = 2 * (f + take); j < end; j += 2) {
        halves[j] = lo;
        halves[j + 1] = hi;
      }
      for (let j = 0; j < take; j++) {
        this.colStack[f + j] = stacks[i + j];
        this.colValue[f + j] = values[i + j];
      }
      // The uint64 span ids are stored as INT64 with the same bits (the typed array wraps them).
      if (colSpan) {
        if (spans) for (let j = 0; j < take; j++) colSpan[f + j] = spans[i + j];
        else colSpan.fill(0n, f, f + take);
      }
      this.fill += take;
      i += take;
      if (this.fill === this.rowGroupSize) {
        this.flush();
        wrote = true;
      }
    }
    s.add(timeMs, n, durationNs);
    this.rows += n;
    this.profiles++;
    if (timeMs < this.minTime) this.minTime = timeMs;
    if (timeMs > this.maxTime) this.maxTime = timeMs;
    return wrote;
  }

  private flush(): void {
    const fill = this.fill;
    if (fill === 0) return;
    // One page per column chunk, the column arrays' own bytes (plain-column-chunk.ts). No min/max
    // statistics: reads find rows through the series index, never through them.
    const start = this.sink.offset;
    const columns = [
      writePlainChunk(this.sink, COL_SERIES, "INT32", this.colSeries, fill),
      writePlainChunk(this.sink, COL_TIME, "INT64", this.colTime, fill),
      writePlainChunk(this.sink, COL_STACK, "INT32", this.colStack, fill),
      writePlainChunk(this.sink, COL_VALUE, "DOUBLE", this.colValue, fill),
    ];
    if (this.colSpan) columns.push(writePlainChunk(this.sink, COL_SPAN, "INT64", this.colSpan, fill));
    let uncompressed = 0n;
    for (const c of columns) uncompressed += c.meta_data!.total_uncompressed_size;
    // The footer hyparquet-writer's finish() writes lists these groups.
    this.pw.row_groups.push({ columns, total_byte_size: uncompressed, num_rows: BigInt(fill), total_compressed_size: BigInt(this.sink.offset - start) });
    this.pw.num_rows += BigInt(fill);
    this.sink.flush();
    this.fill = 0;
  }

  /**
   * Writes the rest (symbols.bin from `symbolBytes`, whose stack ids the rows used; the index;
   * meta.json), makes it durable and renames the block into place. Throws, leaving nothing
   * behind, when no profile was written.
   */
  async finish(symbolBytes: Uint8Array, opts: FinishOptions = {}): Promise<BlockMeta> {
    try {
      if (this.profiles === 0) throw new Error("writeBlock: the head holds no profiles");
      if (this.current && this.current.numProfiles === 0) throw new Error("BlockWriter: a series was started without profiles");
      this.flush();
      await this.pw.finish();
      writeDurable(join(this.tmp, SYMBOLS_FILE), symbolBytes);
      writeSeriesIndex(this.indexed, join(this.tmp, INDEX_FILE));
      const files = [PROFILES_FILE, INDEX_FILE, SYMBOLS_FILE].map((relPath) => ({ relPath, sizeBytes: statSync(join(this.tmp, relPath)).size }));
      const meta: BlockMeta = {
        ulid: this.ulid,
        minTime: this.minTime,
        maxTime: this.maxTime,
        stats: { numSeries: this.indexed.length, numProfiles: this.profiles, numSamples: this.rows },
        compaction: { level: opts.level ?? 1, sources: opts.sources ?? [this.ulid] },
        version: BLOCK_VERSION,
        files,
        ...(opts.walThroughSegment !== undefined ? { wal: { throughSegment: opts.walThroughSegment } } : {}),
      };
      writeMeta(this.tmp, meta);
      fsyncDir(this.tmp);
      failpoint("block-before-rename");
      renameSync(this.tmp, this.dir);
      fsyncDir(this.blocksDir);
      return meta;
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Drops the half-written block (again harmlessly). */
  abort(): void {
    this.sink.abort();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

// sortByStack's copies of values and span ids, kept: it runs for every row a block write or merge
// writes, and a fresh copy each was garbage in bulk.
let valueScratch = new Float64Array(0);
let spanScratch = new BigUint64Array(0);
const scratchValues = (n: number) => (valueScratch.length >= n ? valueScratch : (valueScratch = new Float64Array(n)));
const scratchSpans = (n: number) => (spanScratch.length >= n ? spanScratch : (spanScratch = new BigUint64Array(n)));

/**
 * Orders a profile's samples by stack id (equal ids keep their order), in place over [0, n), with
 * their span ids if given. Consecutive profiles of a service then repeat long runs of ids, which
 * zstd compresses to almost nothing. `keys` is scratch of at least n.
 */
export function sortByStack(ids: Uint32Array, values: Float64Array, n: number, keys: Float64Array, spans: BigUint64Array | null = null): void {
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (ids[i] < ids[i - 1]) sorted = false;
  if (sorted) return;
  // id · 2^21 + index is exact in a double and sorts natively, without a comparator call per pair.
  if (n <= 1 << 21) {
    const k = keys.subarray(0, n);
    for (let i = 0; i < n; i++) k[i] = ids[i] * 2097152 + i;
    k.sort();
    const v = scratchValues(n);
    v.set(values.subarray(0, n));
    const sp = spans ? scratchSpans(n) : null;
    if (sp) sp.set(spans!.subarray(0, n));
    for (let i = 0; i < n; i++) {
      const from = k[i] % 2097152;
      ids[i] = (k[i] - from) / 2097152;
      values[i] = v[from];
      if (sp) spans![i] = sp[from];
    }
    return;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ids[a] - ids[b] || a - b);
  const idc = ids.slice(0, n);
  const v = values.slice(0, n);
  const sp = spans?.slice(0, n);
  for (let i = 0; i < n; i++) {
    ids[i] = idc[order[i]];
    values[i] = v[order[i]];
    if (sp) spans![i] = sp[order[i]];
  }
}

/**
 * hyparquet-writer's Writer over a file descriptor: the buffer is flushed to disk past 1 MB, and
 * finish() fsyncs, which the library's own fileWriter does not. Compressed pages go to the file
 * as they are (appendDirect), not through the buffer.
 */
class FileSink extends ByteWriter implements ChunkSink {
  private fd: number;
  constructor(path: string) {
    super(1 << 20);
    this.fd = openSync(path, "w");
  }

  private drain() {
    this.writeAll(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
  }

  private writeAll(b: Uint8Array) {
    for (let o = 0; o < b.length; ) o += writeSync(this.fd, b, o, b.length - o);
  }

  override ensure(size: number): void {
    if (this.index > 1 << 20) this.drain();
    super.ensure(size);
  }

  appendDirect(bytes: Uint8Array): void {
    this.drain();
    this.writeAll(bytes);
    this.offset += bytes.length;
  }

  flush(): void {
    this.drain();
  }

  override finish(): void {
    try {
      this.drain();
      fsyncSync(this.fd);
    } finally {
      this.abort();
    }
  }

  /** Closes the file (once); the caller removes the half-written block. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
