// The files of a block and the layout of profiles.parquet: one row per sample, flat scalar
// columns, sorted by (series_ref, time_ms), so a series' samples are one contiguous row range.
// A block whose profiles carry span ids has a fifth column, span_id; others do not pay for it.

import type { SchemaElement } from "hyparquet-writer";

export const PROFILES_FILE = "profiles.parquet";
export const INDEX_FILE = "index.sqlite";
export const SYMBOLS_FILE = "symbols.bin";

export const COL_SERIES = "series_ref";
export const COL_TIME = "time_ms";
export const COL_STACK = "stack_id";
export const COL_VALUE = "value";
/** The sample's span id as a signed INT64 (the uint64's bits; 0 = no span). Optional column. */
export const COL_SPAN = "span_id";

/**
 * Every column is PLAIN, one page per column chunk, zstd-compressed (plain-column-chunk.ts).
 * series_ref and time_ms repeat for every sample of a profile, and zstd makes those runs nearly
 * free (as small as RLE-dictionary and delta encoding were, without encoding value by value).
 * stack_id and value are read back as typed-array views with no dictionary lookup, and zstd finds
 * the repeats between profiles. value is DOUBLE, the head's type, so nothing is converted, and
 * DuckDB sums it as is.
 */
export const PROFILES_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: 4 },
  { name: COL_SERIES, type: "INT32", repetition_type: "REQUIRED" },
  { name: COL_TIME, type: "INT64", repetition_type: "REQUIRED" },
  { name: COL_STACK, type: "INT32", repetition_type: "REQUIRED" },
  { name: COL_VALUE, type: "DOUBLE", repetition_type: "REQUIRED" },
];

/** The schema of a block with span ids: the same columns and span_id last. */
export const PROFILES_SCHEMA_SPANS: SchemaElement[] = [
  { name: "root", num_children: 5 },
  ...PROFILES_SCHEMA.slice(1),
  { name: COL_SPAN, type: "INT64", repetition_type: "REQUIRED" },
];

/**
 * Rows per row group for a block of about `samples` rows: a power of two from 16K to 128K, so a
 * file has at most ~512 groups until it is large. Both ends cost memory: the writer holds a group's
 * columns and a reader decodes a whole group at once, and every group's metadata is a few KB of
 * objects held by the writer and by each reader (a 12 h soak block in 16K groups had 17,000 of
 * them; its merge peaked at 478 MB).
 */
export function rowGroupSizeFor(samples: number): number {
  const want = 2 ** Math.ceil(Math.log2(Math.max(1, samples) / 512));
  return Math.min(MAX_ROW_GROUP_SIZE, Math.max(MIN_ROW_GROUP_SIZE, want));
}

export const MIN_ROW_GROUP_SIZE = 16 * 1024;
export const MAX_ROW_GROUP_SIZE = 128 * 1024;

export const ZSTD_LEVEL = 3;

export const parquetDecompressors = {
  // A plain Uint8Array view of Bun's output, not a copy of it.
  ZSTD: (b: Uint8Array): Uint8Array => {
    const out = Bun.zstdDecompressSync(b);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  },
};
