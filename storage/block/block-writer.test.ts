// BlockWriter: rows streamed row group by row group read back exactly; misuse refused; nothing
// left behind on failure. sortByStack against a plain sort of pairs.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockSource } from "./block-source.ts";
import { BlockWriter, sortByStack } from "./block-writer.ts";
import { COL_TIME, MAX_ROW_GROUP_SIZE, parquetDecompressors, MIN_ROW_GROUP_SIZE, rowGroupSizeFor } from "./schema.ts";
import { parquetRead } from "hyparquet";

const tmp = mkdtempSync(join(tmpdir(), "hearth-block-writer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fresh = () => mkdtempSync(join(tmp, "b-"));

const A = [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: "a" },
];
const B = [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: "b" },
];
// Not a real symbols.bin: the writer stores the bytes as given, and these tests read no symbols.
const SYMBOLS = new Uint8Array([1, 2, 3]);

describe("BlockWriter", () => {
  test("rows across several row groups read back as written, with the index and meta", async () => {
    const dir = fresh();
    const w = BlockWriter.create(dir, { rowGroupSize: 4 });
    const profiles: [number, number, number[], number[]][][] = [
      [
        [1000, 10, [1, 2, 3], [5, 6, 7]],
        [2000, 20, [1, 4, 5, 6, 7, 8], [1, 1, 2, 3, 5, 8]],
      ],
      [
        [1500, 30, [2], [42]],
        [1500, 30, [3], [43]],
        [9000, 40, [0, 9], [1.5, 2.5]],
      ],
    ];
    for (const [s, rows] of profiles.entries()) {
      w.startSeries(s === 0 ? A : B, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
      for (const [t, d, ids, vs] of rows) w.appendProfile(t, d, ids, vs, ids.length);
    }
    const meta = await w.finish(SYMBOLS, { level: 3, sources: ["X", "Y"], walThroughSegment: 7 });
    expect(meta.stats).toEqual({ numSeries: 2, numProfiles: 5, numSamples: 13 });
    expect([meta.minTime, meta.maxTime]).toEqual([1000, 9000]);
    expect(meta.compaction).toEqual({ level: 3, sources: ["X", "Y"] });
    expect(meta.wal).toEqual({ throughSegment: 7 });
    expect(readdirSync(dir)).toEqual([meta.ulid]);
    // Exactly the block's files (no index journal), each as large as meta.json says.
    expect(readdirSync(join(dir, meta.ulid)).sort()).toEqual(["index.sqlite", "meta.json", "profiles.parquet", "symbols.bin"]);
    for (const f of meta.files) expect(statSync(join(dir, meta.ulid, f.relPath)).size).toBe(f.sizeBytes);

    const src = await BlockSource.open(join(dir, meta.ulid));
    try {
      expect(src.series.map((s) => s.labels)).toEqual([A, B]);
      const rows = await src.rows();
      for (const [s, want] of profiles.entries()) {
        const p = src.profiles(src.series[s]);
        expect([...p.timeMs]).toEqual(want.map((r) => r[0]));
        expect([...p.durationNs]).toEqual(want.map((r) => r[1]));
        for (let i = 0; i < want.length; i++) {
          const ids: number[] = [];
          const vs: number[] = [];
          await rows.read(p.rowStart[i], p.sampleCount[i], (_from, st, v, at, len) => {
            for (let j = 0; j < len; j++) ids.push(st[at + j]), vs.push(v[at + j]);
          });
          expect([ids, vs]).toEqual([want[i][2], want[i][3]]);
        }
      }
    } finally {
      src.close();
    }
  });

  test("times are written exactly across the 32-bit halves; appendProfile says when it wrote a row group", async () => {
    const dir = fresh();
    const w = BlockWriter.create(dir, { rowGroupSize: 4 });
    w.startSeries(A, "t");
    const times = [-5, 0, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 1_795_689_051_879, 2 ** 53 - 1];
    // Two samples a profile into groups of 4: every second profile fills a group.
    const wrote = times.map((t) => w.appendProfile(t, 0, [1, 2], [1, 1], 2));
    expect(wrote).toEqual([false, true, false, true, false, true, false]);
    const meta = await w.finish(SYMBOLS);
    // Read with hyparquet, not our own reader.
    const path = join(dir, meta.ulid, "profiles.parquet");
    const buf = await Bun.file(path).arrayBuffer();
    const col: bigint[] = [];
    await parquetRead({ file: buf, columns: [COL_TIME], compressors: parquetDecompressors, onComplete: (rows: unknown[][]) => rows.forEach((r) => col.push(r[0] as bigint)) });
    expect(col).toEqual(times.flatMap((t) => [BigInt(t), BigInt(t)]));
    // A time that is not a whole number of milliseconds is refused (it would be stored wrong).
    const v = BlockWriter.create(fresh());
    v.startSeries(A, "t");
    expect(() => v.appendProfile(1.5, 0, [1], [1], 1)).toThrow("whole number");
    v.abort();
  });

  test("misuse is refused: rows before a series, out of time order, a series without profiles", async () => {
    const w = BlockWriter.create(fresh());
    expect(() => w.appendProfile(1, 0, [1], [1], 1)).toThrow("before startSeries");
    w.startSeries(A, "t");
    w.appendProfile(2000, 0, [1], [1], 1);
    expect(() => w.appendProfile(1000, 0, [1], [1], 1)).toThrow("time order");
    w.startSeries(B, "t");
    expect(() => w.startSeries(B, "t")).toThrow("without profiles");
    w.abort();
    // The last series empty at finish: refused too, nothing left behind.
    const dir = fresh();
    const v = BlockWriter.create(dir);
    v.startSeries(A, "t");
    v.appendProfile(2000, 0, [1], [1], 1);
    v.startSeries(B, "t");
    await expect(v.finish(SYMBOLS)).rejects.toThrow("without profiles");
    expect(readdirSync(dir)).toEqual([]);
  });

  test("finish without profiles, or abort: nothing is left behind", async () => {
    const dir = fresh();
    const w = BlockWriter.create(dir);
    expect(readdirSync(dir)).toEqual([`${w.ulid}.tmp`]);
    await expect(w.finish(SYMBOLS)).rejects.toThrow("no profiles");
    expect(readdirSync(dir)).toEqual([]);
    const v = BlockWriter.create(dir);
    v.startSeries(A, "t");
    v.appendProfile(1, 0, [1], [1], 1);
    v.abort();
    v.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  test("an existing block is not overwritten", async () => {
    const dir = fresh();
    const w = BlockWriter.create(dir);
    w.startSeries(A, "t");
    w.appendProfile(1, 0, [1], [1], 1);
    const meta = await w.finish(SYMBOLS);
    expect(() => BlockWriter.create(dir, { ulid: meta.ulid })).toThrow("already exists");
    expect(existsSync(join(dir, meta.ulid + ".tmp"))).toBe(false);
  });
});

describe("rowGroupSizeFor", () => {
  test("small blocks get small groups, large ones at most ~512 groups until the largest size", () => {
    expect(rowGroupSizeFor(0)).toBe(MIN_ROW_GROUP_SIZE);
    expect(rowGroupSizeFor(2_000_000)).toBe(16384); // a 32 MiB head: ~120 groups
    expect(rowGroupSizeFor(512 * 16384 + 1)).toBe(32768);
    expect(rowGroupSizeFor(47_000_000)).toBe(131072); // 2 h of the soak: ~360 groups
    expect(rowGroupSizeFor(1e12)).toBe(MAX_ROW_GROUP_SIZE);
    for (const n of [1, 1e5, 1e6, 1e7, 1e8, 1e9]) {
      const g = rowGroupSizeFor(n);
      expect(Number.isInteger(Math.log2(g))).toBe(true);
      if (g < MAX_ROW_GROUP_SIZE) expect(n / g).toBeLessThanOrEqual(512);
    }
  });
});

describe("sortByStack", () => {
  /** The reference: pairs sorted by id, ties in their original order. */
  function reference(ids: number[], vs: number[]): [number[], number[]] {
    const order = ids.map((_, i) => i).sort((a, b) => ids[a] - ids[b] || a - b);
    return [order.map((i) => ids[i]), order.map((i) => vs[i])];
  }

  function check(ids: number[], vs: number[]) {
    const n = ids.length;
    const a = new Uint32Array(n + 3).fill(77); // longer than n: the tail must be left alone
    a.set(ids);
    const v = new Float64Array(n + 3).fill(-1);
    v.set(vs);
    sortByStack(a, v, n, new Float64Array(n));
    const [wantIds, wantVs] = reference(ids, vs);
    expect([...a.subarray(0, n)]).toEqual(wantIds);
    expect([...v.subarray(0, n)]).toEqual(wantVs);
    expect([...a.subarray(n)]).toEqual([77, 77, 77]);
    expect([...v.subarray(n)]).toEqual([-1, -1, -1]);
  }

  test("small cases, ties, sorted input, the largest ids", () => {
    check([], []);
    check([5], [1]);
    check([3, 1, 2], [30, 10, 20]);
    check([1, 2, 3], [1, 2, 3]);
    check([2, 1, 2, 1, 0], [1, 2, 3, 4, 5]);
    check([0xffffffff, 0, 0xfffffffe], [0.5, 1.5, 2.5]);
  });

  test("random input, on both sides of the packed-key limit", () => {
    let seed = 12345;
    const rnd = (m: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % m;
    };
    for (const n of [100, 5000]) {
      const ids = Array.from({ length: n }, () => rnd(n));
      check(ids, Array.from({ length: n }, (_, i) => i * 1.25));
    }
    // Past 2^21 samples the ids no longer pack with their index: the comparator path.
    const n = (1 << 21) + 5;
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i++) ids[i] = n - i;
    ids[0] = 3;
    const vs = new Float64Array(n);
    for (let i = 0; i < n; i++) vs[i] = i;
    sortByStack(ids, vs, n, new Float64Array(n));
    for (let i = 1; i < n; i++) if (ids[i] < ids[i - 1]) throw new Error(`not sorted at ${i}`);
    expect([ids[0], ids[1], ids[2], ids[n - 1]]).toEqual([1, 2, 3, n - 1]);
    // ids 3 at input 0 and n-3: stable, so input 0's value comes first.
    expect([vs[2], vs[3]]).toEqual([0, n - 3]);
  }, 30_000);
});
