// Truncated Go stack repair against Pyroscope's gotruncatefix/*.pb.gz.fixed files, and against
// the scenario of its Test_RepairGoTruncatedStacktraces.
//
// The .fixed files were written by older code: the heap ones by v1.5 (type shapes renamed to
// "[...]" by a greedy regex; MergeNoClone counted each first sample twice; groups of one sample
// never used as references), the CPU one during the v1.7 change with the same rename and
// reference rule. So they are compared after the same rename and with minGroupSize 2, heap
// values halved, and each generator's two repair passes (FixGoProfile's, then the test's).

import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { renameFunctions } from "./go-type-parameters.ts";
import { potentialTruncatedGoStacktraces, repairGoTruncatedStacktraces } from "./go-truncated-stacks.ts";
import { buildProfile, FIXES, loadProfile, SHARED_PPROF, sampleFrames } from "./testing.ts";

const legacyRename = (s: string) => s.replace(/\[go\.shape\..*\]/g, "[...]");

function legacyFix(p: Profile): Profile {
  let q = renameFunctions(p, legacyRename);
  if (potentialTruncatedGoStacktraces(q)) q = repairGoTruncatedStacktraces(q, { minGroupSize: 2 });
  return repairGoTruncatedStacktraces(q, { minGroupSize: 2 });
}

// Stacks keep pprof's stored line order, as the .fixed files were compared in Pyroscope.
const stacks = (p: Profile, v: number) => collapseProfile(p, v, { inlineOrder: "stored" });

describe("repairGoTruncatedStacktraces vs Pyroscope's .fixed files", () => {
  // Exact: every stack and value.
  for (const [name, valueFactor] of [
    ["heap_go_truncated_1", 2],
    ["heap_go_truncated_2", 2],
  ] as const) {
    test(`${name}: identical stacks and values`, () => {
      const got = stacks(legacyFix(loadProfile(`${FIXES}${name}.pb.gz`)), 0);
      const want = stacks(loadProfile(`${FIXES}${name}.pb.gz.fixed`), 0);
      const scaled = new Map([...got].map(([k, v]) => [k, v * valueFactor]));
      expect(scaled).toEqual(want);
    });
  }

  test("heap_go_truncated_4: identical stacks (its merged samples were counted 1 + n times)", () => {
    const got = stacks(legacyFix(loadProfile(`${FIXES}heap_go_truncated_4.pb.gz`)), 0);
    const want = stacks(loadProfile(`${FIXES}heap_go_truncated_4.pb.gz.fixed`), 0);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  });

  // Near-exact: Go sorts samples with an unstable sort, and which sample of a group serves as the
  // reference decides the frames copied when a chain of references reaches past 24 frames
  // (heap_3); the CPU file was written mid-change. Values must still match for shared stacks.
  for (const [name, factor] of [
    ["cpu_go_truncated_1", 1],
    ["heap_go_truncated_3", 2],
  ] as const) {
    test(`${name}: at most 1% of stacks differ`, () => {
      const p = loadProfile(`${FIXES}${name}.pb.gz`);
      const fixed = loadProfile(`${FIXES}${name}.pb.gz.fixed`);
      const fixedP = legacyFix(p);
      for (let v = 0; v < p.sampleTypes.length; v++) {
        const got = stacks(fixedP, v);
        const want = stacks(fixed, v);
        let same = 0;
        const wrongValues: string[] = [];
        for (const [k, x] of got) {
          if (!want.has(k)) continue;
          if (x * factor !== want.get(k)) wrongValues.push(k);
          same++;
        }
        expect(wrongValues).toEqual([]);
        expect(same).toBeGreaterThanOrEqual(Math.ceil(want.size * 0.99));
        expect(same).toBeLessThanOrEqual(want.size);
        // And the repair did something: the input alone matches far fewer stacks.
        const before = stacks(renameFunctions(p, legacyRename), v);
        expect([...before.keys()].filter((k) => want.has(k)).length).toBeLessThan(same);
      }
    });
  }
});

