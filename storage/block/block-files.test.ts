// readGroupColumns: a merge's whole-group reads. Blocks in our layout (one PLAIN page per chunk),
// and blocks written before it by hyparquet-writer (PLAIN v2 pages), are read directly; any other
// layout goes the general way; every way gives the rows readStackValues gives.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { openProfilesParquet, readGroupColumns, readStackValues, type ParquetHandle } from "./block-files.ts";
import { BlockWriter } from "./block-writer.ts";
import { BlockCorruptError, type BlockMeta } from "./meta.ts";
import { COL_SERIES, COL_SPAN, COL_STACK, COL_TIME, COL_VALUE, PROFILES_FILE, PROFILES_SCHEMA, PROFILES_SCHEMA_SPANS } from "./schema.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-block-files-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const N = 2500;
const stackOf = (i: number) => (i * 7919) % 1000;
const valueOf = (i: number) => (i % 13) * 1.5 + 1;
const spanOf = (i: number) => (i % 3 === 0 ? 0n : BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n));

/** A block of N samples in our layout, in row groups of 1024. */
async function ownBlock(spans: boolean): Promise<{ dir: string; meta: BlockMeta }> {
  const w = BlockWriter.create(tmp, { rowGroupSize: 1024, spans });
  w.startSeries([{ name: "s", value: "a" }], "t");
  for (let p = 0; p < N / 500; p++) {
    const ids = Array.from({ length: 500 }, (_, j) => stackOf(p * 500 + j));
    const vals = Array.from({ length: 500 }, (_, j) => valueOf(p * 500 + j));
    const sp = spans ? BigUint64Array.from({ length: 500 }, (_, j) => spanOf(p * 500 + j)) : null;
    w.appendProfile(1000 + p, 0, ids, vals, 500, sp);
  }
  const meta = await w.finish(new Uint8Array([0]));
  return { dir: join(tmp, meta.ulid), meta };
}

/** profiles.parquet as hyparquet-writer writes it with these column options, with a meta to open it by. */
function writerBlock(name: string, opts: { encoding?: "PLAIN" | "RLE_DICTIONARY"; pageSize?: number; spans?: boolean }): { dir: string; meta: BlockMeta } {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const col = (n: string, data: ArrayLike<unknown>) => ({ name: n, data: data as never, encoding: n === COL_STACK ? opts.encoding ?? "PLAIN" : "PLAIN", statistics: false });
  const bytes = parquetWriteBuffer({
    schema: opts.spans ? PROFILES_SCHEMA_SPANS : PROFILES_SCHEMA,
    codec: "ZSTD",
    compressors: { ZSTD: (b: Uint8Array) => new Uint8Array(Bun.zstdCompressSync(b)) },
    rowGroupSize: 1024,
    pageSize: opts.pageSize,
    columnData: [
      col(COL_SERIES, new Int32Array(N)),
      col(COL_TIME, BigInt64Array.from({ length: N }, (_, i) => BigInt(1000 + Math.floor(i / 500)))),
      col(COL_STACK, Int32Array.from({ length: N }, (_, i) => stackOf(i))),
      col(COL_VALUE, Float64Array.from({ length: N }, (_, i) => valueOf(i))),
      ...(opts.spans ? [col(COL_SPAN, BigInt64Array.from({ length: N }, (_, i) => BigInt.asIntN(64, spanOf(i))))] : []),
    ],
  });
  writeFileSync(join(dir, PROFILES_FILE), new Uint8Array(bytes));
  const meta = {
    ulid: name,
    minTime: 1000,
    maxTime: 1004,
    stats: { numSeries: 1, numProfiles: 5, numSamples: N },
    compaction: { level: 1, sources: [name] },
    version: 1,
    files: [{ relPath: PROFILES_FILE, sizeBytes: statSync(join(dir, PROFILES_FILE)).size }],
  } satisfies BlockMeta;
  return { dir, meta };
}

/** Every group read both ways: the rows must agree, and with what was written. Returns how many went directly. */
async function readAll(dir: string, pq: ParquetHandle, withSpans: boolean): Promise<number> {
  let direct = 0;
  for (let g = 0; g + 1 < pq.groupStart.length; g++) {
    const start = pq.groupStart[g];
    const n = pq.groupStart[g + 1] - start;
    const { stacks, values, spans, direct: d, start: at } = await readGroupColumns(dir, pq, g, { withSpans });
    expect(at).toBe(start);
    if (d) direct++;
    expect(stacks.length).toBe(n);
    expect(values.length).toBe(n);
    expect(spans?.length).toBe(withSpans ? n : undefined);
    const s2 = new Int32Array(n);
    const v2 = new Float64Array(n);
    const sp2 = withSpans ? new BigUint64Array(n) : null;
    await readStackValues(dir, pq, start, start + n, s2, v2, false, sp2);
    expect([...stacks]).toEqual([...s2]);
    expect([...values]).toEqual([...v2]);
    if (spans) expect([...spans]).toEqual([...sp2!]);
    expect([...stacks]).toEqual(Array.from({ length: n }, (_, j) => stackOf(start + j)));
    expect([...values]).toEqual(Array.from({ length: n }, (_, j) => valueOf(start + j)));
    if (spans) expect([...spans]).toEqual(pq.hasSpans ? Array.from({ length: n }, (_, j) => spanOf(start + j)) : new Array(n).fill(0n));
  }
  return direct;
}

