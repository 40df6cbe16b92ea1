// Opening a block's files, checked against its meta.json, for every reader of blocks (queries
// through BlockReader, compaction through BlockSource): damage becomes BlockCorruptError naming
// the block and the file; a remote file that cannot be read stays a bucket error.

import { statSync } from "node:fs";
import { join } from "node:path";
import { parquetMetadataAsync, parquetRead, type AsyncBuffer, type ColumnChunk, type FileMetaData } from "hyparquet";
import { parquetHeader } from "hyparquet/src/column.js";
import { NotFoundError, RemoteReadError } from "../bucket/bucket.ts";
import { BlockCorruptError, type BlockMeta } from "./meta.ts";
import { COL_SPAN, COL_STACK, COL_VALUE, INDEX_FILE, PROFILES_FILE, PROFILES_SCHEMA, PROFILES_SCHEMA_SPANS, parquetDecompressors } from "./schema.ts";
import { SeriesIndex } from "./series-index.ts";

export interface ParquetHandle {
  file: AsyncBuffer;
  /** First row of each row group, plus the total at the end. */
  groupStart: number[];
  /** Whether the file has the span_id column. */
  hasSpans: boolean;
  /**
   * Where each group's column chunks lie, when every chunk looks like the block's own layout (one
   * PLAIN page, ZSTD or uncompressed); then hyparquet's parse of the footer is not kept. It is
   * hundreds of thousands of objects for a large block (12 soak blocks: 362K objects, 37 MB of
   * RSS), held as long as the block stays open and marked by every full collection.
   */
  chunks: ChunkTable | null;
  /** The parsed footer: kept when `chunks` is null, else parsed again if ever needed (footer()). */
  metadata: FileMetaData | null;
  /** The parsed footer, parsed again if it was not kept. */
  footer(): Promise<FileMetaData>;
}

/** Columns of a chunk table, in its order. */
const CHUNK_COLUMNS = [COL_STACK, COL_VALUE, COL_SPAN];

/** Byte range [start, end) of group g's chunk of column c at g * 3 + c (CHUNK_COLUMNS); zstd[i] 1 when compressed. */
interface ChunkTable {
  start: Float64Array;
  end: Float64Array;
  zstd: Uint8Array;
}

// A remote file that cannot be read fails the query; it does not mark the block damaged.
export const isRemoteFailure = (e: unknown) => e instanceof RemoteReadError || e instanceof NotFoundError;

const corrupt = (dir: string, name: string, e: unknown) => new BlockCorruptError(dir, name, e instanceof Error ? e.message : String(e));

