// One profile per JFR sample type (cpu, wall, alloc in TLAB, ...): events with the same stack and
// the same correlation (context, span) add up into one sample, as in Pyroscope's builder. The
// profile gets only the functions and locations its own samples use.

import { namesOnlyMapping, type Func, type Location, type Profile, type SampleLabel, type ValueType } from "../../../storage/model/profile.ts";
import { IntPairMap } from "./int-pair-map.ts";
import type { StackTable } from "./jfr-stack-table.ts";

export interface SampleTypeDef {
  metric: string;
  sampleTypes: ValueType[];
  periodType: ValueType | null;
  /** cpu and wall: the first value counts samples, so it is multiplied by the sampling period. */
  scaled: boolean;
}


export class JfrProfileBuilder {
  private readonly k: number;
  private n = 0;
  private stacks = new Int32Array(256);
  private values: Float64Array;
  private readonly labels: SampleLabel[][] = [];
  private anyLabels = false;
  /** (stack, dense context) → sample, for samples without a span. */
  private readonly byKey = new IntPairMap(1024);
  /** Samples with a span: "stack ctx spanLo spanHi spanName" → sample. */
  private readonly bySpan = new Map<string, number>();

  constructor(
    readonly def: SampleTypeDef,
    private readonly table: StackTable,
    private readonly timeNanos: bigint,
    private readonly durationNanos: number,
    private readonly period: number,
  ) {
    this.k = def.sampleTypes.length;
    this.values = new Float64Array(256 * this.k);
  }

  /**
   * Adds one event. `ctx` is the dense index of its context; `span` is "" without a span.
   * `src.labels()` is called only when the event starts a new sample (no closure per event).
   */
  add(stack: number, ctx: number, span: string, v0: number, v1: number, src: { labels(): SampleLabel[] }) {
    let i: number;
    let spanKey = "";
    if (span === "") {
      i = this.byKey.get(stack, ctx);
    } else {
      spanKey = `${stack} ${ctx} ${span}`;
      i = this.bySpan.get(spanKey) ?? -1;
    }
    if (this.def.scaled) v0 *= this.period;
    if (i >= 0) {
      const o = i * this.k;
      this.values[o] += v0;
      if (this.k > 1) this.values[o + 1] += v1;
      return;
    }
    i = this.n++;
    if (spanKey === "") this.byKey.set(stack, ctx, i);
    else this.bySpan.set(spanKey, i);
    if (i >= this.stacks.length) this.grow();
    this.stacks[i] = stack;
    const o = i * this.k;
    this.values[o] = v0;
    if (this.k > 1) this.values[o + 1] = v1;
    const ls = src.labels();
    if (ls.length) this.anyLabels = true;
    this.labels.push(ls);
  }

  get sampleCount() {
    return this.n;
  }

  build(): Profile {
    const t = this.table;
    const locMap = new Int32Array(t.locationCount).fill(-1);
    const fnMap = new Int32Array(t.funcNames.length).fill(-1);
    const functions: Func[] = [];
    const locations: Location[] = [];
    let total = 0;
    for (let i = 0; i < this.n; i++) {
      const s = this.stacks[i];
      total += t.stackStart[s + 1] - t.stackStart[s];
    }
    const locStart = new Uint32Array(this.n + 1);
    const locs = new Uint32Array(total);
    let o = 0;
    for (let i = 0; i < this.n; i++) {
      const s = this.stacks[i];
      for (let j = t.stackStart[s]; j < t.stackStart[s + 1]; j++) {
        const g = t.locs[j];
        let l = locMap[g];
        if (l < 0) {
          const gf = t.locFunc[g];
          let f = fnMap[gf];
          if (f < 0) {
            f = fnMap[gf] = functions.length;
            const name = t.funcNames[gf];
            functions.push({ name, systemName: "", filename: "", startLine: 0 });
          }
          l = locMap[g] = locations.length;
          locations.push({ mapping: 0, address: 0n, lines: [{ fn: f, line: t.locLine[g] }], isFolded: false });
        }
        locs[o++] = l;
      }
      locStart[i + 1] = o;
    }
    return {
      sampleTypes: this.def.sampleTypes,
      periodType: this.def.periodType,
      period: this.def.scaled ? this.period : 0,
      timeNanos: this.timeNanos,
      durationNanos: this.durationNanos,
      defaultSampleType: "",
      comments: [],
      dropFrames: "",
      keepFrames: "",
      mappings: [namesOnlyMapping()],
      functions,
      locations,
      samples: {
        count: this.n,
        locStart,
        locs,
        values: this.values.slice(0, this.n * this.k),
        labels: this.anyLabels ? this.labels : null,
      },
    };
  }

  private grow() {
    const s = new Int32Array(this.stacks.length * 2);
    s.set(this.stacks);
    this.stacks = s;
    const v = new Float64Array(this.values.length * 2);
    v.set(this.values);
    this.values = v;
  }
}
