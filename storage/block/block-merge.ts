// Turns per-profile totals of a block query into series points, by the head's rules. (Trees and
// profiles from per-stack sums are shared with the head: storage/head/stack-merge.ts.)

import type { SeriesPoints, SeriesQuery } from "../head/read.ts";
import type { LabelPair, Labels } from "../model/labels.ts";

/** One selected series: its profiles' times (ms, ascending) and value totals. */
export interface SeriesTotals {
  labels: Labels;
  timeMs: ArrayLike<number>;
  totals: ArrayLike<number>;
}

/**
 * Groups series by the values of q.groupBy and buckets their profiles by step: a profile at t
 * belongs to the point at the first step boundary >= t (Pyroscope's (t-step, t]). A series with
 * no profiles in range still makes its group, with no points, as in the head.
 */
export function seriesPoints(q: SeriesQuery, series: SeriesTotals[]): SeriesPoints[] {
  const groups = new Map<string, { labels: Labels; buckets: Map<number, { sum: number; n: number }> }>();
  const step = Math.max(1, q.stepMs);
  for (const s of series) {
    const labels: LabelPair[] = [];
    for (const name of q.groupBy) {
      const l = s.labels.find((x) => x.name === name);
      if (l) labels.push({ name: l.name, value: l.value });
    }
    const key = labels.map((l) => `${l.name}\xff${l.value}`).join("\xff");
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { labels, buckets: new Map() }));
    for (let k = 0; k < s.timeMs.length; k++) {
      const t = s.timeMs[k];
      const ts = q.start + Math.max(0, Math.ceil((t - q.start) / step)) * step;
      if (ts > q.end) continue;
      const b = g.buckets.get(ts);
      if (b) {
        b.sum += s.totals[k];
        b.n++;
      } else g.buckets.set(ts, { sum: s.totals[k], n: 1 });
    }
  }
  const out: SeriesPoints[] = [];
  for (const g of groups.values()) {
    const points = [...g.buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([timestamp, b]) => ({ timestamp, value: q.aggregation === "average" ? b.sum / b.n : b.sum }));
    out.push({ labels: g.labels, points });
  }
  return out;
}
