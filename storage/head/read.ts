// Queries over a head. `ProfileReader` is the read interface every store (head, and later blocks)
// implements; the querier merges the answers of several readers.

import type { LabelPair, Labels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { matchesLabels, type Matcher } from "../model/selector.ts";
import type { Tree } from "../model/tree.ts";
import type { Head, MemSeries } from "./head.ts";
import { chunkOf, offsetOf } from "./sample-arena.ts";
import { profileFromStackSums, treeFromStackSums } from "./stack-merge.ts";

export { mergedProfileShell } from "./stack-merge.ts";

/** A query window in ms, both ends inclusive. start = end = 0 means "everything". */
export interface TimeRange {
  start: number;
  end: number;
}

export interface SelectQuery extends TimeRange {
  profileTypeId: string;
  matchers: Matcher[];
}

/** A merge of only the samples of the given spans (SelectMergeSpanProfile). */
export interface SpanQuery extends SelectQuery {
  /** Span ids, never 0n (what samples without a span hold). */
  spans: Set<bigint>;
}

export interface SeriesQuery extends SelectQuery {
  groupBy: string[];
  stepMs: number;
  aggregation: "sum" | "average";
}

export interface SeriesPoints {
  labels: Labels;
  /** Sorted by timestamp (ms); one entry per step that had data. */
  points: { timestamp: number; value: number }[];
}

/** Async because blocks read from disk; the head answers at once. */
export interface ProfileReader {
  profileTypes(r: TimeRange): Promise<string[]>;
  labelNames(matchers: Matcher[], r: TimeRange): Promise<string[]>;
  labelValues(name: string, matchers: Matcher[], r: TimeRange): Promise<string[]>;
  series(matchers: Matcher[], r: TimeRange): Promise<Labels[]>;
  selectMergeTree(q: SelectQuery): Promise<Tree>;
  selectMergeProfile(q: SelectQuery): Promise<Profile>;
  selectMergeSpanTree(q: SpanQuery): Promise<Tree>;
  selectSeries(q: SeriesQuery): Promise<SeriesPoints[]>;
}

/**
 * Whether the series has a profile in `r`. Looking at the rows, not just the series' first and
 * last time, keeps label answers the same however a series' profiles are split into blocks.
 */
function inRange(s: MemSeries, r: TimeRange): boolean {
  if (r.start === 0 && r.end === 0) return true;
  if (s.maxTime < r.start || s.minTime > r.end) return false;
  if (s.minTime >= r.start && s.maxTime <= r.end) return true;
  for (const t of s.timeMs) if (t >= r.start && t <= r.end) return true;
  return false;
}

function rows(s: MemSeries, r: TimeRange): number[] {
  if (r.start === 0 && r.end === 0) return s.timeMs.map((_, i) => i);
  return s.rowsInRange(r.start, r.end);
}

export class HeadReader implements ProfileReader {
  constructor(private readonly head: Head) {}

  private select(matchers: Matcher[], r: TimeRange): MemSeries[] {
    return this.head.series.filter((s) => inRange(s, r) && matchesLabels(matchers, s.labels));
  }

  private selectTyped(q: SelectQuery): MemSeries[] {
    return this.head.series.filter((s) => s.profileType === q.profileTypeId && inRange(s, q) && matchesLabels(q.matchers, s.labels));
  }

  async profileTypes(r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.head.series) if (inRange(s, r)) out.add(s.profileType);
    return [...out];
  }

  async labelNames(matchers: Matcher[], r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.select(matchers, r)) for (const l of s.labels) out.add(l.name);
    return [...out];
  }

  async labelValues(name: string, matchers: Matcher[], r: TimeRange): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.select(matchers, r)) for (const l of s.labels) if (l.name === name && l.value !== "") out.add(l.value);
    return [...out];
  }

  async series(matchers: Matcher[], r: TimeRange): Promise<Labels[]> {
    return this.select(matchers, r).map((s) => s.labels);
  }

  // Scratch for sumStacks, reused across queries (they run synchronously, one at a time), so a
  // query costs what it touches, not the size of the head's whole stack table.
  private scratch = new Float64Array(0);
  private seen = new Uint8Array(0);

  /**
   * Sums the selected rows into one value per stack id, the core of every merge query. Returns the
   * stack ids touched (ascending) and their sums. With `spans`, only samples of those spans count.
   */
  private sumStacks(q: SelectQuery, spans?: Set<bigint>): { ids: Uint32Array; sums: Float64Array } {
    const n = this.head.symbols.stackCount;
    if (this.scratch.length < n) {
      this.scratch = new Float64Array(n * 2);
      this.seen = new Uint8Array(n * 2);
    }
    const acc = this.scratch;
    const seen = this.seen;
    const touched: number[] = [];
    const arena = this.head.samplesArena;
    for (const s of this.selectTyped(q)) {
      for (const r of rows(s, q)) {
        const sp = s.spans[r];
        if (spans && !sp) continue;
        const ref = s.sampleAt[r];
        const ids = arena.ids[chunkOf(ref)];
        const vs = arena.values[chunkOf(ref)];
        const at = offsetOf(ref);
        const n = s.sampleCount[r];
        for (let k = 0; k < n; k++) {
          if (spans && !spans.has(sp![k])) continue;
          const i = at + k;
          const id = ids[i];
          if (seen[id] === 0) {
            seen[id] = 1;
            touched.push(id);
          }
          acc[id] += vs[i];
        }
      }
    }
    const ids = Uint32Array.from(touched).sort();
    const sums = new Float64Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      sums[i] = acc[id];
      acc[id] = 0;
      seen[id] = 0;
    }
    return { ids, sums };
  }

  async selectMergeTree(q: SelectQuery): Promise<Tree> {
    const { ids, sums } = this.sumStacks(q);
    return treeFromStackSums(this.head.symbols, ids, sums);
  }

  async selectMergeProfile(q: SelectQuery): Promise<Profile> {
    const { ids, sums } = this.sumStacks(q);
    return profileFromStackSums(q, this.head.symbols, ids, sums);
  }

  async selectMergeSpanTree(q: SpanQuery): Promise<Tree> {
    const { ids, sums } = this.sumStacks(q, q.spans);
    return treeFromStackSums(this.head.symbols, ids, sums);
  }

  async selectSeries(q: SeriesQuery): Promise<SeriesPoints[]> {
    const groups = new Map<string, { labels: Labels; buckets: Map<number, { sum: number; n: number }> }>();
    const step = Math.max(1, q.stepMs);
    for (const s of this.selectTyped(q)) {
      const labels: LabelPair[] = [];
      for (const name of q.groupBy) {
        const l = s.labels.find((x) => x.name === name);
        if (l) labels.push({ name: l.name, value: l.value });
      }
      const key = labels.map((l) => `${l.name}\xff${l.value}`).join("\xff");
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { labels, buckets: new Map() }));
      for (const r of rows(s, q)) {
        const vs = s.arena.values[chunkOf(s.sampleAt[r])];
        const at = offsetOf(s.sampleAt[r]);
        let total = 0;
        for (let i = at; i < at + s.sampleCount[r]; i++) total += vs[i];
        // A profile at t belongs to the point at the first step boundary >= t (Pyroscope's (t-step, t]).
        const t = s.timeMs[r];
        const k = Math.max(0, Math.ceil((t - q.start) / step));
        const ts = q.start + k * step;
        if (ts > q.end) continue;
        const b = g.buckets.get(ts);
        if (b) {
          b.sum += total;
          b.n++;
        } else g.buckets.set(ts, { sum: total, n: 1 });
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
}
