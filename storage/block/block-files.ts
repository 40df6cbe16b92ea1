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

/**
 * Reads one whole row group's stack_id, value and span_id (when `spans` is given) into the arrays,
 * as a merge does for every group of its sources. A column chunk in the block's own layout (one
 * PLAIN page, see plain-column-chunk.ts) is decompressed and its bytes copied straight into the
 * array: hyparquet's general path left ~7× the group's decoded size in buffers to collect, which
 * is most of what a merge's reads allocate. Any other chunk (another writer's) is read the general
 * way. Returns whether the direct way was taken.
 */
export async function readGroupColumns(dir: string, pq: ParquetHandle, group: number, stacks: Int32Array, values: Float64Array, spans: BigUint64Array | null): Promise<boolean> {
  const rg = pq.metadata.row_groups[group];
  const n = pq.groupStart[group + 1] - pq.groupStart[group];
  const readSpans = spans !== null && pq.hasSpans;
  const wanted: [ColumnChunk | undefined, Int32Array | Float64Array | BigUint64Array][] = [
    [rg.columns.find((c) => c.meta_data?.path_in_schema[0] === COL_STACK), stacks],
    [rg.columns.find((c) => c.meta_data?.path_in_schema[0] === COL_VALUE), values],
  ];
  if (readSpans) wanted.push([rg.columns.find((c) => c.meta_data?.path_in_schema[0] === COL_SPAN), spans]);
  const ranges = wanted.map(([c]) => chunkRange(c));
  const general = async () => {
    await readStackValues(dir, pq, pq.groupStart[group], pq.groupStart[group + 1], stacks, values, false, spans);
    return false;
  };
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
  for (let k = 0; k < wanted.length; k++) {
    const [from, to] = ranges[k]!;
    const dst = wanted[k][1];
    let ok: boolean;
    try {
      ok = readPlainPage(new DataView(bytes, from - lo, to - from), wanted[k][0]!.meta_data!.codec === "ZSTD", n, new Uint8Array(dst.buffer, dst.byteOffset, n * dst.BYTES_PER_ELEMENT));
    } catch (e) {
      throw corrupt(dir, PROFILES_FILE, e);
    }
    if (!ok) return general();
  }
  if (spans && !readSpans) spans.fill(0n, 0, n);
  return true;
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
 * Decodes a column chunk that is exactly one PLAIN data page (v1, or v2 without levels) of `n`
 * values, zstd-compressed or not, into `out` (their bytes); false when the chunk is laid out otherwise.
 */
function readPlainPage(view: DataView, zstd: boolean, n: number, out: Uint8Array): boolean {
  const reader = { view, offset: 0 };
  const h = parquetHeader(reader);
  let body = new Uint8Array(view.buffer, view.byteOffset + reader.offset, view.byteLength - reader.offset);
  if (body.length !== h.compressed_page_size) return false;
  let compressed = true;
  if (h.type === "DATA_PAGE") {
    if (h.data_page_header?.encoding !== "PLAIN" || h.data_page_header.num_values !== n) return false;
  } else if (h.type === "DATA_PAGE_V2") {
    const v2 = h.data_page_header_v2;
    if (!v2 || v2.encoding !== "PLAIN" || v2.num_values !== n || v2.num_nulls !== 0) return false;
    if (v2.definition_levels_byte_length !== 0 || v2.repetition_levels_byte_length !== 0) return false;
    compressed = v2.is_compressed !== false;
  } else return false;
  if (zstd && compressed && body.length > 0) body = Bun.zstdDecompressSync(body);
  if (body.length !== out.length) throw new Error(`a page of ${n} values holds ${body.length} bytes, expected ${out.length}`);
  out.set(body);
  return true;
}
