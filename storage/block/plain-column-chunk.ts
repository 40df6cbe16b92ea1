// writePlainChunk: one column chunk of profiles.parquet in the block's fixed layout: a single
// DATA_PAGE of PLAIN values, zstd-compressed, for a REQUIRED flat column. PLAIN for INT32, INT64
// and DOUBLE is the values' little-endian bytes, which is what a typed array holds on every
// platform Bun runs on, so the page is the column array's own bytes: nothing is encoded value by
// value. hyparquet-writer's general path (levels, slices, a bigint per INT64 value, page buffers)
// made ~20 MB of garbage per 128K-row group, most of a merge's memory above its live data, and
// three quarters of its time. hyparquet-writer still frames the file and writes the page headers
// and the footer.

import { writePageHeader } from "hyparquet-writer/src/datapage.js";
import type { ParquetWriter, Writer } from "hyparquet-writer";
import { ZSTD_LEVEL } from "./schema.ts";

/** Where chunks go: hyparquet-writer's Writer, plus a way to hand over large bytes without a copy. */
export interface ChunkSink extends Writer {
  /** Appends `bytes` (counted in `offset`) without copying them into the writer's buffer. */
  appendDirect(bytes: Uint8Array): void;
}

/** A column chunk as hyparquet-writer's footer takes it (its own copy of hyparquet's types). */
export type ColumnChunk = ParquetWriter["row_groups"][number]["columns"][number];

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("profiles.parquet is written on little-endian machines only");

/**
 * Writes the first `n` values of `values` as one column chunk at the sink's offset and returns
 * its metadata for the footer.
 */
export function writePlainChunk(
  sink: ChunkSink,
  name: string,
  type: "INT32" | "INT64" | "DOUBLE",
  values: Int32Array | BigInt64Array | Float64Array,
  n: number,
): ColumnChunk {
  const raw = new Uint8Array(values.buffer, values.byteOffset, n * values.BYTES_PER_ELEMENT);
  const packed = Bun.zstdCompressSync(raw, { level: ZSTD_LEVEL });
  const start = sink.offset;
  // Version 1 data page: a REQUIRED flat column has no level bytes, so the page is the values.
  writePageHeader(sink, {
    type: "DATA_PAGE",
    uncompressed_page_size: raw.length,
    compressed_page_size: packed.length,
    data_page_header: { num_values: n, encoding: "PLAIN", definition_level_encoding: "RLE", repetition_level_encoding: "RLE" },
  });
  const header = sink.offset - start;
  sink.appendDirect(packed);
  return {
    file_offset: BigInt(start),
    meta_data: {
      type,
      encodings: ["PLAIN"],
      path_in_schema: [name],
      codec: "ZSTD",
      num_values: BigInt(n),
      total_uncompressed_size: BigInt(header + raw.length),
      total_compressed_size: BigInt(sink.offset - start),
      data_page_offset: BigInt(start),
    },
  };
}