describe("repairGoTruncatedStacktraces (current Pyroscope)", () => {
  // Pyroscope's Test_RepairGoTruncatedStacktraces: a 128-frame stack seen only in overlapping,
  // truncated pieces; after the repair every sample ends with the same 8 root frames.
  const n = 128;
  const full: string[] = new Array(n);
  for (let idx = 0; idx < n; idx++) full[n - (idx + 1)] = idx === 0 ? "start" : `${"abcdefghijklmnopqrstuvwxyz"[Math.floor((idx - 1) / 10)]}${(idx - 1) % 10}`;
  const cpu = [{ type: "samples", unit: "count" }, { type: "cpu", unit: "nanoseconds" }];
  const build = () =>
    buildProfile(cpu, [
      [full.slice(n - 24), [1, 1]],
      [full.slice(n - 58, n - 9), [2, 2]],
      [full.slice(n - 57, n - 8), [4, 4]],
      [full.slice(n - 56, n - 7), [8, 8]],
      [["yy1", ...full.slice(n - 22)], [16, 16]],
    ]);

  test("every sample ends with the full stack's 8 root frames", () => {
    const q = repairGoTruncatedStacktraces(build());
    const root8 = full.slice(n - 8);
    for (let i = 0; i < q.samples.count; i++) expect(sampleFrames(q, i).slice(-8)).toEqual(root8);
    // The truncated pieces are completed all the way to "start", without duplicated frames.
    expect(sampleFrames(q, 1)).toEqual(full.slice(n - 58));
    expect(sampleFrames(q, 3)).toEqual(full.slice(n - 56));
  });

  test("groups of one sample are references since v1.7 (with minGroupSize 2 nothing is repaired)", () => {
    const p = build();
    expect(repairGoTruncatedStacktraces(p, { minGroupSize: 2 })).toBe(p);
  });

  test("the input is not modified; a profile with only short stacks comes back as is", () => {
    const p = build();
    const before = Array.from(p.samples.locs);
    repairGoTruncatedStacktraces(p);
    expect(Array.from(p.samples.locs)).toEqual(before);
    const short = buildProfile(cpu, [[["a", "b"], [1, 1]]]);
    expect(repairGoTruncatedStacktraces(short)).toBe(short);
  });
});

describe("potentialTruncatedGoStacktraces", () => {
  test("Go heap profiles truncated at 32 frames qualify; CPU at 64", () => {
    for (const f of ["heap_go_truncated_1", "heap_go_truncated_4", "cpu_go_truncated_1"]) {
      expect(potentialTruncatedGoStacktraces(loadProfile(`${FIXES}${f}.pb.gz`))).toBe(true);
    }
    expect(potentialTruncatedGoStacktraces(loadProfile(`${SHARED_PPROF}heap`))).toBe(true);
  });

  test("shallow, non-Go-typed, or deeper-than-32 heap profiles do not", () => {
    expect(potentialTruncatedGoStacktraces(loadProfile(`${SHARED_PPROF}go.cpu.labels.pprof`))).toBe(false);
    expect(potentialTruncatedGoStacktraces(loadProfile(`${SHARED_PPROF}profile_java`))).toBe(false);
    const heap = [{ type: "inuse_space", unit: "bytes" }];
    const deep = (d: number) => Array.from({ length: d }, (_, i) => `f${i}`);
    expect(potentialTruncatedGoStacktraces(buildProfile(heap, [[deep(28), [1]]]))).toBe(true);
    expect(potentialTruncatedGoStacktraces(buildProfile(heap, [[deep(27), [1]]]))).toBe(false);
    // Go 1.23+ keeps 128 heap frames: one stack of 33+ means nothing was cut at 32.
    expect(potentialTruncatedGoStacktraces(buildProfile(heap, [[deep(32), [1]], [deep(33), [1]]]))).toBe(false);
  });
});
