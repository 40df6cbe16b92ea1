// The /pyroscope/render body: Pyroscope's flamebearer JSON (pkg/og/structs/flamebearer,
// ExportToFlamebearer) and its timeline, stepped on Grafana's ladder (pkg/querier/timeline).

import type { FlameGraph } from "./flamegraph.ts";

export interface FlamebearerTimeline {
  /** Seconds, snapped down to the step. */
  startTime: number;
  samples: number[];
  /** The step in seconds. */
  durationDelta: number;
  watermarks: null;
}

export interface FlamebearerMetadata {
  format: "single" | "double";
  spyName: string;
  sampleRate: number;
  units: string;
  name: string;
}

/** Field order is Go's encoding/json order; keep it when building one. */
export interface FlamebearerProfile {
  version: 1;
  flamebearer: { names: string[] | null; levels: number[][]; numTicks: number; maxSelf: number };
  metadata: FlamebearerMetadata;
  timeline: FlamebearerTimeline | null;
  groups: Record<string, FlamebearerTimeline> | null;
  heatmap: null;
  /** Only in "double" (diff) bodies, and only when non-zero (Go's omitempty). */
  leftTicks?: number;
  rightTicks?: number;
}

/**
 * units/sampleRate as ExportToFlamebearer sets them: the sample unit, except object-count types
 * → "objects" and cpu → "samples" at 1e9 (nanosecond ticks); sampleRate 100 otherwise.
 */
export function flamebearerMetadata(sampleType: string, sampleUnit: string, format: "single" | "double" = "single"): FlamebearerMetadata {
  let units = sampleUnit;
  let sampleRate = 100;
  switch (sampleType) {
    case "inuse_objects":
    case "alloc_objects":
    case "goroutine":
    case "samples":
      units = "objects";
      break;
    case "cpu":
      units = "samples";
      sampleRate = 1_000_000_000;
      break;
  }
  return { format, spyName: "", sampleRate, units, name: sampleType };
}

/**
 * The render response. `flamegraph: null` gives Pyroscope's nil-flamegraph body (names null,
 * no levels). `groups` is null unless the request had a groupBy; pass {} (or a Map) then, even
 * if no series came back.
 */
export function flamebearerResponse(args: {
  flamegraph: FlameGraph | null;
  sampleType: string;
  sampleUnit: string;
  timeline: FlamebearerTimeline | null;
  groups?: Map<string, FlamebearerTimeline> | Record<string, FlamebearerTimeline> | null;
}): FlamebearerProfile {
  const fg = args.flamegraph;
  const g = args.groups;
  return {
    version: 1,
    flamebearer: {
      names: fg ? fg.names : null,
      levels: fg ? fg.levels : [],
      numTicks: fg ? fg.total : 0,
      maxSelf: fg ? fg.maxSelf : 0,
    },
    metadata: flamebearerMetadata(args.sampleType, args.sampleUnit),
    timeline: args.timeline,
    groups: g == null ? null : g instanceof Map ? Object.fromEntries(g) : g,
    heatmap: null,
  };
}

/**
 * The render-diff response (ExportDiffToFlamebearer): "double" format, 7-tuple levels, no
 * timeline, leftTicks/rightTicks omitted when zero.
 */
export function flamebearerDiffResponse(args: {
  flamegraph: FlameGraph & { leftTicks: number; rightTicks: number };
  sampleType: string;
  sampleUnit: string;
}): FlamebearerProfile {
  const fg = args.flamegraph;
  const out: FlamebearerProfile = {
    version: 1,
    flamebearer: { names: fg.names, levels: fg.levels, numTicks: fg.total, maxSelf: fg.maxSelf },
    metadata: flamebearerMetadata(args.sampleType, args.sampleUnit, "double"),
    timeline: null,
    groups: null,
    heatmap: null,
  };
  if (fg.leftTicks) out.leftTicks = fg.leftTicks;
  if (fg.rightTicks) out.rightTicks = fg.rightTicks;
  return out;
}

/**
 * Serialises a body byte for byte as Go's json.Encoder would: group keys sorted by bytes (plain
 * JSON.stringify puts integer-like keys first), `<`, `>`, `&`, U+2028 and U+2029 escaped, and a
 * trailing newline.
 */
