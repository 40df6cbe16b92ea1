// Varint codecs at their edges.

import { expect, test } from "bun:test";
import { ByteSink, ByteSource } from "./varint.ts";

test("numbers, signed numbers, bigints and strings round trip", () => {
  const nums = [0, 1, 127, 128, 300, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1];
  const ints = [0, -1, 1, -64, 64, -(2 ** 40), 2 ** 40 + 3, -(2 ** 52)];
  const bigs = [0n, 1n, 2n ** 31n, 2n ** 63n, 2n ** 64n - 1n];
  const strs = ["", "main.work", "ünïcødé 🔥"];
  const w = new ByteSink();
  for (const n of nums) w.uint(n);
  for (const n of ints) w.sint(n);
  for (const b of bigs) w.big(b);
  for (const s of strs) w.str(s);
  const r = new ByteSource(w.finish());
  expect(nums.map(() => r.uint())).toEqual(nums);
  expect(ints.map(() => r.sint())).toEqual(ints);
  expect(bigs.map(() => r.big())).toEqual(bigs);
  expect(strs.map(() => r.str())).toEqual(strs);
  expect(r.done).toBe(true);
  expect(() => r.uint()).toThrow("truncated");
});

test("uint refuses what it cannot encode", () => {
  const w = new ByteSink();
  expect(() => w.uint(-1)).toThrow(RangeError);
  expect(() => w.uint(1.5)).toThrow(RangeError);
  expect(() => w.uint(2 ** 53)).toThrow(RangeError);
});
