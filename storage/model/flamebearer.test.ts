import { describe, expect, test } from "bun:test";
import {
  calcPointInterval,
  encodeFlamebearer,
  flamebearerDiffResponse,
  flamebearerMetadata,
  flamebearerResponse,
  timelineFromPoints,
} from "./flamebearer.ts";
import { flamegraphFromTree } from "./flamegraph.ts";
import { Tree } from "./tree.ts";

function workedExample() {
  const t = new Tree();
  t.insertStack(["a", "b", "e"], 1);
  t.insertStack(["a", "c"], 2);
  t.insertStack(["a", "c", "d"], 1);
  return flamegraphFromTree(t, -1);
}

describe("flamebearerResponse", () => {
  test("Pyroscope's Test_ExportToFlamebearer", () => {
    const fb = flamebearerResponse({ flamegraph: workedExample(), sampleType: "inuse_space", sampleUnit: "bytes", timeline: null });
    expect(fb).toEqual({
      version: 1,
      flamebearer: {
        names: ["total", "a", "c", "d", "b", "e"],
        levels: [
          [0, 4, 0, 0],
          [0, 4, 0, 1],
          [0, 1, 0, 4, 0, 3, 2, 2],
          [0, 1, 1, 5, 2, 1, 1, 3],
        ],
        numTicks: 4,
        maxSelf: 2,
      },
      metadata: { format: "single", spyName: "", sampleRate: 100, units: "bytes", name: "inuse_space" },
      timeline: null,
      groups: null,
      heatmap: null,
    });
  });

  test("nil flame graph (Test_ExportToFlamebearer/nil)", () => {
    const fb = flamebearerResponse({ flamegraph: null, sampleType: "inuse_space", sampleUnit: "bytes", timeline: null });
    expect(fb.flamebearer).toEqual({ names: null, levels: [], numTicks: 0, maxSelf: 0 });
    expect(encodeFlamebearer(fb)).toBe(
      '{"version":1,"flamebearer":{"names":null,"levels":[],"numTicks":0,"maxSelf":0},' +
        '"metadata":{"format":"single","spyName":"","sampleRate":100,"units":"bytes","name":"inuse_space"},' +
        '"timeline":null,"groups":null,"heatmap":null}\n',
    );
  });

  test("units and sample rate rules", () => {
    expect(flamebearerMetadata("cpu", "nanoseconds")).toMatchObject({ units: "samples", sampleRate: 1_000_000_000 });
    for (const t of ["inuse_objects", "alloc_objects", "goroutine", "samples"]) {
      expect(flamebearerMetadata(t, "count")).toMatchObject({ units: "objects", sampleRate: 100, name: t });
    }
    expect(flamebearerMetadata("wall", "nanoseconds")).toMatchObject({ units: "nanoseconds", sampleRate: 100 });
    expect(flamebearerMetadata("alloc_space", "bytes")).toMatchObject({ units: "bytes", sampleRate: 100 });
  });

  test("exact JSON: field order, sorted groups, Go's HTML escaping", () => {
    const tl = timelineFromPoints([{ timestamp: 20_000, value: 7 }], 0, 40_000, 10);
    const t = new Tree();
    t.insertStack(["List<T>", "a&b"], 3);
    const fb = flamebearerResponse({
      flamegraph: flamegraphFromTree(t, 0),
      sampleType: "cpu",
      sampleUnit: "nanoseconds",
      timeline: tl,
      groups: new Map([
        ["b", tl],
        ["10", tl],
        ["2", tl],
      ]),
    });
    const tlJson = '{"startTime":0,"samples":[0,0,7,0],"durationDelta":10,"watermarks":null}';
    expect(encodeFlamebearer(fb)).toBe(
      '{"version":1,"flamebearer":{"names":["total","List\\u003cT\\u003e","a\\u0026b"],' +
        '"levels":[[0,3,0,0],[0,3,0,1],[0,3,3,2]],"numTicks":3,"maxSelf":3},' +
        '"metadata":{"format":"single","spyName":"","sampleRate":1000000000,"units":"samples","name":"cpu"},' +
        `"timeline":${tlJson},"groups":{"10":${tlJson},"2":${tlJson},"b":${tlJson}},"heatmap":null}\n`,
    );
    expect(JSON.parse(encodeFlamebearer(fb)).flamebearer.names[1]).toBe("List<T>");
  });

  test("groupBy with no series gives {}", () => {
    const fb = flamebearerResponse({ flamegraph: workedExample(), sampleType: "cpu", sampleUnit: "nanoseconds", timeline: null, groups: {} });
    expect(encodeFlamebearer(fb)).toContain('"groups":{},"heatmap":null}');
  });

  test("diff body: double format, ticks omitted when zero", () => {
    const fg = { names: ["total"], levels: [[0, 3, 0, 0, 2, 0, 0]], total: 5, maxSelf: 0 };
    const fb = flamebearerDiffResponse({ flamegraph: { ...fg, leftTicks: 3, rightTicks: 2 }, sampleType: "cpu", sampleUnit: "nanoseconds" });
    expect(fb.metadata.format).toBe("double");
    expect(encodeFlamebearer(fb)).toEndWith('"timeline":null,"groups":null,"heatmap":null,"leftTicks":3,"rightTicks":2}\n');
    const empty = flamebearerDiffResponse({ flamegraph: { ...fg, leftTicks: 0, rightTicks: 0 }, sampleType: "cpu", sampleUnit: "nanoseconds" });
    expect(encodeFlamebearer(empty)).toEndWith('"heatmap":null}\n');
  });
});

