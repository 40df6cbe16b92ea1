import { describe, expect, test } from "bun:test";
import { collapseProfile, formatCollapsed } from "./collapse.ts";
import type { Location, Profile } from "./profile.ts";

/** A profile from named functions, locations as lists of function names (pprof order: inlined first). */
function profileOf(locations: string[][], samples: { locs: number[]; values: number[] }[], sampleTypes = 2): Profile {
  const fnIndex = new Map<string, number>();
  const functions: Profile["functions"] = [];
  const locs: Location[] = locations.map((names) => ({
    mapping: -1,
    address: 0n,
    isFolded: false,
    lines: names.map((name) => {
      let fn = fnIndex.get(name);
      if (fn === undefined) {
        fn = functions.length;
        fnIndex.set(name, fn);
        functions.push({ name, systemName: name, filename: "", startLine: 0 });
      }
      return { fn, line: 0 };
    }),
  }));
  const locStart = new Uint32Array(samples.length + 1);
  const flat: number[] = [];
  const values: number[] = [];
  samples.forEach((s, i) => {
    flat.push(...s.locs);
    locStart[i + 1] = flat.length;
    values.push(...s.values);
  });
  return {
    sampleTypes: Array.from({ length: sampleTypes }, (_, i) => ({ type: `t${i}`, unit: "count" })),
    periodType: null,
    period: 0,
    timeNanos: 0n,
    durationNanos: 0,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions,
    locations: locs,
    samples: { count: samples.length, locStart, locs: Uint32Array.from(flat), values: Float64Array.from(values), labels: null },
  };
}

describe("collapseProfile", () => {
  // locations: 0 = main, 1 = work with `inlined` inlined into it, 2 = leaf
  const p = profileOf(
    [["main"], ["inlined", "work"], ["leaf"], []],
    [
      { locs: [2, 1, 0], values: [1, 10] },
      { locs: [1, 0], values: [2, 0] },
      { locs: [2, 1, 0], values: [3, 5] },
      { locs: [0], values: [0, 7] },
      { locs: [2, 3, 0], values: [4, 1] },
    ],
  );

  test("root → leaf, inline lines caller first, duplicates summed, zeros dropped", () => {
    expect(Object.fromEntries(collapseProfile(p, 0))).toEqual({
      "main;work;inlined;leaf": 4,
      "main;work;inlined": 2,
      "main;leaf": 4,
    });
    expect(Object.fromEntries(collapseProfile(p, 1))).toEqual({
      "main;work;inlined;leaf": 15,
      main: 7,
      "main;leaf": 1,
    });
  });

  test("stored inline order matches StackCollapseProto", () => {
    expect(collapseProfile(p, 0, { inlineOrder: "stored" }).get("main;inlined;work;leaf")).toBe(4);
  });

  test("value index out of range throws", () => {
    expect(() => collapseProfile(p, 2)).toThrow("out of range");
  });

  test("a sample without frames collapses to the empty stack", () => {
    const q = profileOf([[]], [{ locs: [0], values: [3] }, { locs: [], values: [2] }], 1);
    expect([...collapseProfile(q, 0)]).toEqual([["", 5]]);
  });
});

test("formatCollapsed sorts by bytes", () => {
  const m = new Map([
    ["b;a", 2],
    ["a;\u{1F600}", 1],
    ["a;\uFFFD", 3],
    ["B", 4],
  ]);
  expect(formatCollapsed(m)).toBe("B 4\na;\uFFFD 3\na;\u{1F600} 1\nb;a 2\n");
  expect(formatCollapsed(new Map())).toBe("");
});
