// A small CPU profile of the one model from `"root;…;leaf" → nanoseconds`, for tests that need
// blocks or heads of known content without a fixture.

import type { Profile } from "../../storage/model/profile.ts";

export function cpuProfile(stacks: Record<string, number>, timeMs: number): Profile {
  const functions: Profile["functions"] = [];
  const locations: Profile["locations"] = [];
  const index = new Map<string, number>();
  const locStart = [0];
  const locs: number[] = [];
  for (const stack of Object.keys(stacks)) {
    for (const name of stack.split(";").reverse()) {
      let fn = index.get(name);
      if (fn === undefined) {
        fn = functions.push({ name, systemName: name, filename: "main.go", startLine: 1 }) - 1;
        locations.push({ mapping: -1, address: 0n, lines: [{ fn, line: 1 }], isFolded: false });
        index.set(name, fn);
      }
      locs.push(fn);
    }
    locStart.push(locs.length);
  }
  return {
    sampleTypes: [{ type: "cpu", unit: "nanoseconds" }],
    periodType: { type: "cpu", unit: "nanoseconds" },
    period: 1e7,
    timeNanos: BigInt(timeMs) * 1000000n,
    durationNanos: 1e10,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions,
    locations,
    samples: { count: locStart.length - 1, locStart: Uint32Array.from(locStart), locs: Uint32Array.from(locs), values: Float64Array.from(Object.values(stacks)), labels: null },
  };
}