describe("calcPointInterval (Pyroscope's Test_CalcPointInterval)", () => {
  const start = Date.UTC(2023, 3, 18, 1, 2, 3);
  const hour = 3600_000;
  const day = 24 * hour;
  test.each([
    ["1 second", 1000, 15],
    ["1 hour", hour, 15],
    ["7 days", 7 * day, 300],
    ["30 days", 30 * day, 1800],
    ["~6 months", 6 * 30 * day, 10800],
    ["~1 year", 12 * 30 * day, 21600],
    ["~2 years", 2 * 12 * 30 * day, 43200],
    ["~5 years", 5 * 12 * 30 * day, 86400],
  ])("%s", (_, span, want) => {
    expect(calcPointInterval(start, start + span)).toBe(want);
  });

  test("custom minimum (CalcPointIntervalWithMinInterval)", () => {
    expect(calcPointInterval(start, start + 1000, 5)).toBe(5);
    expect(calcPointInterval(start, start + hour, 5)).toBe(5);
    expect(calcPointInterval(start, start + 7 * day, 5)).toBe(300);
    expect(calcPointInterval(start, start + 10_000, 1)).toBe(1);
    expect(calcPointInterval(start, start + hour, 1)).toBe(2);
  });

  test("ladder edges and the top rungs", () => {
    // interval = span / 1500; 17.5 s is still 15 s, just above is 20 s
    expect(calcPointInterval(0, 17_500 * 1500)).toBe(15);
    expect(calcPointInterval(0, 17_501 * 1500)).toBe(20);
    expect(calcPointInterval(0, 1_814_400_001 * 1500)).toBe(2_592_000);
    expect(calcPointInterval(0, 3_628_800_000 * 1500)).toBe(31_536_000);
    expect(calcPointInterval(1000, 0)).toBe(15);
  });
});

describe("timelineFromPoints (Pyroscope's timeline tests)", () => {
  const samples = (pts: [number, number][], from: number, until: number, step: number) =>
    timelineFromPoints(
      pts.map(([timestamp, value]) => ({ timestamp, value })),
      from,
      until,
      step,
    );

  test("no backfill, start snapped to the step", () => {
    const tl = samples([[1692395965, 99]], 1692395965, 1692395965 + 10_000, 10);
    expect(tl).toEqual({ startTime: 1692390, samples: [99], durationDelta: 10, watermarks: null });
  });

  test("backfill around one point", () => {
    const tl = samples([[1692397077190, 99]], 1692397017190, 1692397137190, 10);
    expect(tl.startTime).toBe(1692397010);
    expect(tl.samples).toEqual([0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0]);
  });

  test("backfill in the middle", () => {
    const tl = samples(
      [
        [1692397718567, 99],
        [1692397738567, 98],
      ],
      1692397658567,
      1692397778567,
      10,
    );
    expect(tl.startTime).toBe(1692397650);
    expect(tl.samples).toEqual([0, 0, 0, 0, 0, 0, 99, 0, 98, 0, 0, 0]);
  });

  test("no points: all zeros", () => {
    const tl = samples([], 1692398026941, 1692398146941, 10);
    expect(tl.startTime).toBe(1692398020);
    expect(tl.samples).toEqual(new Array(12).fill(0));
  });

  const series: [number, number][] = [
    [2000, 69],
    [3000, 83],
    [6000, 85],
    [8000, 91],
  ];

  test("arbitrary gaps", () => {
    expect(samples(series, 0, 10_000, 1).samples).toEqual([0, 0, 69, 83, 0, 0, 85, 0, 91, 0]);
  });

  test("last sample", () => {
    const pts: [number, number][] = [
      [23000, 69],
      [53000, 91],
    ];
    const a = samples(pts, 3000, 53000, 10);
    expect(a.startTime).toBe(0);
    expect(a.samples).toEqual([0, 0, 69, 0, 0]);
    expect(samples(pts, 3000, 63000, 10).samples).toEqual([0, 0, 69, 0, 0, 91]);
  });

  test("bounds", () => {
    expect(samples(series, 1000, 10_000, 1).samples).toEqual([0, 69, 83, 0, 0, 85, 0, 91, 0]);
    expect(samples(series, 0, 9000, 1).samples).toEqual([0, 0, 69, 83, 0, 0, 85, 0, 91]);
    expect(samples(series, 1000, 9000, 1).samples).toEqual([0, 69, 83, 0, 0, 85, 0, 91]);
    expect(samples(series, 1000, 1000, 1)).toEqual({ startTime: 1, samples: [], durationDelta: 1, watermarks: null });
    expect(samples(series, 9000, 1000, 1).samples).toEqual([]);
    expect(samples(series, 10_000, 20_000, 1).samples).toEqual(new Array(10).fill(0));
  });

  test("values become non-negative integers", () => {
    expect(samples([[0, 2.9], [1000, -4]], 0, 3000, 1).samples).toEqual([2, 0, 0]);
  });
});
