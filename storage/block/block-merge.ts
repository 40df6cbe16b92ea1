// Turns the sums of a block query into answers: a name-keyed tree or a pprof-shaped profile from
// per-stack sums, series points from per-profile totals. Same rules as the head's reader.

import { mergedProfileShell, type SelectQuery, type SeriesPoints, type SeriesQuery } from "../head/read.ts";
import type { LabelPair, Labels } from "../model/labels.ts";
import type { Func, Location, Mapping, Profile } from "../model/profile.ts";
import { Tree } from "../model/tree.ts";
import type { BlockSymbols } from "./block-symbols.ts";

/** A tree of the stacks `ids` (ascending block stack ids) with values `sums`; zeros skipped. */
export function mergeTree(sym: BlockSymbols, ids: Uint32Array, sums: Float64Array): Tree {
  const tree = new Tree(sym.names);
  const frames: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const v = sums[i];
    if (v !== 0) tree.insertStackIds(sym.stackNameIds(ids[i], frames), v, true);
  }
  return tree;
}

/** One sample per non-empty stack with a non-zero sum; symbols copied and renumbered densely. */
export function mergeProfile(q: SelectQuery, sym: BlockSymbols, ids: Uint32Array, sums: Float64Array): Profile {
  const locMap = new Map<number, number>();
  const fnMap = new Map<number, number>();
  const mapMap = new Map<number, number>();
  const locations: Location[] = [];
  const functions: Func[] = [];
  const mappings: Mapping[] = [];
  const locStart: number[] = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const v = sums[i];
    if (v === 0 || id === 0) continue;
    for (let node = id; node !== 0; node = sym.stackParent[node]) {
      const g = sym.stackLoc[node];
      let li = locMap.get(g);
      if (li === undefined) {
        const loc = sym.locations[g];
        let mi = -1;
        if (loc.mapping >= 0) {
          mi = mapMap.get(loc.mapping) ?? -1;
          if (mi < 0) {
            mi = mappings.length;
            mappings.push(sym.mappings[loc.mapping]);
            mapMap.set(loc.mapping, mi);
          }
        }
        const lines = loc.lines.map((l) => {
          let fi = fnMap.get(l.fn);
          if (fi === undefined) {
            fi = functions.length;
            functions.push(sym.functions[l.fn]);
            fnMap.set(l.fn, fi);
          }
          return { fn: fi, line: l.line };
        });
        li = locations.length;
        locations.push({ mapping: mi, address: loc.address, lines, isFolded: loc.isFolded });
        locMap.set(g, li);
      }
      locs.push(li);
    }
    locStart.push(locs.length);
    values.push(v);
  }
  return {
    ...mergedProfileShell(q),
    mappings,
    functions,
    locations,
    samples: {
      count: values.length,
      locStart: Uint32Array.from(locStart),
      locs: Uint32Array.from(locs),
      values: Float64Array.from(values),
      labels: null,
    },
  };
}

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
