// BlockSource's sample rows and GroupCache: reads in any order give the rows written; pinned groups
// stay until their reads are done; the byte budget holds whatever is pinned.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockSource, GroupCache } from "./block-source.ts";
import { BlockWriter } from "./block-writer.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-block-source-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Three series of 5, 3 and 6 samples, one profile each; sample i of series s has value 100s + i. */
async function block(): Promise<string> {
  const w = BlockWriter.create(tmp, { rowGroupSize: 4 });
  for (const [s, n] of [5, 3, 6].entries()) {
    w.startSeries([{ name: "s", value: String(s) }], "t");
    const ids = Array.from({ length: n }, (_, i) => i);
    w.appendProfile(1000, 0, ids, ids.map((i) => 100 * s + i), n);
  }
  const meta = await w.finish(new Uint8Array([0]));
  return join(tmp, meta.ulid);
}

async function readSeries(src: BlockSource, ref: number, cache: GroupCache): Promise<number[]> {
  const s = src.series[ref];
  const out: number[] = [];
  await (await src.rows(cache)).read(s.firstRow, s.lastRow - s.firstRow + 1, (_f, _st, v, at, len) => {
    for (let j = 0; j < len; j++) out.push(v[at + j]);
  });
  return out;
}

const want = [
  [0, 1, 2, 3, 4],
  [100, 101, 102],
  [200, 201, 202, 203, 204, 205],
];

describe("SampleRows and GroupCache", () => {
  test("pinned groups stay until unpinned, then go; out-of-order reads give the rows written", async () => {
    const src = await BlockSource.open(await block());
    try {
      const cache = new GroupCache(1 << 20);
      const rows = await src.rows(cache);
      for (const s of src.series) rows.pin(s.firstRow, s.lastRow);
      for (const ref of [2, 0, 1]) expect(await readSeries(src, ref, cache)).toEqual(want[ref]);
      // 14 rows in groups of 4, 4, 4, 2: all kept, 12 bytes a row.
      expect(cache.heldBytes).toBe(14 * 12);
      const [a, b, c] = src.series;
      rows.unpin(a.firstRow, a.lastRow); // rows 0-4: group 0 goes; group 1 is b's too
      expect(cache.heldBytes).toBe(10 * 12);
      rows.unpin(c.firstRow, c.lastRow); // rows 8-13: groups 2 and 3 go; group 1 is still b's
      expect(cache.heldBytes).toBe(4 * 12);
      rows.unpin(b.firstRow, b.lastRow);
      expect(cache.heldBytes).toBe(0);
      // Read again after everything went: decoded anew.
      expect(await readSeries(src, 1, cache)).toEqual(want[1]);
    } finally {
      src.close();
    }
  });

  test("the budget evicts even pinned groups, least recently used first, and reads stay right", async () => {
    const src = await BlockSource.open(await block());
    try {
      const cache = new GroupCache(0);
      const rows = await src.rows(cache);
      for (const s of src.series) rows.pin(s.firstRow, s.lastRow);
      for (const ref of [1, 2, 0, 2, 1]) {
        expect(await readSeries(src, ref, cache)).toEqual(want[ref]);
        expect(cache.heldBytes).toBeLessThanOrEqual(4 * 12);
      }
    } finally {
      src.close();
    }
  });

  test("tryRead visits rows of the group read last, synchronously, and declines any other range", async () => {
    const src = await BlockSource.open(await block());
    try {
      const rows = await src.rows(new GroupCache(1 << 20));
      const seen: number[] = [];
      const visit = (_f: number, _st: Int32Array, v: Float64Array, at: number, len: number) => {
        for (let j = 0; j < len; j++) seen.push(v[at + j]);
      };
      // Nothing read yet: declined.
      expect(rows.tryRead(0, 2, visit)).toBe(false);
      // Rows 4-6 span groups 0 and 1; read() leaves group 1 (rows 4-7) as the last.
      await rows.read(4, 3, visit);
      expect(seen).toEqual([4, 100, 101]);
      seen.length = 0;
      expect(rows.tryRead(5, 3, visit)).toBe(true);
      expect(seen).toEqual([100, 101, 102]);
      // Past the group's end, or before its start: declined, nothing visited.
      expect(rows.tryRead(6, 3, visit)).toBe(false);
      expect(rows.tryRead(3, 2, visit)).toBe(false);
      expect(seen).toEqual([100, 101, 102]);
    } finally {
      src.close();
    }
  });

  test("a row range outside the file is a corrupt block, not a crash", async () => {
    const src = await BlockSource.open(await block());
    try {
      const rows = await src.rows();
      await expect(rows.read(10, 5, () => {})).rejects.toThrow("outside profiles.parquet");
    } finally {
      src.close();
    }
  });
});
