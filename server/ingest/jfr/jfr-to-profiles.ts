// JFR events → one profile per sample type, with Pyroscope's rules: which events count as cpu or
// wall, their values and units, and per-sample labels from the upload's LabelsSnapshot.

import type { Profile, SampleLabel } from "../../../storage/model/profile.ts";
import type { ConstantPools } from "./jfr-constant-pools.ts";
import {
  EV_ACTIVE_SETTING,
  EV_ALLOC_IN_NEW_TLAB,
  EV_ALLOC_OUTSIDE_TLAB,
  EV_ALLOC_SAMPLE,
  EV_EXECUTION_SAMPLE,
  EV_LIVE_OBJECT,
  EV_MALLOC,
  EV_MONITOR_ENTER,
  EV_THREAD_PARK,
  EV_WALL_CLOCK_SAMPLE,
  F_CONTEXT,
  F_SPAN_HI,
  F_SPAN_LO,
  F_SPAN_NAME,
  F_STACK,
  F_STATE,
  F_VALUE,
  parseJfr,
  type JfrEvent,
  type JfrEventSink,
} from "./jfr-parser.ts";
import { JfrProfileBuilder, type SampleTypeDef } from "./jfr-profile-builder.ts";
import { StackTable } from "./jfr-stack-table.ts";
import type { LabelsSnapshot } from "./labels-snapshot.ts";

const ST_CPU = 0;
const ST_WALL = 1;
const ST_IN_TLAB = 2;
const ST_OUT_TLAB = 3;
const ST_LOCK = 4;
const ST_PARK = 5;
const ST_LIVE = 6;
const ST_ALLOC_SAMPLE = 7;
const ST_MALLOC = 8;

const vt = (type: string, unit: string) => ({ type, unit });
const SAMPLE_TYPES: SampleTypeDef[] = [
  { metric: "process_cpu", sampleTypes: [vt("cpu", "nanoseconds")], periodType: vt("cpu", "nanoseconds"), scaled: true },
  { metric: "wall", sampleTypes: [vt("wall", "nanoseconds")], periodType: vt("wall", "nanoseconds"), scaled: true },
  { metric: "memory", sampleTypes: [vt("alloc_in_new_tlab_objects", "count"), vt("alloc_in_new_tlab_bytes", "bytes")], periodType: vt("space", "bytes"), scaled: false },
  { metric: "memory", sampleTypes: [vt("alloc_outside_tlab_objects", "count"), vt("alloc_outside_tlab_bytes", "bytes")], periodType: vt("space", "bytes"), scaled: false },
  { metric: "mutex", sampleTypes: [vt("contentions", "count"), vt("delay", "nanoseconds")], periodType: vt("mutex", "count"), scaled: false },
  { metric: "block", sampleTypes: [vt("contentions", "count"), vt("delay", "nanoseconds")], periodType: vt("block", "count"), scaled: false },
  { metric: "memory", sampleTypes: [vt("live", "count")], periodType: vt("objects", "count"), scaled: false },
  { metric: "memory", sampleTypes: [vt("alloc_sample_objects", "count"), vt("alloc_sample_bytes", "bytes")], periodType: vt("space", "bytes"), scaled: false },
  { metric: "memory", sampleTypes: [vt("malloc_objects", "count"), vt("malloc_bytes", "bytes")], periodType: null, scaled: false },
];

export interface JfrConvertOptions {
  timeNanos: bigint;
  durationNanos: number;
  /** Nanoseconds per cpu/wall sample: 1e9 / sampleRate, or 0. */
  period: number;
}

export interface JfrProfiles {
  /** The recording's `event` setting (cpu, itimer, wall, ...), "" when it has none. */
  event: string;
  profiles: { metric: string; profile: Profile }[];
}

/** Parses a whole recording; throws JfrFormatError when it is damaged. */
export function jfrToProfiles(jfr: Uint8Array, snapshot: LabelsSnapshot, opts: JfrConvertOptions): JfrProfiles {
  const c = new JfrConverter(snapshot, opts);
  parseJfr(jfr, c);
  const profiles: JfrProfiles["profiles"] = [];
  for (const b of c.builders) {
    if (b && b.sampleCount > 0) profiles.push({ metric: b.def.metric, profile: b.build() });
  }
  return { event: c.setting, profiles };
}

const NO_LABELS: SampleLabel[] = [];

class JfrConverter implements JfrEventSink {
  readonly builders: (JfrProfileBuilder | null)[] = SAMPLE_TYPES.map(() => null);
  setting = "";
  private readonly table = new StackTable();
  private pools: ConstantPools | null = null;
  private readonly ctxDense = new Map<number, number>([[0, 0]]);
  private readonly ctxLabels = new Map<number, SampleLabel[]>();
  // The event being added, for labels(): read only when it starts a new sample.
  private ctx = 0;
  private spanLo = 0;
  private spanHi = 0;
  private spanName = 0;

