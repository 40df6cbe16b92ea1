// The in-memory head of one tenant: series, interned symbols and one row per (profile × sample
// type). Durability is the WAL's job (the ingester appends there first); a block is cut from this.

import {
  LABEL_DELTA,
  LABEL_NAME,
  LABEL_PERIOD_TYPE,
  LABEL_PERIOD_UNIT,
  LABEL_PROFILE_TYPE,
  LABEL_TYPE,
  LABEL_UNIT,
  getLabel,
  labelsKey,
  sortLabels,
  type Labels,
} from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { profileTypeId } from "../model/profile-type.ts";
import { sampleSpanIds } from "../model/span-id.ts";
import { chunkOf, offsetOf, SampleArena, type SampleRef } from "./sample-arena.ts";
import { SymbolTable } from "./symbol-table.ts";

// Labels the ingester strips before storage: they steer ingestion, they do not name a series.
const STRIPPED = new Set([LABEL_DELTA, "__otel__", "__order__"]);

/** One stored series: a label set including its profile type, and its rows in time order. */
export class MemSeries {
  readonly profileType: string;
  minTime = Infinity;
  maxTime = -Infinity;
  /**
   * Row r: timestamp (ms), duration (ns), its samples (sampleCount[r] stack ids and values at
   * sampleAt[r] in the head's arena), and their span ids (0n for none) or null when the row has
   * none. With spans, a stack id may repeat in a row, once per span.
   */
  readonly timeMs: number[] = [];
  readonly durationNs: number[] = [];
  readonly sampleAt: SampleRef[] = [];
  readonly sampleCount: number[] = [];
  readonly spans: (BigUint64Array | null)[] = [];
  sorted = true;

  constructor(
    readonly ref: number,
    readonly labels: Labels,
    readonly key: string,
    readonly arena: SampleArena,
  ) {
    this.profileType = getLabel(labels, LABEL_PROFILE_TYPE) ?? "";
  }

  addRow(timeMs: number, durationNs: number, at: SampleRef, n: number, spans: BigUint64Array | null) {
    const rows = this.timeMs.length;
    if (rows > 0 && timeMs < this.timeMs[rows - 1]) this.sorted = false;
    this.timeMs.push(timeMs);
    this.durationNs.push(durationNs);
    this.sampleAt.push(at);
    this.sampleCount.push(n);
    this.spans.push(spans);
    if (timeMs < this.minTime) this.minTime = timeMs;
    if (timeMs > this.maxTime) this.maxTime = timeMs;
  }

  /** Row r's stack ids (a view into the arena). */
  rowStacks(r: number): Uint32Array {
    const at = offsetOf(this.sampleAt[r]);
    return this.arena.ids[chunkOf(this.sampleAt[r])].subarray(at, at + this.sampleCount[r]);
  }

  /** Row r's values (a view into the arena). */
  rowValues(r: number): Float64Array {
    const at = offsetOf(this.sampleAt[r]);
    return this.arena.values[chunkOf(this.sampleAt[r])].subarray(at, at + this.sampleCount[r]);
  }

  /** Row indexes with start <= time <= end. */
  rowsInRange(start: number, end: number): number[] {
    const out: number[] = [];
    if (this.maxTime < start || this.minTime > end) return out;
    for (let r = 0; r < this.timeMs.length; r++) {
      const t = this.timeMs[r];
      if (t >= start && t <= end) out.push(r);
    }
    return out;
  }
}

export interface HeadStats {
  series: number;
  rows: number;
  samples: number;
  bytes: number;
  minTime: number;
  maxTime: number;
}

export class Head {
  readonly samplesArena = new SampleArena();
  readonly series: MemSeries[] = [];
  private byKey = new Map<string, MemSeries>();
  private sampleBytes = 0;
  rows = 0;
  samples = 0;
  minTime = Infinity;
  maxTime = -Infinity;
  /** Whether any row has span ids (a block cut from this head then gets a span column). */
  hasSpans = false;

  /** `symbols` may be shared with the head before this one (see successor()). */
  constructor(readonly symbols: SymbolTable = new SymbolTable()) {}

  /** Which stack ids the rows use, with their ancestors (1 = used), indexed by stack id. */
  usedStacks(): Uint8Array {
    const used = new Uint8Array(this.symbols.stackCount);
    for (const s of this.series) {
      for (let r = 0; r < s.timeMs.length; r++) {
        const ids = this.samplesArena.ids[chunkOf(s.sampleAt[r])];
        const at = offsetOf(s.sampleAt[r]);
        for (let i = at; i < at + s.sampleCount[r]; i++) used[ids[i]] = 1;
      }
    }
    // Parents have lower ids than their children: one pass down the ids reaches every ancestor.
    const parent = this.symbols.stackParent;
    for (let id = used.length - 1; id > 0; id--) if (used[id]) used[parent[id]] = 1;
    return used;
  }

  /**
   * The head to take over from this one at a cut. It shares this head's symbols while this head
   * uses at least half of their stacks: the same services keep sending the same stacks, and
   * interning them all again at every cut (~11 MB for the soak's 50 services, every ~5 minutes)
   * was the largest allocation a head made. Symbols mostly of stacks no longer sent start over.
   */
  successor(): Head {
    const used = this.usedStacks();
    let n = 0;
    for (let i = 1; i < used.length; i++) n += used[i];
    return new Head(2 * n >= this.symbols.stackCount - 1 ? this.symbols : new SymbolTable());
  }