/** Checks that a block file is there with the size meta.json recorded (catches truncation cheaply); returns its path. */
export function checkBlockFile(dir: string, meta: BlockMeta, name: string): string {
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

/** The series index, with as many series as meta.json says. */
export function openBlockIndex(dir: string, meta: BlockMeta): SeriesIndex {
  const path = checkBlockFile(dir, meta, INDEX_FILE);
  let index: SeriesIndex;
  try {
    index = SeriesIndex.open(path);
  } catch (e) {
    throw corrupt(dir, INDEX_FILE, e);
  }
  if (index.series.length !== meta.stats.numSeries) {
    index.close();
    throw new BlockCorruptError(dir, INDEX_FILE, `${index.series.length} series, meta.json says ${meta.stats.numSeries}`);
  }
  return index;
}

/**
 * profiles.parquet's footer, checked against the schema and meta.json. `remote` reads the file
 * from elsewhere (a bucket) instead of the block's directory.
 */
export async function openProfilesParquet(dir: string, meta: BlockMeta, remote: AsyncBuffer | null = null): Promise<ParquetHandle> {
  let file: AsyncBuffer;
  if (remote) file = remote;
  else {
    const path = checkBlockFile(dir, meta, PROFILES_FILE);
    const size = meta.files.find((f) => f.relPath === PROFILES_FILE)!.sizeBytes;
    const f = Bun.file(path);
    file = { byteLength: size, slice: (start, end) => f.slice(start, end ?? size).arrayBuffer() };
  }
  const parse = async (): Promise<FileMetaData> => {
    try {
      // From a bucket, a small first read: hyparquet's default (512 KiB) would fetch most small files whole.
      return await parquetMetadataAsync(file, remote ? { initialFetchSize: 16 << 10 } : undefined);
    } catch (e) {
      if (isRemoteFailure(e)) throw e;
      throw corrupt(dir, PROFILES_FILE, e);
    }
  };
  const metadata = await parse();
  const cols = metadata.schema.slice(1).map((c) => `${c.name}:${c.type}`).join();
  const schemaOf = (s: typeof PROFILES_SCHEMA) => s.slice(1).map((c) => `${c.name}:${c.type}`).join();
  const hasSpans = cols === schemaOf(PROFILES_SCHEMA_SPANS);
  if (!hasSpans && cols !== schemaOf(PROFILES_SCHEMA)) throw new BlockCorruptError(dir, PROFILES_FILE, `unexpected columns ${cols.replaceAll(",", ", ")}`);
  if (Number(metadata.num_rows) !== meta.stats.numSamples)
    throw new BlockCorruptError(dir, PROFILES_FILE, `${metadata.num_rows} rows, meta.json says ${meta.stats.numSamples} samples`);
  const groupStart = [0];
  for (const g of metadata.row_groups) groupStart.push(groupStart[groupStart.length - 1] + Number(g.num_rows));
  const chunks = chunkTable(metadata, hasSpans);
  const pq: ParquetHandle = {
    file,
    groupStart,
    hasSpans,
    chunks,
    metadata: chunks ? null : metadata,
    footer: async () => (pq.metadata ??= await parse()),
  };
  return pq;
}

/** The chunk table of a file whose every chunk chunkRange accepts, else null. */
function chunkTable(metadata: FileMetaData, hasSpans: boolean): ChunkTable | null {
  const groups = metadata.row_groups;
  const t: ChunkTable = { start: new Float64Array(3 * groups.length), end: new Float64Array(3 * groups.length), zstd: new Uint8Array(3 * groups.length) };
  for (let g = 0; g < groups.length; g++) {
    for (let c = 0; c < (hasSpans ? 3 : 2); c++) {
      const chunk = groups[g].columns.find((x) => x.meta_data?.path_in_schema[0] === CHUNK_COLUMNS[c]);
      const r = chunkRange(chunk);
      if (!r) return null;
      t.start[3 * g + c] = r[0];
      t.end[3 * g + c] = r[1];
      t.zstd[3 * g + c] = chunk!.meta_data!.codec === "ZSTD" ? 1 : 0;
    }
  }
  return t;
}

/**
 * Reads rows [start, end) of stack_id (when `stacks` is given), value and span_id (when `spans` is
 * given; zeros if the file has no such column) into the arrays, from index 0. `useOffsetIndex`
 * reads just the pages a narrow range needs.
 */
export async function readStackValues(
  dir: string,
  pq: ParquetHandle,
  start: number,
  end: number,
  stacks: Int32Array | null,
  values: Float64Array,
  useOffsetIndex = false,
  spans: BigUint64Array | null = null,
): Promise<void> {
  let gotStacks = 0;
  let gotValues = 0;
  let gotSpans = 0;
  const readSpans = spans !== null && pq.hasSpans;
  if (spans && !readSpans) spans.fill(0n, 0, end - start);
  const columns = stacks ? [COL_STACK, COL_VALUE] : [COL_VALUE];
  if (readSpans) columns.push(COL_SPAN);
  try {
    const metadata = await pq.footer();
    await parquetRead({
      file: pq.file,
      metadata,
      columns,
      rowStart: start,
      rowEnd: end,
      useOffsetIndex,
      compressors: parquetDecompressors,
      onChunk: (c) => {
        // Chunks may reach outside the requested rows: copy only the overlap.
        const lo = Math.max(start, c.rowStart);
        const hi = Math.min(end, c.rowEnd);
        if (hi <= lo) return;
        const from = lo - c.rowStart;
        if (c.columnName === COL_SPAN) {
          // INT64 comes back as bigints; the BigUint64Array takes their bits back as unsigned.
          const src = c.columnData as ArrayLike<bigint>;
          if (src instanceof BigInt64Array) spans!.set(src.subarray(from, from + hi - lo), lo - start);
          else for (let k = 0; k < hi - lo; k++) spans![lo - start + k] = BigInt.asUintN(64, BigInt(src[from + k]));
          gotSpans += hi - lo;
          return;
        }
        const src = c.columnData as ArrayLike<number>;
        const dst: Int32Array | Float64Array | null = c.columnName === COL_VALUE ? values : c.columnName === COL_STACK ? stacks : null;
        if (!dst) return;
        if (ArrayBuffer.isView(src)) dst.set((src as unknown as Float64Array).subarray(from, from + hi - lo), lo - start);
        else for (let k = 0; k < hi - lo; k++) dst[lo - start + k] = src[from + k];
        if (dst === values) gotValues += hi - lo;
        else gotStacks += hi - lo;
      },
    });
  } catch (e) {
    if (isRemoteFailure(e)) throw e;
    throw corrupt(dir, PROFILES_FILE, e);
  }
  if (gotValues !== end - start || (stacks && gotStacks !== end - start) || (readSpans && gotSpans !== end - start))
    throw new BlockCorruptError(dir, PROFILES_FILE, `rows [${start}, ${end}) could not be read in full`);
}

/** Rows of one row group's columns, as merges and queries read them. */
export interface GroupColumns {
  /** The row of the arrays' index 0. */
  start: number;
  /** stack_id; empty when not asked for. */
  stacks: Int32Array;
  values: Float64Array;
  /** Span ids when asked for (zeros if the file has no such column), else null. */
  spans: BigUint64Array | null;
  /** Whether the group was decoded directly (the block's own layout), not through hyparquet. */
  direct: boolean;
}

export interface GroupReadOptions {
  /** Span ids too. */
  withSpans: boolean;
  /** stack_id too (default true); without it, only the value column is read. */
  withStacks?: boolean;
  /**
   * The rows wanted, [from, to) within the group; the whole group by default. A group in the
   * block's own layout is one page per column, decoded whole either way; any other layout reads
   * just the pages the range needs, and the arrays hold just those rows.
   */
  rows?: [number, number];
}

/**
 * Reads one row group's stack_id, value and span_id columns (as `opts` asks), as a merge does for
 * every group of its sources and a query for the groups its series lie in. A column chunk in the
 * block's own layout (one PLAIN page, see plain-column-chunk.ts) is decompressed and the output
 * itself becomes the array: hyparquet's general path left ~7× the group's decoded size in buffers
 * to collect, most of what merges and day-long queries allocated. Any other chunk (another
 * writer's) is read the general way.
 */
export async function readGroupColumns(dir: string, pq: ParquetHandle, group: number, opts: GroupReadOptions): Promise<GroupColumns> {
  const first = pq.groupStart[group];
  const n = pq.groupStart[group + 1] - first;
  const withStacks = opts.withStacks ?? true;
  const withSpans = opts.withSpans;
  const readSpans = withSpans && pq.hasSpans;
  const general = async (): Promise<GroupColumns> => {
    const [from, to] = opts.rows ?? [first, first + n];
    const m = to - from;
    const out = { start: from, stacks: new Int32Array(withStacks ? m : 0), values: new Float64Array(m), spans: withSpans ? new BigUint64Array(m) : null, direct: false };
    await readStackValues(dir, pq, from, to, withStacks ? out.stacks : null, out.values, opts.rows !== undefined, out.spans);
    return out;
  };
  const t = pq.chunks;
  if (!t) return general();
  const cols = [...(withStacks ? [0] : []), 1, ...(readSpans ? [2] : [])];
  // The chunks are neighbours in the file: one read for all.
  const lo = Math.min(...cols.map((c) => t.start[3 * group + c]));
  const hi = Math.max(...cols.map((c) => t.end[3 * group + c]));
  let bytes: ArrayBuffer;
  try {
    bytes = await pq.file.slice(lo, hi);
  } catch (e) {
    if (isRemoteFailure(e)) throw e;
    throw corrupt(dir, PROFILES_FILE, e);
  }
  const pages: Uint8Array[] = [];
  for (const c of cols) {
    const i = 3 * group + c;
    let page: Uint8Array | null;
    try {
      page = readPlainPage(new DataView(bytes, t.start[i] - lo, t.end[i] - t.start[i]), t.zstd[i] === 1, n, c === 0 ? 4 : 8);
    } catch (e) {
      throw corrupt(dir, PROFILES_FILE, e);
    }
    if (!page) {
      // Not the block's own layout after all (several pages to a chunk): the general way from now on.
      pq.chunks = null;
      return general();
    }
    pages[c] = page;
  }
  return {
    start: first,
    stacks: withStacks ? typed(pages[0], Int32Array, n) : new Int32Array(0),
    values: typed(pages[1], Float64Array, n),
    spans: readSpans ? typed(pages[2], BigUint64Array, n) : withSpans ? new BigUint64Array(n) : null,
    direct: true,
  };
}

/** `page`'s bytes as n values of `T`: a view when aligned (decompressed output is), else a copy. */
function typed<T extends Int32Array | Float64Array | BigUint64Array>(page: Uint8Array, T: { new (b: ArrayBufferLike, o: number, n: number): T; new (n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  if (page.byteOffset % T.BYTES_PER_ELEMENT === 0) return new T(page.buffer, page.byteOffset, n);
  const out = new T(n);
  new Uint8Array(out.buffer).set(page);
  return out;
}

/** A chunk's byte range [start, end) in the file, or null when it is not ZSTD or uncompressed PLAIN. */
function chunkRange(c: ColumnChunk | undefined): [number, number] | null {
  const md = c?.meta_data;
  if (!md || md.dictionary_page_offset !== undefined || md.encodings.some((e) => e !== "PLAIN")) return null;
  if (md.codec !== "ZSTD" && md.codec !== "UNCOMPRESSED") return null;
  const start = Number(md.data_page_offset);
  return [start, start + Number(md.total_compressed_size)];
}

/**
 * The values' bytes of a column chunk that is exactly one PLAIN data page (v1, or v2 without
 * levels) of `n` values of `width` bytes, zstd-compressed or not; null when the chunk is laid out
 * otherwise.
 */
function readPlainPage(view: DataView, zstd: boolean, n: number, width: number): Uint8Array | null {
  const reader = { view, offset: 0 };
  const h = parquetHeader(reader);
  let body = new Uint8Array(view.buffer, view.byteOffset + reader.offset, view.byteLength - reader.offset);
  if (body.length !== h.compressed_page_size) return null;
  let compressed = true;
  if (h.type === "DATA_PAGE") {
    if (h.data_page_header?.encoding !== "PLAIN" || h.data_page_header.num_values !== n) return null;
  } else if (h.type === "DATA_PAGE_V2") {
    const v2 = h.data_page_header_v2;
    if (!v2 || v2.encoding !== "PLAIN" || v2.num_values !== n || v2.num_nulls !== 0) return null;
    if (v2.definition_levels_byte_length !== 0 || v2.repetition_levels_byte_length !== 0) return null;
    compressed = v2.is_compressed !== false;
  } else return null;
  if (zstd && compressed && body.length > 0) body = Bun.zstdDecompressSync(body);
  if (body.length !== n * width) throw new Error(`a page of ${n} values holds ${body.length} bytes, expected ${n * width}`);
  return body;
}
