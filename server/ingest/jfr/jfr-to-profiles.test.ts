import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { ev, STATE_RUNNABLE, STATE_SLEEPING, testPools, testWriter } from "./jfr-test-schema.ts";
import { concat, type Value } from "./jfr-test-writer.ts";
import { jfrToProfiles } from "./jfr-to-profiles.ts";
import { emptyLabelsSnapshot, type LabelsSnapshot } from "./labels-snapshot.ts";

const w = testWriter();
const OPTS = { timeNanos: 5_000_000_000n, durationNanos: 10_000_000_000, period: 10_000_000 };
const MAIN_LAMBDA = "com/example/Main.main;com/example/App$$Lambda_.run";
const MAIN_WORK = "com/example/Main.main;com/example/Main.work";

function convert(events: [string, Value[]][], snapshot: LabelsSnapshot = emptyLabelsSnapshot()) {
  return jfrToProfiles(w.chunk(testPools(), events), snapshot, OPTS);
}

function byType(res: ReturnType<typeof convert>, type: string): Profile {
  const p = res.profiles.find((x) => x.profile.sampleTypes[0].type === type);
  if (!p) throw new Error(`no ${type} profile among ${res.profiles.map((x) => x.profile.sampleTypes[0].type)}`);
  return p.profile;
}

const collapsed = (p: Profile, i = 0) => Object.fromEntries(collapseProfile(p, i));

describe("cpu and wall from ExecutionSample", () => {
  test("event=itimer: cpu counts every state but SLEEPING, there is no wall profile", () => {
    const res = convert([ev.setting("event", "itimer"), ev.exec(1, STATE_RUNNABLE), ev.exec(1, STATE_RUNNABLE), ev.exec(2, STATE_SLEEPING), ev.exec(2, 77)]);
    expect(res.event).toBe("itimer");
    expect(res.profiles.map((p) => p.metric)).toEqual(["process_cpu"]);
    const cpu = byType(res, "cpu");
    // values are nanoseconds: samples × period
    expect(collapsed(cpu)).toEqual({ [MAIN_LAMBDA]: 20_000_000 });
    expect(cpu.sampleTypes).toEqual([{ type: "cpu", unit: "nanoseconds" }]);
    expect(cpu.periodType).toEqual({ type: "cpu", unit: "nanoseconds" });
    expect(cpu.timeNanos).toBe(5_000_000_000n);
    expect(cpu.durationNanos).toBe(10_000_000_000);
  });

  test("event=wall: every sample counts as wall, running ones as cpu too", () => {
    const res = convert([ev.setting("event", "wall"), ev.exec(1, STATE_RUNNABLE), ev.exec(2, STATE_SLEEPING), ev.exec(2, STATE_SLEEPING)]);
    expect(res.event).toBe("wall");
    expect(collapsed(byType(res, "cpu"))).toEqual({ [MAIN_LAMBDA]: 10_000_000 });
    const wall = byType(res, "wall");
    expect(collapsed(wall)).toEqual({ [MAIN_LAMBDA]: 10_000_000, [MAIN_WORK]: 20_000_000 });
    expect(wall.periodType).toEqual({ type: "wall", unit: "nanoseconds" });
  });

  test("the setting applies from where it appears in the recording", () => {
    const res = convert([ev.exec(1, STATE_RUNNABLE), ev.setting("event", "wall"), ev.exec(2, STATE_RUNNABLE)]);
    expect(collapsed(byType(res, "wall"))).toEqual({ [MAIN_WORK]: 10_000_000 });
  });
});

test("WallClockSample: the samples field is the weight; cpu only for running threads in wall mode", () => {
  const res = convert([ev.setting("event", "wall"), ev.wallClock(1, STATE_RUNNABLE, 3), ev.wallClock(2, STATE_SLEEPING, 5), ev.exec(2, STATE_RUNNABLE)]);
  expect(collapsed(byType(res, "wall"))).toEqual({ [MAIN_LAMBDA]: 30_000_000, [MAIN_WORK]: 60_000_000 });
  // The ExecutionSample after a WallClockSample counts once here; Pyroscope's parser would reuse
  // the last WallClockSample count (5) for it, a bug we do not copy.
  expect(collapsed(byType(res, "cpu"))).toEqual({ [MAIN_LAMBDA]: 30_000_000, [MAIN_WORK]: 10_000_000 });
});