describe("readGroupColumns", () => {
  test("our layout is read directly, with or without span ids", async () => {
    for (const spans of [false, true]) {
      const { dir, meta } = await ownBlock(spans);
      const pq = await openProfilesParquet(dir, meta);
      expect(pq.groupStart).toEqual([0, 1024, 2048, N]);
      // Our layout keeps a table of chunk ranges, not hyparquet's parse of the footer.
      expect(pq.chunks).not.toBeNull();
      expect(pq.metadata).toBeNull();
      expect(await readAll(dir, pq, spans)).toBe(3);
      // A file without span ids reads as zeros where spans are asked for.
      if (!spans) expect(await readAll(dir, pq, true)).toBe(3);
    }
  });

  test("blocks hyparquet-writer wrote (PLAIN v2 pages) are read directly", async () => {
    const { dir, meta } = writerBlock("v2-plain", { spans: true });
    const pq = await openProfilesParquet(dir, meta);
    expect(await readAll(dir, pq, true)).toBe(3);
  });

  test("dictionary pages, or several pages to a chunk, are read the general way", async () => {
    for (const [name, opts] of [
      ["dictionary", { encoding: "RLE_DICTIONARY" }],
      ["small-pages", { pageSize: 1000 }],
    ] as const) {
      const { dir, meta } = writerBlock(name, opts);
      const pq = await openProfilesParquet(dir, meta);
      expect(await readAll(dir, pq, false)).toBe(0);
      // Found out at the first page (several pages to a chunk) or at open (a dictionary): the
      // footer is parsed again and kept, and no direct read is tried again.
      expect(pq.chunks).toBeNull();
      expect(pq.metadata).not.toBeNull();
    }
  });

  test("a range of rows, with or without stack ids: our layout decodes the group, others just the range", async () => {
    const own = await ownBlock(true);
    const several = writerBlock("small-pages-range", { pageSize: 1000 });
    for (const { dir, meta } of [own, several]) {
      const pq = await openProfilesParquet(dir, meta);
      const [from, to] = [pq.groupStart[1] + 100, pq.groupStart[1] + 300];
      for (const withStacks of [true, false]) {
        const c = await readGroupColumns(dir, pq, 1, { withSpans: false, withStacks, rows: [from, to] });
        expect(c.direct).toBe(dir === own.dir);
        // Our layout: the whole group, from its first row; otherwise exactly the rows asked for.
        expect(c.start).toBe(c.direct ? pq.groupStart[1] : from);
        expect(c.values.length).toBe(c.direct ? pq.groupStart[2] - pq.groupStart[1] : to - from);
        expect(c.stacks.length).toBe(withStacks ? c.values.length : 0);
        for (let r = from; r < to; r++) {
          expect(c.values[r - c.start]).toBe(valueOf(r));
          if (withStacks) expect(c.stacks[r - c.start]).toBe(stackOf(r));
        }
      }
    }
  });

  test("a damaged page is a corrupt block, named", async () => {
    const { dir, meta } = await ownBlock(false);
    const path = join(dir, PROFILES_FILE);
    const pq0 = await openProfilesParquet(dir, meta);
    // The zstd frame of group 1's stack_id page loses its magic number, so it does not decode.
    const chunk = (await pq0.footer()).row_groups[1].columns.find((c) => c.meta_data?.path_in_schema[0] === COL_STACK)!.meta_data!;
    const from = Number(chunk.data_page_offset);
    const bytes = readFileSync(path);
    const at = bytes.subarray(from, from + Number(chunk.total_compressed_size)).indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(at).toBeGreaterThan(0);
    bytes[from + at] ^= 0xff;
    writeFileSync(path, bytes);
    const pq = await openProfilesParquet(dir, meta);
    const err = await readGroupColumns(dir, pq, 1, { withSpans: false }).catch((e) => e);
    expect(err).toBeInstanceOf(BlockCorruptError);
    expect(String(err)).toContain(PROFILES_FILE);
  });
});
