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

test("u64 reads any 64-bit varint into 32-bit halves, as big() reads it", () => {
  const values = [0n, 1n, 127n, 128n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n + 7n, 2n ** 53n + 1n, 0x7fffffffffffffffn, 2n ** 64n - 1n];
  const w = new ByteSink();
  for (const v of values) w.big(v);
  const bytes = w.finish();
  const r = new ByteSource(bytes);
  const halves = new Uint32Array(2 * values.length);
  for (let i = 0; i < values.length; i++) r.u64(halves, 2 * i);
  expect(r.done).toBe(true);
  expect([...new BigUint64Array(halves.buffer)]).toEqual(values);
  const cut = new ByteSource(new Uint8Array([0x80, 0x80]));
  expect(() => cut.u64(new Uint32Array(2), 0)).toThrow("truncated");
  const long = new ByteSource(new Uint8Array(11).fill(0x80));
  expect(() => long.u64(new Uint32Array(2), 0)).toThrow("too long");
});
