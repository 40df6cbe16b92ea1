// mergeDuplicateSymbols: what Pyroscope's ProfileMerge does to one profile (sanitize + dedupe).

import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import { mergeDuplicateSymbols } from "./merge-duplicates.ts";
import { buildProfile, loadProfile, SHARED_PPROF } from "./testing.ts";

describe("mergeDuplicateSymbols", () => {
  test("equal samples are summed; equal stacks with different string labels are not", () => {
    const p = buildProfile([{ type: "cpu", unit: "nanoseconds" }], [
      [["a", "main"], [1]],
      [["a", "main"], [2]],
      [["a", "main"], [4]],
      [["b", "main"], [8]],
    ]);
    p.samples.labels = [
      [{ key: "span_id", str: "1", num: 0, numUnit: "" }],
      [{ key: "span_id", str: "1", num: 7, numUnit: "x" }], // num is ignored, as in Pyroscope
      [{ key: "span_id", str: "2", num: 0, numUnit: "" }],
      [],
    ];
    const q = mergeDuplicateSymbols(p);
    expect(q.samples.count).toBe(3);
    expect(Array.from(q.samples.values)).toEqual([3, 4, 8]);
    expect(q.samples.labels!.map((ls) => ls.map((l) => l.str))).toEqual([["1"], ["2"], []]);
  });

  test("duplicate functions and locations become one; the first one's index order is kept", () => {
    const p = buildProfile([{ type: "cpu", unit: "nanoseconds" }], [[["a", "main"], [1]], [["b", "main"], [2]]]);
    // Make function b a copy of a: locations 0 and 2 then hold equal lines.
    const functions = p.functions.map((f) => (f.name === "b" ? { ...p.functions[0] } : f));
    const q = mergeDuplicateSymbols({ ...p, functions });
    expect(q.functions.map((f) => f.name)).toEqual(["a", "main"]);
    expect(q.locations.length).toBe(2);
    expect(q.samples.count).toBe(1);
    expect(collapseProfile(q, 0)).toEqual(new Map([["main;a", 3]]));
  });

  test("a location with neither lines nor address is dropped with its samples (sanitize)", () => {
    const p = loadProfile(SHARED_PPROF + "no_addr_no_line.pb.gz");
    const q = mergeDuplicateSymbols(p);
    expect(q.samples.count).toBe(1);
    expect(q.locations.some((l) => l.lines.length === 0 && l.address === 0n)).toBe(false);
  });

  test("mappings merge by rounded size, offset and build id (or file)", () => {
    const base = loadProfile(SHARED_PPROF + "heap_delta");
    const m0 = base.mappings[0];
    // The same file loaded elsewhere (address space randomization): same size and offset.
    const twin = { ...m0, memoryStart: m0.memoryStart + 0x10000n, memoryLimit: m0.memoryLimit + 0x10000n };
    const p = { ...base, mappings: [...base.mappings, twin], locations: base.locations.map((l) => (l.mapping === 0 ? { ...l, mapping: base.mappings.length } : l)) };
    const q = mergeDuplicateSymbols(p);
    expect(q.mappings.length).toBe(base.mappings.length);
    expect(collapseProfile(q, 1)).toEqual(collapseProfile(base, 1));
  });
});
