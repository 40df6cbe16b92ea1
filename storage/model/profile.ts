// The one in-memory profile model. Every ingest format decodes into it and every response is
// encoded from it. Shaped like pprof (Pyroscope's own model) with samples in flat typed arrays.

export interface ValueType {
  type: string;
  unit: string;
}

export interface Mapping {
  memoryStart: bigint;
  memoryLimit: bigint;
  fileOffset: bigint;
  filename: string;
  buildId: string;
  hasFunctions: boolean;
  hasFilenames: boolean;
  hasLineNumbers: boolean;
  hasInlineFrames: boolean;
}

export interface Func {
  name: string;
  systemName: string;
  filename: string;
  startLine: number;
}

export interface Line {
  /** Index into Profile.functions. */
  fn: number;
  line: number;
}

export interface Location {
  /** Index into Profile.mappings, or -1 when the location has no mapping. */
  mapping: number;
  address: bigint;
  /** pprof order: lines[0] is the innermost (inlined) frame, the last line is the caller. */
  lines: Line[];
  isFolded: boolean;
}

export interface SampleLabel {
  key: string;
  str: string;
  num: number;
  numUnit: string;
}

/** Samples in compressed-row form: sample i has locations locs[locStart[i] .. locStart[i+1]). */
export interface Samples {
  count: number;
  /** length count + 1 */
  locStart: Uint32Array;
  /** Indexes into Profile.locations, leaf first (pprof order). */
  locs: Uint32Array;
  /** Row-major: value of sample i for sample type k is values[i * sampleTypes.length + k]. */
  values: Float64Array;
  /** Per-sample labels, or null when no sample carries any. */
  labels: SampleLabel[][] | null;
}

export interface Profile {
  sampleTypes: ValueType[];
  periodType: ValueType | null;
  period: number;
  timeNanos: bigint;
  durationNanos: number;
  /** Name of the default sample type, "" when unset. */
  defaultSampleType: string;
  comments: string[];
  dropFrames: string;
  keepFrames: string;
  mappings: Mapping[];
  functions: Func[];
  locations: Location[];
  samples: Samples;
}

/** The one mapping of a profile built from function names alone (text formats, JFR): symbolized, no binary. */
export function namesOnlyMapping(): Mapping {
  return { memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n, filename: "", buildId: "", hasFunctions: true, hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false };
}

export function emptySamples(): Samples {
  return { count: 0, locStart: new Uint32Array(1), locs: new Uint32Array(0), values: new Float64Array(0), labels: null };
}

/** A new profile that shares `p`'s symbols and holds only the samples at `indexes`. */
export function selectSamples(p: Profile, indexes: ArrayLike<number>): Profile {
  const k = p.sampleTypes.length;
  const s = p.samples;
  let nLocs = 0;
  for (let j = 0; j < indexes.length; j++) {
    const i = indexes[j];
    nLocs += s.locStart[i + 1] - s.locStart[i];
  }
  const locStart = new Uint32Array(indexes.length + 1);
  const locs = new Uint32Array(nLocs);
  const values = new Float64Array(indexes.length * k);
  const labels: SampleLabel[][] | null = s.labels ? [] : null;
  let o = 0;
  for (let j = 0; j < indexes.length; j++) {
    const i = indexes[j];
    const a = s.locStart[i];
    const b = s.locStart[i + 1];
    locs.set(s.locs.subarray(a, b), o);
    o += b - a;
    locStart[j + 1] = o;
    values.set(s.values.subarray(i * k, i * k + k), j * k);
    if (labels) labels.push(s.labels![i]);
  }
  return { ...p, samples: { count: indexes.length, locStart, locs, values, labels } };
}