  constructor(
    private readonly snapshot: LabelsSnapshot,
    private readonly opts: JfrConvertOptions,
  ) {}

  beginChunk(pools: ConstantPools) {
    this.pools = pools;
    this.table.beginChunk(pools);
  }

  event(kind: number, e: JfrEvent) {
    const f = e.f;
    switch (kind) {
      case EV_EXECUTION_SAMPLE: {
        const state = this.pools!.threadStates.get(f[F_STATE]);
        if (state !== undefined && state !== "STATE_SLEEPING") this.add(ST_CPU, f, true, 1, 0);
        if (this.setting === "wall") this.add(ST_WALL, f, true, 1, 0);
        return;
      }
      case EV_WALL_CLOCK_SAMPLE: {
        // Pyroscope's parser keeps this count for later events of other types too (its value
        // array is shared); each event counts with its own value here.
        const n = f[F_VALUE];
        if (this.setting === "wall" && this.pools!.threadStates.get(f[F_STATE]) === "STATE_RUNNABLE") this.add(ST_CPU, f, true, n, 0);
        this.add(ST_WALL, f, true, n, 0);
        return;
      }
      case EV_ALLOC_IN_NEW_TLAB:
        return this.add(ST_IN_TLAB, f, true, 1, f[F_VALUE]);
      case EV_ALLOC_OUTSIDE_TLAB:
        return this.add(ST_OUT_TLAB, f, true, 1, f[F_VALUE]);
      case EV_ALLOC_SAMPLE:
        return this.add(ST_ALLOC_SAMPLE, f, false, 1, f[F_VALUE]);
      case EV_MONITOR_ENTER:
        return this.add(ST_LOCK, f, true, 1, f[F_VALUE]);
      case EV_THREAD_PARK:
        return this.add(ST_PARK, f, false, 1, f[F_VALUE]);
      case EV_LIVE_OBJECT:
        return this.add(ST_LIVE, f, false, 1, 0);
      case EV_MALLOC:
        return this.add(ST_MALLOC, f, false, 1, f[F_VALUE]);
      case EV_ACTIVE_SETTING:
        if (e.name === "event") this.setting = e.value ?? "";
        return;
    }
  }

  /** `correlated`: whether Pyroscope reads the event's context and span (some event types it does not). */
  private add(st: number, f: Float64Array, correlated: boolean, v0: number, v1: number) {
    let b = this.builders[st];
    if (!b) {
      const o = this.opts;
      b = this.builders[st] = new JfrProfileBuilder(SAMPLE_TYPES[st], this.table, o.timeNanos, o.durationNanos, o.period);
    }
    const stack = this.table.stack(f[F_STACK]);
    if (stack < 0) return; // no such stack trace in the chunk: Pyroscope drops the event too
    let span = "";
    if (correlated) {
      this.ctx = f[F_CONTEXT];
      this.spanLo = f[F_SPAN_LO];
      this.spanHi = f[F_SPAN_HI];
      this.spanName = f[F_SPAN_NAME];
      if (this.spanLo !== 0 || this.spanHi !== 0 || this.spanName !== 0) span = `${this.spanLo} ${this.spanHi} ${this.spanName}`;
    } else {
      this.ctx = this.spanLo = this.spanHi = this.spanName = 0;
    }
    let dense = this.ctxDense.get(this.ctx);
    if (dense === undefined) {
      dense = this.ctxDense.size;
      this.ctxDense.set(this.ctx, dense);
    }
    b.add(stack, dense, span, v0, v1, this);
  }

  /** Sample labels of the event being added: its context's labels, then profile_id and span_name. */
  labels(): SampleLabel[] {
    const base = this.contextLabels(this.ctx);
    if (this.spanLo === 0 && this.spanHi === 0 && this.spanName === 0) return base;
    const out = base.slice();
    if (this.spanLo !== 0 || this.spanHi !== 0) {
      const id = this.spanHi.toString(16).padStart(8, "0") + this.spanLo.toString(16).padStart(8, "0");
      out.push({ key: "profile_id", str: id, num: 0, numUnit: "" });
    }
    if (this.spanName !== 0) {
      const name = this.snapshot.strings.get(this.spanName) ?? "";
      if (name !== "") out.push({ key: "span_name", str: name, num: 0, numUnit: "" });
    }
    return out;
  }

  private contextLabels(ctx: number): SampleLabel[] {
    let ls = this.ctxLabels.get(ctx);
    if (ls) return ls;
    const kv = this.snapshot.contexts.get(ctx);
    ls = NO_LABELS;
    if (kv && kv.length) {
      const strs = this.snapshot.strings;
      ls = [];
      for (let i = 0; i < kv.length; i += 2) ls.push({ key: strs.get(kv[i]) ?? "", str: strs.get(kv[i + 1]) ?? "", num: 0, numUnit: "" });
    }
    this.ctxLabels.set(ctx, ls);
    return ls;
  }
}
