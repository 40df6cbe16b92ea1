// The .NET sample-type rename on Pyroscope's dotnet fixtures: §11.2 lists the profile types
// dotnet-pprof-73 yields (alloc_samples, alloc_size), and 211 is already fixed.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fixDotnetSampleTypes, isDotnetspy } from "./dotnet-fix.ts";
import { loadProfile, SHARED_PPROF } from "./testing.ts";

describe("fixDotnetSampleTypes", () => {
  test("dotnet-pprof-73: dashes become underscores", () => {
    const p = loadProfile(SHARED_PPROF + "dotnet-pprof-73.pb.gz");
    const q = fixDotnetSampleTypes(p);
    expect(q.sampleTypes.map((t) => `${t.type}:${t.unit}`)).toEqual([
      "cpu:nanoseconds",
      "exception:count",
      "alloc_samples:count",
      "alloc_size:bytes",
      "lock_count:count",
      "lock_time:nanoseconds",
    ]);
    expect(p.sampleTypes[2].type).toBe("alloc-samples"); // input untouched
    expect(q.samples).toBe(p.samples);
  });

  test("dotnet-pprof-211 is already fixed and comes back as is", () => {
    const p = loadProfile(SHARED_PPROF + "dotnet-pprof-211.pb.gz");
    expect(fixDotnetSampleTypes(p)).toBe(p);
  });

  test("the default sample type follows its sample type", () => {
    const p = loadProfile(SHARED_PPROF + "dotnet-pprof-73.pb.gz");
    expect(fixDotnetSampleTypes({ ...p, defaultSampleType: "alloc-size" }).defaultSampleType).toBe("alloc_size");
  });

  test("dotnet-pprof-3's function ids (all 0) are already repaired by the decoder", () => {
    const p = loadProfile(SHARED_PPROF + "dotnet-pprof-3.pb.gz");
    expect(p.functions.length).toBe(p.locations.length);
    expect(p.locations.every((l, i) => l.lines.every((x) => x.fn === i))).toBe(true);
  });
});

describe("isDotnetspy", () => {
  test("spyName dotnetspy, or unknown with an inuse-space sample type config", () => {
    const config = JSON.parse(readFileSync(SHARED_PPROF + "dotnet-pprof-3.st.json", "utf8"));
    expect(isDotnetspy("dotnetspy", null)).toBe(true);
    expect(isDotnetspy("unknown", { "inuse-space": { units: "bytes" } })).toBe(true);
    expect(isDotnetspy("unknown", config)).toBe("inuse-space" in config);
    expect(isDotnetspy("unknown", null)).toBe(false);
    expect(isDotnetspy("gospy", { "inuse-space": {} })).toBe(false);
  });
});
