// DeltaTracker: Pyroscope's TestComputeDelta / TestDeltaSample scenarios, TestGodeltaprofRelabelPush,
// and a real cumulative Go heap profile pushed repeatedly.

import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import { labelsFromRecord, type Labels } from "../../../storage/model/labels.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { collapse, readPprof } from "../../../test/helpers/pprof-oracle.ts";
import { applyDefaultRelabelRules } from "./default-relabel.ts";
import { DeltaTracker } from "./delta-tracker.ts";
import { buildProfile, columnSum, loadProfile, SHARED_PPROF } from "./testing.ts";

const MEMORY = [
  { type: "alloc_objects", unit: "count" },
  { type: "alloc_space", unit: "bytes" },
  { type: "inuse_objects", unit: "count" },
  { type: "inuse_space", unit: "bytes" },
];
const SPACE = { type: "space", unit: "bytes" };
const memoryLabels = (extra: Record<string, string> = {}): Labels => labelsFromRecord({ __name__: "memory", service_name: "app", ...extra });
const mem = (samples: [string[], number[]][]) => buildProfile(MEMORY, samples, SPACE);
const scaled = (p: Profile, f: number): Profile => ({ ...p, samples: { ...p.samples, values: p.samples.values.map((v) => v * f) } });

describe("DeltaTracker", () => {
  test("TestComputeDelta: the first profile is a baseline, the next holds deltas", () => {
    const d = new DeltaTracker();
    const first = d.apply(memoryLabels(), mem([[["c", "b", "a"], [1, 2, 3, 4]], [["d", "c", "b", "a"], [1, 2, 3, 4]]]));
    expect(columnSum(first, 0) + columnSum(first, 1)).toBe(0);
    // In-use columns are gauges: stored as sent.
    expect(columnSum(first, 2)).toBe(6);
    expect(columnSum(first, 3)).toBe(8);
    const second = d.apply(memoryLabels(), mem([[["c", "b", "a"], [2, 4, 3, 4]], [["d", "c", "b", "a"], [2, 4, 3, 4]]]));
    expect(collapseProfile(second, 0)).toEqual(new Map([["a;b;c", 1], ["a;b;c;d", 1]]));
    expect(collapseProfile(second, 1)).toEqual(new Map([["a;b;c", 2], ["a;b;c;d", 2]]));
    expect(columnSum(second, 3)).toBe(8);
  });

  test("TestDeltaSample: equal values give zero, new stacks count in full, a decrease resets", () => {
    const d = new DeltaTracker();
    const t = [{ type: "alloc_objects", unit: "count" }];
    const push = (samples: [string[], number[]][]) => collapseProfile(d.apply(memoryLabels(), buildProfile(t, samples, SPACE)), 0);
    expect(push([[["s2"], [1]], [["s3"], [1]]])).toEqual(new Map());
    expect(push([[["s2"], [1]], [["s3"], [1]]])).toEqual(new Map());
    expect(push([[["s3"], [6]], [["s5"], [1]]])).toEqual(new Map([["s3", 5], ["s5", 1]]));
    // s3 went from 6 to 0: a reset; the profile becomes the new baseline and stores nothing.
    expect(push([[["s3"], [0]], [["s5"], [1]]])).toEqual(new Map());
    // After the reset s2 is forgotten; s3 counts from 0.
    expect(push([[["s2"], [10]], [["s3"], [2]], [["s7"], [1]]])).toEqual(new Map([["s2", 10], ["s3", 2], ["s7", 1]]));
  });

  test("a stack split over several samples is summed, and its delta stored once", () => {
    const d = new DeltaTracker();
    const t = [{ type: "alloc_space", unit: "bytes" }];
    d.apply(memoryLabels(), buildProfile(t, [[["a"], [5]], [["a"], [5]]], SPACE));
    const q = d.apply(memoryLabels(), buildProfile(t, [[["a"], [8]], [["a"], [8]]], SPACE));
    expect(Array.from(q.samples.values)).toEqual([6, 0]);
  });

  test("a real Go heap profile: baseline, then exact deltas, then a restart, then deltas again", () => {
    const d = new DeltaTracker();
    const p = loadProfile(SHARED_PPROF + "heap");
    const oracle = readPprof(SHARED_PPROF + "heap");
    const ls = memoryLabels({ __delta__: "true" });

    const base = d.apply(ls, p);
    expect(columnSum(base, 0)).toBe(0);
    expect(columnSum(base, 1)).toBe(0);
    expect(collapseProfile(base, 3)).toEqual(collapse(oracle, 3));

    // The same process later: every cumulative value doubled → the deltas are the first values.
    const later = d.apply(ls, scaled(p, 2));
    for (const v of [0, 1]) expect(collapseProfile(later, v)).toEqual(collapse(oracle, v));
    expect(collapseProfile(later, 3)).toEqual(times(collapse(oracle, 3), 2)); // a gauge: as sent

    // The process restarted: values fell back, so nothing is stored and the baseline resets.
    const restarted = d.apply(ls, p);
    expect(columnSum(restarted, 0) + columnSum(restarted, 1)).toBe(0);
    const again = d.apply(ls, scaled(p, 3));
    for (const v of [0, 1]) expect(collapseProfile(again, v)).toEqual(times(collapse(oracle, v), 2));
    expect(p.samples.values).toEqual(loadProfile(SHARED_PPROF + "heap").samples.values); // input untouched
  });

  test("series are separate: other labels, and each alloc sample type", () => {
    const d = new DeltaTracker();
    const one = mem([[["a"], [1, 1, 1, 1]]]);
    d.apply(memoryLabels({ pod: "x" }), one);
    const y = d.apply(memoryLabels({ pod: "y" }), one);
    expect(columnSum(y, 0)).toBe(0); // a baseline of its own
    const x = d.apply(memoryLabels({ pod: "x", __delta__: "yes" }), mem([[["a"], [3, 5, 1, 1]]]));
    expect([columnSum(x, 0), columnSum(x, 1)]).toEqual([2, 4]); // __delta__ is not part of the series
    expect(d.stats()).toEqual({ series: 4, stacks: 4 });
    const other = d.apply(memoryLabels({ pod: "x" }), mem([[["a"], [9, 9, 1, 1]]]), "tenant-2");
    expect(columnSum(other, 0)).toBe(0); // same labels, another tenant: a baseline of its own
  });

  test("nothing happens for __delta__=false, other profile names, or no alloc types", () => {
    const d = new DeltaTracker();
    const p = loadProfile(SHARED_PPROF + "heap");
    expect(d.apply(memoryLabels({ __delta__: "false" }), p)).toBe(p);
    expect(d.apply(labelsFromRecord({ __name__: "process_cpu", service_name: "a" }), p)).toBe(p);
    const inuse = buildProfile([{ type: "inuse_space", unit: "bytes" }], [[["a"], [1]]], SPACE);
    expect(d.apply(memoryLabels(), inuse)).toBe(inuse);
    const block = buildProfile([{ type: "contentions", unit: "count" }], [[["a"], [1]]], SPACE);
    expect(d.apply(labelsFromRecord({ __name__: "block", service_name: "a" }), block)).toBe(block);
    expect(d.stats()).toEqual({ series: 0, stacks: 0 });
  });

  test("TestGodeltaprofRelabelPush: godeltaprof pushes of 239 then 3 store 242", () => {
    const d = new DeltaTracker();
    const ls = applyDefaultRelabelRules(labelsFromRecord({ __name__: "godeltaprof_memory", service_name: "app" }));
    let total = 0;
    for (const n of [239, 3]) total += columnSum(d.apply(ls, mem([[["other", "my"], [n, n * 1024, 1000, 1000 * 1024]]])), 0);
    expect(total).toBe(242);
  });

  test("memory stays bounded: idle series and the least recently seen series are forgotten", () => {
    let now = 0;
    const d = new DeltaTracker({ idleMs: 1000, maxStacks: 3, now: () => now });
    const t = [{ type: "alloc_objects", unit: "count" }];
    const prof = (...names: string[]) => buildProfile(t, names.map((n) => [[n], [1]] as [string[], number[]]), SPACE);
    d.apply(memoryLabels({ pod: "a" }), prof("x", "y"));
    now = 500;
    d.apply(memoryLabels({ pod: "b" }), prof("x"));
    expect(d.stats()).toEqual({ series: 2, stacks: 3 });
    now = 600;
    d.apply(memoryLabels({ pod: "c" }), prof("x")); // 4 stacks > 3: pod a (oldest) goes
    expect(d.stats()).toEqual({ series: 2, stacks: 2 });
    now = 1550;
    d.apply(memoryLabels({ pod: "c" }), prof("x")); // pod b idle for 1050 ms: goes
    expect(d.stats()).toEqual({ series: 1, stacks: 1 });
    // A forgotten series starts again from a baseline.
    expect(columnSum(d.apply(memoryLabels({ pod: "a" }), prof("x", "y")), 0)).toBe(0);
    // One series larger than the cap is still tracked.
    const big = new DeltaTracker({ maxStacks: 1 });
    big.apply(memoryLabels(), prof("p", "q"));
    expect(columnSum(big.apply(memoryLabels(), buildProfile(t, [[["p"], [3]], [["q"], [1]]], SPACE)), 0)).toBe(2);
  });
});

function times(m: Map<string, number>, f: number): Map<string, number> {
  return new Map([...m].map(([k, x]) => [k, x * f]));
}
