// SampleArena: rows packed into shared chunks, long rows in chunks of their own, nothing overlaps.

import { describe, expect, test } from "bun:test";
import { CHUNK_SAMPLES, chunkOf, offsetOf, SampleArena } from "./sample-arena.ts";

describe("SampleArena", () => {
  test("rows never overlap and keep what was written, whatever their lengths", () => {
    const a = new SampleArena();
    const lengths = [1, 7, 300, CHUNK_SAMPLES / 4, CHUNK_SAMPLES / 4 + 1, 5, CHUNK_SAMPLES, 2, 40_000, 40_000, 3 * CHUNK_SAMPLES, 1];
    const rows = lengths.map((n, r) => {
      const ref = a.alloc(n);
      const c = chunkOf(ref);
      const at = offsetOf(ref);
      expect(at + n).toBeLessThanOrEqual(a.ids[c].length);
      for (let i = 0; i < n; i++) {
        a.ids[c][at + i] = r;
        a.values[c][at + i] = r + i / n;
      }
      return { ref, n };
    });
    // Read after every row was written: a row overlapped by a later one would differ.
    rows.forEach(({ ref, n }, r) => {
      const c = chunkOf(ref);
      const at = offsetOf(ref);
      for (let i = 0; i < n; i++) {
        if (a.ids[c][at + i] !== r || a.values[c][at + i] !== r + i / n) throw new Error(`row ${r} sample ${i} overwritten`);
      }
    });
    // Rows longer than a quarter chunk have a chunk of exactly their size; the rest share.
    for (const { ref, n } of rows) if (n > CHUNK_SAMPLES / 4) expect([offsetOf(ref), a.ids[chunkOf(ref)].length]).toEqual([0, n]);
    expect(a.bytes).toBe(a.ids.reduce((b, c) => b + c.length * 12, 0));
  });

  test("small rows fill a chunk before the next is made", () => {
    const a = new SampleArena();
    const per = 1000;
    const n = Math.floor(CHUNK_SAMPLES / per);
    for (let r = 0; r < n; r++) expect(chunkOf(a.alloc(per))).toBe(0);
    expect(chunkOf(a.alloc(per))).toBe(1);
    expect(a.ids.length).toBe(2);
  });
});
