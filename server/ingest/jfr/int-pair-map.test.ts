import { expect, test } from "bun:test";
import { IdIndex } from "./id-index.ts";
import { IntPairMap } from "./int-pair-map.ts";

test("IntPairMap agrees with a Map across growth", () => {
  const m = new IntPairMap(4);
  const ref = new Map<string, number>();
  let seed = 7;
  const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  for (let i = 0; i < 20000; i++) {
    const a = rnd(3000);
    const b = rnd(50) - 10; // negative second keys are fine (line numbers can be -1)
    m.set(a, b, i);
    ref.set(`${a},${b}`, i);
  }
  expect(m.size).toBe(ref.size);
  for (const [k, v] of ref) {
    const [a, b] = k.split(",").map(Number);
    expect(m.get(a, b)).toBe(v);
  }
  expect(m.get(5000, 1)).toBe(-1);
});

test("IdIndex: small ids in the typed array, large and fractional ones in the map", () => {
  const ix = new IdIndex(4);
  ix.set(3, 30);
  ix.set(1000, 1);
  ix.set(2 ** 40, 2);
  ix.set(2 ** 52 + 2, 3);
  expect([ix.get(3), ix.get(1000), ix.get(2 ** 40), ix.get(2 ** 52 + 2), ix.get(4), ix.get(2 ** 41)]).toEqual([30, 1, 2, 3, -1, -1]);
  expect(ix.span).toBeGreaterThan(1000);
});