test("allocations, live objects and parks: counts and sizes, their own profile types", () => {
  const res = convert([ev.tlab(1, 4096), ev.tlab(1, 100), ev.tlab(2, 8), ev.live(2), ev.live(2), ev.park(1, 1500)]);
  const tlab = byType(res, "alloc_in_new_tlab_objects");
  expect(tlab.sampleTypes.map((t) => `${t.type}/${t.unit}`)).toEqual(["alloc_in_new_tlab_objects/count", "alloc_in_new_tlab_bytes/bytes"]);
  expect(tlab.periodType).toEqual({ type: "space", unit: "bytes" });
  expect(collapsed(tlab, 0)).toEqual({ [MAIN_LAMBDA]: 2, [MAIN_WORK]: 1 });
  expect(collapsed(tlab, 1)).toEqual({ [MAIN_LAMBDA]: 4196, [MAIN_WORK]: 8 });
  const live = byType(res, "live");
  expect(live.periodType).toEqual({ type: "objects", unit: "count" });
  expect(collapsed(live)).toEqual({ [MAIN_WORK]: 2 });
  const park = byType(res, "contentions");
  expect(res.profiles.find((p) => p.profile === park)!.metric).toBe("block");
  expect(collapsed(park, 1)).toEqual({ [MAIN_LAMBDA]: 1500 });
  expect(res.profiles.map((p) => p.metric).sort()).toEqual(["block", "memory", "memory"]);
});

test("frames: class.method, lambda names merged, frames of unknown methods dropped, unknown stacks dropped", () => {
  const res = convert([ev.exec(3, STATE_RUNNABLE), ev.exec(12345, STATE_RUNNABLE)]);
  const cpu = byType(res, "cpu");
  expect(collapsed(cpu)).toEqual({ [MAIN_WORK]: 10_000_000 });
  expect(cpu.functions.map((f) => f.name).sort()).toEqual(["com/example/Main.main", "com/example/Main.work"]);
  // the location keeps the frame's line number
  const lines = cpu.locations.map((l) => l.lines[0].line).sort((a, b) => a - b);
  expect(lines).toEqual([3, 41]);
});

test("the same stack in two chunks is one sample", () => {
  const data = concat(w.chunk(testPools(), [ev.exec(1, STATE_RUNNABLE)]), w.chunk(testPools(), [ev.exec(1, STATE_RUNNABLE)]));
  const cpu = byType(jfrToProfiles(data, emptyLabelsSnapshot(), OPTS), "cpu");
  expect(cpu.samples.count).toBe(1);
  expect(collapsed(cpu)).toEqual({ [MAIN_LAMBDA]: 20_000_000 });
});

describe("sample labels from the LabelsSnapshot", () => {
  const snapshot: LabelsSnapshot = {
    contexts: new Map([
      [1, [10, 11]],
      [2, [10, 12, 13, 14]],
    ]),
    strings: new Map([
      [10, "thread_name"],
      [11, "worker-1"],
      [12, "worker-2"],
      [13, "route"],
      [14, "/checkout"],
      [20, "GET /cart"],
    ]),
  };
  const labelsOf = (p: Profile) => {
    const out: Record<string, number> = {};
    for (let i = 0; i < p.samples.count; i++) {
      const k = (p.samples.labels?.[i] ?? []).map((l) => `${l.key}=${l.str}`).join(",");
      out[k] = (out[k] ?? 0) + p.samples.values[i];
    }
    return out;
  };

  test("context ids select labels; samples differing only in context stay apart", () => {
    const res = convert([ev.exec(1, STATE_RUNNABLE, 1), ev.exec(1, STATE_RUNNABLE, 2), ev.exec(1, STATE_RUNNABLE, 1), ev.exec(1, STATE_RUNNABLE, 0), ev.exec(1, STATE_RUNNABLE, 99)], snapshot);
    const cpu = byType(res, "cpu");
    expect(labelsOf(cpu)).toEqual({
      "thread_name=worker-1": 20_000_000,
      "thread_name=worker-2,route=/checkout": 10_000_000,
      "": 20_000_000, // context 0 and an unknown context are two samples without labels
    });
  });

  test("span ids become profile_id (16 hex digits), span names span_name", () => {
    const res = convert([ev.exec(1, STATE_RUNNABLE, 1, 0xabcn, 20), ev.exec(1, STATE_RUNNABLE, 1, 0xfedcba9876543210n, 0)], snapshot);
    expect(labelsOf(byType(res, "cpu"))).toEqual({
      "thread_name=worker-1,profile_id=0000000000000abc,span_name=GET /cart": 10_000_000,
      "thread_name=worker-1,profile_id=fedcba9876543210": 10_000_000,
    });
  });

  test("ThreadPark ignores the context, as Pyroscope's parser does", () => {
    const res = convert([ev.park(1, 10, 1)], snapshot);
    expect(byType(res, "contentions").samples.labels).toBeNull();
  });
});
