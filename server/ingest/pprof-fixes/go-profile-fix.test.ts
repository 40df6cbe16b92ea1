// fixGoProfile = drop type shapes (merging duplicates) + repair truncated stacks when the profile
// may have them; Pyroscope's Test_FixGoProfile counts on heap_go_truncated_4.

import { describe, expect, test } from "bun:test";
import { fixGoProfile } from "./go-profile-fix.ts";
import { columnSum, FIXES, loadProfile, SHARED_PPROF, sampleFrames } from "./testing.ts";

describe("fixGoProfile", () => {
  test("heap_go_truncated_4: 2988 fewer samples, 168 fewer locations, 77 fewer functions", () => {
    const p = loadProfile(FIXES + "heap_go_truncated_4.pb.gz");
    const f = fixGoProfile(p);
    expect(p.samples.count - f.samples.count).toBe(2988);
    expect(p.locations.length - f.locations.length).toBe(168);
    expect(p.functions.length - f.functions.length).toBe(77);
    expect(columnSum(f, 0)).toBe(columnSum(p, 0));
  });

  test("a Go CPU profile with short stacks and no shapes is returned as is", () => {
    const p = loadProfile(SHARED_PPROF + "go.cpu.labels.pprof");
    expect(fixGoProfile(p)).toBe(p);
  });

  test("a truncated heap profile without shapes only gains root-side frames", () => {
    const p = loadProfile(SHARED_PPROF + "heap");
    const f = fixGoProfile(p);
    expect(f).not.toBe(p);
    expect(f.samples.count).toBe(p.samples.count);
    let grown = 0;
    for (let i = 0; i < p.samples.count; i++) {
      const before = sampleFrames(p, i);
      const after = sampleFrames(f, i);
      expect(after.slice(0, before.length)).toEqual(before);
      if (after.length > before.length) grown++;
    }
    expect(grown).toBeGreaterThan(0);
    for (let v = 0; v < 4; v++) expect(columnSum(f, v)).toBe(columnSum(p, v));
    // The input is untouched.
    expect(loadProfile(SHARED_PPROF + "heap").samples.locs).toEqual(p.samples.locs);
  });
});
