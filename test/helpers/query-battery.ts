// A battery of queries for storage tests: every ProfileReader method over selectors, time ranges,
// profile types and series steps, answered by one reader or merged over several (the union of
// blocks), normalised so two stores holding the same profiles give equal answers.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import type { ProfileReader, SelectQuery, SeriesQuery, TimeRange } from "../../storage/head/read.ts";
import { parseSpanId, SPAN_ID_LABELS } from "../../storage/model/span-id.ts";
import { collapseProfile } from "../../storage/model/collapse.ts";
import { labelsKey, sortLabels, type Labels } from "../../storage/model/labels.ts";
import { selectSamples, type Profile } from "../../storage/model/profile.ts";
import { parseSelector } from "../../storage/model/selector.ts";
import { collapsed, Tree } from "../../storage/model/tree.ts";
import { FIXTURES } from "./pprof-oracle.ts";

/** A pprof fixture decoded by the server's decoder (gunzipped first when needed). */
export function fixtureProfile(name: string): Profile {
  let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", name));
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return decodePprof(b);
}

/** Splits a profile by its string sample labels into series, as the distributor does. */
export function splitBySampleLabels(labels: Labels, p: Profile): { labels: Labels; profile: Profile }[] {
  const sl = p.samples.labels;
  if (!sl) return [{ labels, profile: p }];
  const groups = new Map<string, { extra: Labels; idx: number[] }>();
  for (let i = 0; i < p.samples.count; i++) {
    // Span and trace ids stay with the samples, as in the distributor.
    const extra = sortLabels(
      (sl[i] ?? []).filter((l) => l.str !== "" && !SPAN_ID_LABELS.has(l.key) && l.key !== "trace_id").map((l) => ({ name: l.key.replaceAll(".", "_"), value: l.str })),
    );
    const key = labelsKey(extra);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { extra, idx: [] }));
    g.idx.push(i);
  }
  return [...groups.values()].map((g) => ({
    labels: sortLabels([...labels, ...g.extra.filter((e) => !labels.some((l) => l.name === e.name))]),
    profile: selectSamples(p, g.idx),
  }));
}

/** The profile at `timeMs` with values scaled by a factor cycling with `i`, so rows differ. */
export function scaledProfile(p: Profile, i: number, timeMs: number): Profile {
  const values = p.samples.values.map((v, j) => v * (1 + ((i + j) % 5)));
  return { ...p, timeNanos: BigInt(timeMs) * 1000000n, samples: { ...p.samples, values } };
}

export interface Battery {
  ranges: [string, TimeRange][];
  /** Selectors for the label queries. */
  selectors: string[];
  /** Fewer for merge queries, which cost more to compare. */
  mergeSelectors: string[];
  /** [selector, groupBy, step in ms] for selectSeries. */
  seriesCases: [string, string[], number][];
  labelNames: string[];
  /** Merge and series queries run for these profile types (of those present); default all. */
  profileTypes?: string[];
  /** Span selectors (sets of 16-hex span ids) for selectMergeSpanTree, run with each merge selector. */
  spanSelectors?: string[][];
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

/**
 * Every answer of the battery, keyed by a description of its query. With several readers the
 * answers are merged as the querier does: sets united, trees merged, collapsed profiles and
 * series points summed (so only "sum" aggregation; "average" does not merge across stores).
 */
export async function batteryAnswers(readers: ProfileReader[], b: Battery, aggregations: ("sum" | "average")[] = ["sum"]): Promise<Map<string, unknown>> {
  if (readers.length !== 1 && aggregations.includes("average")) throw new Error("average does not merge across readers");
  const out = new Map<string, unknown>();
  const all = async <T>(f: (r: ProfileReader) => Promise<T>) => Promise.all(readers.map(f));
  const present = sorted(new Set((await all((r) => r.profileTypes({ start: 0, end: 0 }))).flat()));
  const types = b.profileTypes ? present.filter((t) => b.profileTypes!.includes(t)) : present;
  for (const [rname, r] of b.ranges) {
    out.set(`profileTypes ${rname}`, sorted(new Set((await all((x) => x.profileTypes(r))).flat())));
    for (const sel of b.selectors) {
      const m = parseSelector(sel);
      out.set(`labelNames ${rname} ${sel}`, sorted(new Set((await all((x) => x.labelNames(m, r))).flat())));
      for (const name of b.labelNames) out.set(`labelValues ${name} ${rname} ${sel}`, sorted(new Set((await all((x) => x.labelValues(name, m, r))).flat())));
      out.set(`series ${rname} ${sel}`, sorted(new Set((await all((x) => x.series(m, r))).flat().map(labelsKey))));
    }
    for (const profileTypeId of types) {
      for (const sel of b.mergeSelectors) {
        const q: SelectQuery = { profileTypeId, matchers: parseSelector(sel), ...r };
        const tree = new Tree();
        for (const t of await all((x) => x.selectMergeTree(q))) tree.merge(t);
        out.set(`tree ${profileTypeId} ${rname} ${sel}`, { total: tree.total(), stacks: [...collapsed(tree)].sort((p, q) => (p[0] < q[0] ? -1 : 1)) });
        const stacks = new Map<string, number>();
        let shell: unknown = null;
        for (const p of await all((x) => x.selectMergeProfile(q))) {
          shell = { sampleTypes: p.sampleTypes, periodType: p.periodType, period: p.period, timeNanos: p.timeNanos, durationNanos: p.durationNanos };
          for (const [k, v] of collapseProfile(p, 0)) stacks.set(k, (stacks.get(k) ?? 0) + v);
        }
        out.set(`profile ${profileTypeId} ${rname} ${sel}`, { shell, stacks: [...stacks].sort((p, q) => (p[0] < q[0] ? -1 : 1)) });
        for (const ids of b.spanSelectors ?? []) {
          const spanTree = new Tree();
          for (const t of await all((x) => x.selectMergeSpanTree({ ...q, spans: new Set(ids.map(parseSpanId)) }))) spanTree.merge(t);
          out.set(`spanTree ${profileTypeId} ${rname} ${sel} ${ids}`, { total: spanTree.total(), stacks: [...collapsed(spanTree)].sort((p, q) => (p[0] < q[0] ? -1 : 1)) });
        }
      }
      for (const [sel, groupBy, stepMs] of b.seriesCases)
        for (const aggregation of aggregations) {
          const q: SeriesQuery = { profileTypeId, matchers: parseSelector(sel), ...r, groupBy, stepMs, aggregation };
          const groups = new Map<string, Map<number, number>>();
          for (const answer of await all((x) => x.selectSeries(q)))
            for (const s of answer) {
              const key = labelsKey(s.labels);
              let g = groups.get(key);
              if (!g) groups.set(key, (g = new Map()));
              for (const p of s.points) g.set(p.timestamp, (g.get(p.timestamp) ?? 0) + p.value);
            }
          const norm = [...groups].map(([key, g]) => ({ key, points: [...g].sort((p, q) => p[0] - q[0]) })).sort((p, q) => (p.key < q.key ? -1 : 1));
          out.set(`selectSeries ${profileTypeId} ${rname} ${sel} by ${groupBy} step ${stepMs} ${aggregation}`, norm);
        }
    }
  }
  return out;
}

/** How many answers of a battery hold something (a non-empty list, tree or series). */
export function nonEmptyAnswers(answers: Map<string, unknown>): number {
  let n = 0;
  for (const v of answers.values()) {
    if (Array.isArray(v) ? v.length > 0 : v && typeof v === "object" && "stacks" in v ? (v as { stacks: unknown[] }).stacks.length > 0 : false) n++;
  }
  return n;
}
