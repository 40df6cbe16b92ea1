// normalizeProfile: the Normalize steps our pipeline lacks, checked on Pyroscope's malformed
// fixture and on its TestNormalizeProfile* scenarios.

import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { normalizeProfile } from "./normalize.ts";
import { buildProfile, loadProfile, SHARED_PPROF } from "./testing.ts";

describe("normalizeProfile", () => {
  test("no_addr_no_line: the empty location and the sample using it go (location_empty=1 sample_location_invalid=1)", () => {
    const p = loadProfile(SHARED_PPROF + "no_addr_no_line.pb.gz");
    expect(p.samples.count).toBe(2);
    expect(p.locations.some((l) => l.lines.length === 0 && l.address === 0n)).toBe(true);
    const q = normalizeProfile(p);
    expect(q.samples.count).toBe(1);
    expect(q.locations.some((l) => l.lines.length === 0 && l.address === 0n)).toBe(false);
    // Every remaining location is referenced, and the kept sample keeps its stack and value.
    const used = new Set(q.samples.locs);
    expect(used.size).toBe(q.locations.length);
    const kept = collapseProfile(p, 0);
    for (const [k, v] of collapseProfile(q, 0)) expect(kept.get(k)).toBe(v);
  });

  test("samples with a negative value or only zeros are dropped (TestNormalizeProfile_NegativeSample)", () => {
    const t = [{ type: "cpu", unit: "nanoseconds" }];
    const p = buildProfile(t, [
      [["foo", "main"], [10]],
      [["foo", "main"], [10]],
      [["foo", "main"], [10]],
      [["foo", "main"], [-10]],
      [["foo", "main"], [0]],
    ]);
    const q = normalizeProfile(p);
    expect(q.samples.count).toBe(3);
    expect(collapseProfile(q, 0)).toEqual(new Map([["main;foo", 30]]));
  });

  test("a sample is dropped for one negative value even if another is positive, kept for one positive", () => {
    const t = [
      { type: "alloc_objects", unit: "count" },
      { type: "inuse_objects", unit: "count" },
    ];
    const p = buildProfile(t, [
      [["a"], [5, -1]],
      [["b"], [0, 1]],
      [["c"], [0, 0]],
    ]);
    const q = normalizeProfile(p);
    expect(q.samples.count).toBe(1);
    expect(collapseProfile(q, 1)).toEqual(new Map([["b", 1]]));
    expect(q.locations.map((l) => q.functions[l.lines[0].fn].name)).toEqual(["b"]);
  });

  test("numeric sample labels are dropped; string ones stay", () => {
    const p = buildProfile([{ type: "cpu", unit: "nanoseconds" }], [[["a"], [1]], [["b"], [2]]]);
    p.samples.labels = [
      [{ key: "bytes", str: "", num: 512, numUnit: "bytes" }],
      [
        { key: "span_id", str: "abc", num: 0, numUnit: "" },
        { key: "n", str: "", num: 3, numUnit: "" },
      ],
    ];
    const q = normalizeProfile(p);
    expect(q.samples.labels).toEqual([[], [{ key: "span_id", str: "abc", num: 0, numUnit: "" }]]);
    expect(p.samples.labels![0].length).toBe(1); // input untouched
  });

  test("symbolized mappings lose addresses (TestNormalizeProfile: mapping 100..200 → 0, addresses → 0)", () => {
    const p = loadProfile(SHARED_PPROF + "heap");
    expect(p.mappings.some((m) => m.hasFunctions && m.memoryStart !== 0n)).toBe(true);
    const q = normalizeProfile(p);
    for (const m of q.mappings) if (m.hasFunctions) expect([m.memoryStart, m.memoryLimit, m.fileOffset]).toEqual([0n, 0n, 0n]);
    for (const l of q.locations) if (l.mapping >= 0 && q.mappings[l.mapping].hasFunctions) expect(l.address).toBe(0n);
    // Go's numeric "bytes" labels go; with no label left the column is null.
    expect(p.samples.labels!.every((ls) => ls.length === 1 && ls[0].str === "")).toBe(true);
    expect(q.samples.labels).toBeNull();
    expect(q.samples.locs).toBe(p.samples.locs);
    expect(p.locations.some((l) => l.address !== 0n)).toBe(true); // input untouched
  });

  test("unsymbolized mappings keep their addresses; a clean profile comes back as is", () => {
    const p = loadProfile(SHARED_PPROF + "profile_java");
    expect(normalizeProfile(p)).toBe(p);
    const native: Profile = {
      ...p,
      mappings: [{ memoryStart: 0x1000n, memoryLimit: 0x2000n, fileOffset: 0n, filename: "a.so", buildId: "", hasFunctions: false, hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false }],
      locations: p.locations.map((l) => ({ ...l, mapping: 0, address: 0x1234n })),
    };
    expect(normalizeProfile(native)).toBe(native);
  });
});