export function encodeFlamebearer(fb: FlamebearerProfile): string {
  let groups = "null";
  if (fb.groups) {
    const keys = Object.keys(fb.groups).sort(compareBytes);
    groups = "{" + keys.map((k) => JSON.stringify(k) + ":" + JSON.stringify(fb.groups![k])).join(",") + "}";
  }
  const { groups: _, ...rest } = fb;
  // Splice the ordered groups back in at their place (between timeline and heatmap).
  const head = JSON.stringify({ version: rest.version, flamebearer: rest.flamebearer, metadata: rest.metadata, timeline: rest.timeline });
  const tail = JSON.stringify({ heatmap: rest.heatmap, leftTicks: rest.leftTicks, rightTicks: rest.rightTicks });
  const json = head.slice(0, -1) + ',"groups":' + groups + "," + tail.slice(1);
  return json.replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")) + "\n";
}

const enc = new TextEncoder();

function compareBytes(a: string, b: string): number {
  return Buffer.compare(enc.encode(a), enc.encode(b));
}

/**
 * The timeline step in seconds for a range (CalcPointInterval): (until − from) / 1500, at least
 * `minIntervalSec` (15 s by default), rounded to Grafana's ladder.
 */
export function calcPointInterval(fromMs: number, untilMs: number, minIntervalSec = 15): number {
  // Go divides integer nanoseconds; (ms · 1e6) / 1500 = ms · 2000 / 3, exact in doubles.
  const intervalNs = Math.trunc(((untilMs - fromMs) * 2000) / 3);
  if (intervalNs < minIntervalSec * 1e9) return minIntervalSec;
  return roundIntervalMs(intervalNs) / 1000;
}

// [upper bound ms (inclusive), step ms]: Grafana's intervalv2 ladder.
const LADDER: [number, number][] = [
  [10, 1],
  [15, 10],
  [35, 20],
  [75, 50],
  [150, 100],
  [350, 200],
  [750, 500],
  [1500, 1000],
  [3500, 2000],
  [7500, 5000],
  [12500, 10000],
  [17500, 15000],
  [25000, 20000],
  [45000, 30000],
  [90000, 60000],
  [210000, 120000],
  [450000, 300000],
  [750000, 600000],
  [1050000, 900000],
  [1500000, 1200000],
  [2700000, 1800000],
  [5400000, 3600000],
  [9000000, 7200000],
  [16200000, 10800000],
  [32400000, 21600000],
  [86400000, 43200000],
  [172800000, 86400000],
  [604800000, 86400000],
  [1814400000, 604800000],
];

/** The ladder step (ms) for an interval in nanoseconds. */
function roundIntervalMs(ns: number): number {
  for (const [bound, step] of LADDER) if (ns <= bound * 1e6) return step;
  // The last rung is exclusive in Go: < 6 weeks → 30 days, else a year.
  return ns < 3628800000 * 1e6 ? 2592000000 : 31536000000;
}

/**
 * The flamebearer timeline (pkg/querier/timeline New): from and until snapped down to the step,
 * one sample per step over [from, until), zeros where no point falls. Points must be sorted;
 * each lands `max(1, ⌊Δseconds/step⌋)` slots after the previous one, as in Pyroscope. Values are
 * truncated to non-negative integers (Go's uint64 conversion). A step below 1 s is treated as 1 s
 * (Pyroscope would divide by zero).
 */
export function timelineFromPoints(
  points: readonly { timestamp: number; value: number }[],
  fromMs: number,
  untilMs: number,
  stepSec: number,
): FlamebearerTimeline {
  const step = Math.max(1, Math.trunc(stepSec));
  const stepMs = step * 1000;
  const startMs = Math.trunc(fromMs / stepMs) * stepMs;
  const endMs = Math.trunc(untilMs / stepMs) * stepMs;
  const timeline: FlamebearerTimeline = { startTime: Math.trunc(startMs / 1000), samples: [], durationDelta: step, watermarks: null };
  if (startMs >= endMs) return timeline;
  const slots = (a: number, b: number) => Math.trunc((Math.trunc(b / 1000) - Math.trunc(a / 1000)) / step);
  const n = slots(startMs, endMs);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(0);
  timeline.samples = samples;

  // Only points in [startMs, endMs), trimmed from both ends as Pyroscope does.
  let lo = 0;
  while (lo < points.length && points[lo].timestamp < startMs) lo++;
  let hi = points.length - 1;
  while (hi >= lo && points[hi].timestamp >= endMs) hi--;
  if (lo > hi) return timeline;

  let pos = Math.max(0, slots(startMs, points[lo].timestamp));
  let prev = points[lo].timestamp;
  for (let i = lo; i <= hi; i++) {
    const p = points[i];
    const gap = slots(prev, p.timestamp) - 1;
    if (gap > 0) pos += gap;
    if (pos >= n) break;
    const v = Math.trunc(p.value);
    samples[pos++] = v > 0 ? v : 0;
    prev = p.timestamp;
  }
  return timeline;
}
