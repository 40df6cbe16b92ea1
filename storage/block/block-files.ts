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
  metadata: FileMetaData;
  /** First row of each row group, plus the total at the end. */
  groupStart: number[];
  /** Whether the file has the span_id column. */
  hasSpans: boolean;
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
  let metadata: FileMetaData;
  try {
    // From a bucket, a small first read: hyparquet's default (512 KiB) would fetch most small files whole.
    metadata = await parquetMetadataAsync(file, remote ? { initialFetchSize: 16 << 10 } : undefined);
  } catch (e) {
    if (isRemoteFailure(e)) throw e;
    throw corrupt(dir, PROFILES_FILE, e);
  }
  const cols = metadata.schema.slice(1).map((c) => `${c.name}:${c.type}`).join();
  const schemaOf = (s: typeof PROFILES_SCHEMA) => s.slice(1).map((c) => `${c.name}:${c.type}`).join();
  const hasSpans = cols === schemaOf(PROFILES_SCHEMA_SPANS);
  if (!hasSpans && cols !== schemaOf(PROFILES_SCHEMA)) throw new BlockCorruptError(dir, PROFILES_FILE, `unexpected columns ${cols.replaceAll(",", ", ")}`);
  if (Number(metadata.num_rows) !== meta.stats.numSamples)
    throw new BlockCorruptError(dir, PROFILES_FILE, `${metadata.num_rows} rows, meta.json says ${meta.stats.numSamples} samples`);
  const groupStart = [0];
  for (const g of metadata.row_groups) groupStart.push(groupStart[groupStart.length - 1] + Number(g.num_rows));
  return { file, metadata, groupStart, hasSpans };
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
    await parquetRead({
      file: pq.file,
      metadata: pq.metadata,
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

/** One row group's columns, as a merge reads them. */
export interface GroupColumns {
  stacks: Int32Array;
  values: Float64Array;
  /** Span ids when asked for (zeros if the file has no such column), else null. */
  spans: BigUint64Array | null;
  /** Whether the group was decoded directly (the block's own layout), not through hyparquet. */
  direct: boolean;
}

/**
 * Reads one whole row group's stack_id, value and (with `withSpans`) span_id, as a merge does for
 * every group of its sources. A column chunk in the block's own layout (one PLAIN page, see
 * plain-column-chunk.ts) is decompressed and the output itself becomes the array: hyparquet's
 * general path left ~7× the group's decoded size in buffers to collect, most of what a merge's
 * reads allocated. Any other chunk (another writer's) is read the general way.
 */
export async function readGroupColumns(dir: string, pq: ParquetHandle, group: number, withSpans: boolean): Promise<GroupColumns> {
  const rg = pq.metadata.row_groups[group];
  const n = pq.groupStart[group + 1] - pq.groupStart[group];
  const readSpans = withSpans && pq.hasSpans;
  const general = async (): Promise<GroupColumns> => {
    const out = { stacks: new Int32Array(n), values: new Float64Array(n), spans: withSpans ? new BigUint64Array(n) : null, direct: false };
    await readStackValues(dir, pq, pq.groupStart[group], pq.groupStart[group + 1], out.stacks, out.values, false, out.spans);
    return out;
  };
  const names = readSpans ? [COL_STACK, COL_VALUE, COL_SPAN] : [COL_STACK, COL_VALUE];
  const chunks = names.map((name) => rg.columns.find((c) => c.meta_data?.path_in_schema[0] === name));
  const ranges = chunks.map(chunkRange);
  if (ranges.some((r) => r === null)) return general();
  // The chunks are neighbours in the file: one read for all.
  const lo = Math.min(...ranges.map((r) => r![0]));
  const hi = Math.max(...ranges.map((r) => r![1]));
  let bytes: ArrayBuffer;
  try {
    bytes = await pq.file.slice(lo, hi);
  } catch (e) {
    if (isRemoteFailure(e)) throw e;
    throw corrupt(dir, PROFILES_FILE, e);
  }
  const pages: Uint8Array[] = [];
  for (let k = 0; k < chunks.length; k++) {
    const [from, to] = ranges[k]!;
    let page: Uint8Array | null;
    try {
      page = readPlainPage(new DataView(bytes, from - lo, to - from), chunks[k]!.meta_data!.codec === "ZSTD", n, k === 0 ? 4 : 8);
    } catch (e) {
      throw corrupt(dir, PROFILES_FILE, e);
    }
    if (!page) return general();
    pages.push(page);
  }
  return {
    stacks: typed(pages[0], Int32Array, n),
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