  /**
   * Appends one profile under its series labels (which carry `__name__`, `service_name`, …). One
   * row is stored per sample type; zero values are dropped and identical stacks summed.
   */
  append(labels: Labels, p: Profile): void {
    const name = getLabel(labels, LABEL_NAME) ?? "";
    const base = labels.filter((l) => !STRIPPED.has(l.name));
    const k = p.sampleTypes.length;
    const s = p.samples;
    if (k === 0 || s.count === 0) return;

    const globalLoc = this.symbols.internLocations(p);
    const spanOf = sampleSpanIds(p);
    // Each distinct stack (with spans: each distinct stack and span) of this profile gets a slot;
    // values are summed per slot and type.
    const slotOf = new Uint32Array(s.count);
    const slotIndex = new Map<number | bigint, number>();
    const slotStack: number[] = [];
    const slotSpan: bigint[] = [];
    for (let i = 0; i < s.count; i++) {
      const sid = this.symbols.internSampleStack(s.locs, s.locStart[i], s.locStart[i + 1], globalLoc);
      const key = spanOf ? (BigInt(sid) << 64n) | spanOf[i] : sid;
      let slot = slotIndex.get(key);
      if (slot === undefined) {
        slot = slotStack.length;
        slotStack.push(sid);
        if (spanOf) slotSpan.push(spanOf[i]);
        slotIndex.set(key, slot);
      }
      slotOf[i] = slot;
    }
    const sums = new Float64Array(slotStack.length);

    const timeMs = Number(p.timeNanos / 1000000n);
    const pt = p.periodType;
    for (let t = 0; t < k; t++) {
      const st = p.sampleTypes[t];
      const id = profileTypeId(name, st.type, st.unit, pt?.type ?? "", pt?.unit ?? "");
      const ls = base.filter((l) => l.name !== LABEL_PROFILE_TYPE && l.name !== LABEL_TYPE && l.name !== LABEL_UNIT && l.name !== LABEL_PERIOD_TYPE && l.name !== LABEL_PERIOD_UNIT);
      ls.push({ name: LABEL_PROFILE_TYPE, value: id }, { name: LABEL_TYPE, value: st.type }, { name: LABEL_UNIT, value: st.unit });
      // Empty label values mean "no label" (Prometheus semantics), so a missing period adds none.
      if (pt?.type) ls.push({ name: LABEL_PERIOD_TYPE, value: pt.type });
      if (pt?.unit) ls.push({ name: LABEL_PERIOD_UNIT, value: pt.unit });
      sortLabels(ls);

      sums.fill(0);
      for (let i = 0; i < s.count; i++) sums[slotOf[i]] += s.values[i * k + t];
      let n = 0;
      let withSpan = 0;
      for (let j = 0; j < sums.length; j++) {
        if (sums[j] === 0) continue;
        n++;
        if (spanOf && slotSpan[j] !== 0n) withSpan++;
      }
      if (n === 0) continue;
      const arena = this.samplesArena;
      const ref = arena.alloc(n);
      const ids = arena.ids[chunkOf(ref)];
      const vals = arena.values[chunkOf(ref)];
      const spans = withSpan > 0 ? new BigUint64Array(n) : null;
      for (let j = 0, o = offsetOf(ref), k = 0; j < sums.length; j++) {
        if (sums[j] === 0) continue;
        if (spans) spans[k++] = slotSpan[j];
        ids[o] = slotStack[j];
        vals[o++] = sums[j];
      }
      if (spans) this.hasSpans = true;
      this.getOrCreateSeries(ls).addRow(timeMs, storedDuration(p.durationNanos), ref, n, spans);
      this.rows++;
      this.samples += n;
      // The row's numbers in its series' arrays; its samples are in the arena's bytes.
      this.sampleBytes += (spans ? n * 8 : 0) + 40;
    }
    if (timeMs < this.minTime) this.minTime = timeMs;
    if (timeMs > this.maxTime) this.maxTime = timeMs;
  }

  private getOrCreateSeries(ls: Labels): MemSeries {
    const key = labelsKey(ls);
    let s = this.byKey.get(key);
    if (!s) {
      s = new MemSeries(this.series.length, ls, key, this.samplesArena);
      this.series.push(s);
      this.byKey.set(key, s);
      this.sampleBytes += key.length * 2 + 128;
    }
    return s;
  }

  stats(): HeadStats {
    return {
      series: this.series.length,
      rows: this.rows,
      samples: this.samples,
      bytes: this.sampleBytes + this.samplesArena.bytes + this.symbols.bytes,
      minTime: this.minTime,
      maxTime: this.maxTime,
    };
  }
}

/**
 * Longest duration stored (2^50 ns, 13 days): a profile's duration is informational, and a
 * client's nonsense (a JFR upload with `from` months before `until`, a pprof with duration_nanos
 * near 2^63) must not make the head impossible to write as a block.
 */
export const MAX_DURATION_NS = 2 ** 50;

export function storedDuration(d: number): number {
  return Number.isFinite(d) && d > 0 ? Math.min(Math.round(d), MAX_DURATION_NS) : 0;
}
