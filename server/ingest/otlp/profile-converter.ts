// One OTLP profile (profiles v1development, opentelemetry-proto v1.10.0) → our Profile model, one
// profile per sample-level `service.name`, following Pyroscope's converter (pkg/ingester/otlp)
// and then the clean-up its distributor applies to every pprof (pprof.Normalize).

import type {
  Location as OtlpLocation,
  Mapping as OtlpMapping,
  Profile as OtlpProfile,
  ProfilesDictionary,
  Sample as OtlpSample,
} from "../../api/gen/opentelemetry/proto/profiles/v1development/profiles_pb.ts";
import type { Func, Location, Mapping, Profile, SampleLabel, ValueType } from "../../../storage/model/profile.ts";
import { anyValueString, at, dictAttribute, SERVICE_NAME_ATTR } from "./attributes.ts";

export interface ConvertedProfile {
  /** The `__name__` guessed from the sample type. */
  name: string;
  profile: Profile;
}

type ValueKind = "plain" | "samples-to-nanos" | "sum-events";

interface Header {
  sampleType: ValueType;
  periodType: ValueType | null;
  period: number;
  defaultSampleType: string;
  name: string;
  kind: ValueKind;
}

const DEFAULT_DURATION_NS = 10e9;
const BUILD_ID_ATTR = "process.executable.build_id.gnu";

function valueType(vt: { typeStrindex: number; unitStrindex: number }, dict: ProfilesDictionary, what: string): ValueType {
  return { type: at(dict.stringTable, vt.typeStrindex, `${what} type string`), unit: at(dict.stringTable, vt.unitStrindex, `${what} unit string`) };
}

/** Sample and period types, and the `__name__` guessed from `type:unit:periodType:periodUnit`. */
function readHeader(src: OtlpProfile, dict: ProfilesDictionary): Header {
  if (!src.sampleType) throw new Error("sample type is missing");
  const st = valueType(src.sampleType, dict, "sample");
  const periodType = src.periodType ? valueType(src.periodType, dict, "period") : null;
  const period = Number(src.period);
  // The period part of the type is empty unless there is both a period type and a period.
  const pt = periodType && period !== 0 ? periodType : { type: "", unit: "" };
  const full = `${st.type}:${st.unit}:${pt.type}:${pt.unit}`;
  const h: Header = { sampleType: st, periodType, period, defaultSampleType: st.type, name: "", kind: "plain" };
  if (full === "samples:count:cpu:nanoseconds") {
    // eBPF CPU samples: counts of ticks, stored as CPU time.
    h.sampleType = { type: "cpu", unit: "nanoseconds" };
    h.name = "process_cpu";
    h.kind = "samples-to-nanos";
  } else if (full === "off_cpu:nanoseconds::") {
    // Off-CPU: one value per event; pprof has one value per sample, so they are summed.
    h.name = "off_cpu";
    h.kind = "sum-events";
  } else {
    // Pyroscope takes the third part (the period type); with none we keep its guess.
    h.name = full.split(":")[2] || "process_cpu";
  }
  return h;
}

/** Collects the samples of one output profile; symbols are converted once and shared by index. */
class ProfileBuilder {
  readonly mappings: Mapping[] = [];
  readonly functions: Func[] = [];
  readonly locations: Location[] = [];
  private emptyLocation: boolean[] = [];
  private mappingIdx = new Map<string, number>();
  private functionIdx = new Map<number, number>();
  private locationIdx = new Map<number, number>();
  readonly locStart: number[] = [0];
  readonly locs: number[] = [];
  readonly values: number[] = [];
  readonly labels: SampleLabel[][] = [];
  hasLabels = false;

  constructor(
    readonly header: Header,
    private dict: ProfilesDictionary,
  ) {}

  addSample(s: OtlpSample, values: number[], labels: SampleLabel[]): void {
    const dict = this.dict;
    if (s.stackIndex < 0 || s.stackIndex >= dict.stackTable.length) throw new Error(`invalid stack index: ${s.stackIndex}`);
    const stack = dict.stackTable[s.stackIndex].locationIndices;
    // Each mapping is described by the locations of this sample that use it (Pyroscope's rule):
    // a location first seen here keeps the mapping as described here.
    const byMapping = new Map<number, OtlpLocation[]>();
    for (const li of stack) {
      const loc = at(dict.locationTable, li, "location");
      at(dict.mappingTable, loc.mappingIndex, "mapping");
      let group = byMapping.get(loc.mappingIndex);
      if (!group) byMapping.set(loc.mappingIndex, (group = []));
      group.push(loc);
    }
    const sampleMapping = new Map<number, number>();
    for (const [mi, locs] of byMapping) sampleMapping.set(mi, this.mapping(mi, dict.mappingTable[mi], locs));
    const locIdx = stack.map((li) => this.location(li, sampleMapping));
    // Pyroscope's distributor then drops what pprof.Normalize drops: samples with the wrong
    // number of values, a negative or no positive value, or a location with no lines and no address.
    if (values.length !== 1 || !(values[0] > 0)) return;
    for (const i of locIdx) if (this.emptyLocation[i]) return;
    for (const i of locIdx) this.locs.push(i);
    this.locStart.push(this.locs.length);
    this.values.push(values[0]);
    this.labels.push(labels);
    if (labels.length) this.hasLabels = true;
  }

  private mapping(mi: number, m: OtlpMapping, locs: OtlpLocation[]): number {
    let hasLines = true;
    let hasFunctions = true;
    let hasInlineFrames = true;
    let hasFilenames = true;
    for (const l of locs) {
      if (l.lines.length === 0) {
        hasLines = hasFunctions = hasInlineFrames = hasFilenames = false;
        break;
      }
      l.lines.forEach((line, i) => {
        hasFunctions &&= line.functionIndex > 0;
        hasLines &&= line.line > 0n;
        hasInlineFrames &&= i >= 1;
        if (line.functionIndex > 0) {
          const f = this.dict.functionTable[line.functionIndex];
          if (f) hasFilenames &&= f.filenameStrindex > 0;
        }
      });
    }
    // A bad attribute index only loses the build ID, as in Pyroscope.
    let buildId = "";
    try {
      buildId = dictAttribute(m.attributeIndices, this.dict, BUILD_ID_ATTR);
    } catch {}
    const mapping: Mapping = {
      memoryStart: m.memoryStart,
      memoryLimit: m.memoryLimit,
      fileOffset: m.fileOffset,
      filename: at(this.dict.stringTable, m.filenameStrindex, "mapping file name string"),
      buildId,
      hasFunctions,
      hasFilenames,
      hasLineNumbers: hasLines,
      hasInlineFrames,
    };
    const key = `${mi}|${+hasFunctions}${+hasFilenames}${+hasLines}${+hasInlineFrames}`;
    let idx = this.mappingIdx.get(key);
    if (idx === undefined) {
      idx = this.mappings.push(mapping) - 1;
      this.mappingIdx.set(key, idx);
    }
    return idx;
  }

  private location(li: number, sampleMapping: Map<number, number>): number {
    let idx = this.locationIdx.get(li);
    if (idx !== undefined) return idx;
    const l = this.dict.locationTable[li];
    const lines = l.lines.map((line) => ({ fn: this.func(line.functionIndex), line: Number(line.line) }));
    idx = this.locations.push({ mapping: sampleMapping.get(l.mappingIndex)!, address: l.address, lines, isFolded: false }) - 1;
    this.emptyLocation.push(lines.length === 0 && l.address === 0n);
    this.locationIdx.set(li, idx);
    return idx;
  }

  private func(fi: number): number {
    let idx = this.functionIdx.get(fi);
    if (idx !== undefined) return idx;
    const f = at(this.dict.functionTable, fi, "function");
    const s = this.dict.stringTable;
    const fn: Func = {
      name: at(s, f.nameStrindex, "function name string"),
      systemName: at(s, f.systemNameStrindex, "function system name string"),
      filename: at(s, f.filenameStrindex, "function file name string"),
      startLine: Number(f.startLine),
    };
    idx = this.functions.push(fn) - 1;
    this.functionIdx.set(fi, idx);
    return idx;
  }
}

/** The sample's values after the type's conversion; throws when they cannot be used. */
function sampleValues(s: OtlpSample, h: Header): number[] {
  let vs = s.values.map(Number);
  // Per the spec, a sample without values counts one per timestamp.
  if (vs.length === 0 && s.timestampsUnixNano.length > 0) vs = [s.timestampsUnixNano.length];
  if (vs.length === 0) throw new Error("sample value is required");
  if (h.kind === "samples-to-nanos") vs[0] *= h.period;
  else if (h.kind === "sum-events") vs = [vs.reduce((a, b) => a + b, 0)];
  if (h.period !== 0 && h.periodType && vs.length !== 1) throw new Error(`sample values length mismatch ${vs.length} 1`);
  return vs;
}

/** Sample attributes (but `service.name`) and the trace link, as string sample labels. */
function sampleLabels(s: OtlpSample, dict: ProfilesDictionary): SampleLabel[] {
  const out: SampleLabel[] = [];
  for (const i of s.attributeIndices) {
    const a = at(dict.attributeTable, i, "attribute");
    const key = dict.stringTable[a.keyStrindex];
    if (key === SERVICE_NAME_ATTR) continue;
    const v = anyValueString(a.value);
    if (v === "") continue;
    out.push({ key: at(dict.stringTable, a.keyStrindex, "attribute key string"), str: v, num: 0, numUnit: "" });
  }
  if (s.linkIndex !== 0) {
    const link = at(dict.linkTable, s.linkIndex, "link");
    out.push({ key: "span_id", str: Buffer.from(link.spanId).toString("hex"), num: 0, numUnit: "" });
    if (link.traceId.length === 16) out.push({ key: "trace_id", str: Buffer.from(link.traceId).toString("hex"), num: 0, numUnit: "" });
  }
  return out;
}

/**
 * Converts one OTLP profile. The map is keyed by the samples' own `service.name` ("" when a
 * sample has none). Throws on references that do not resolve. A sample whose attribute indexes
 * do not resolve makes the whole profile convert to nothing, as Pyroscope does; the caller
 * decides what an empty result means.
 */
export function convertOtlpProfile(src: OtlpProfile, dict: ProfilesDictionary, nowNanos: () => bigint = () => BigInt(Date.now()) * 1000000n): Map<string, ConvertedProfile> {
  const builders = new Map<string, ProfileBuilder>();
  let header: Header | null = null;
  for (const s of src.samples) {
    let svc: string;
    try {
      svc = dictAttribute(s.attributeIndices, dict, SERVICE_NAME_ATTR);
    } catch {
      return new Map();
    }
    let b = builders.get(svc);
    if (!b) {
      header ??= readHeader(src, dict);
      builders.set(svc, (b = new ProfileBuilder(header, dict)));
    }
    b.addSample(s, sampleValues(s, b.header), sampleLabels(s, dict));
  }
  const out = new Map<string, ConvertedProfile>();
  for (const [svc, b] of builders) {
    const h = b.header;
    const profile = clearAddresses({
      sampleTypes: [h.sampleType],
      periodType: h.periodType,
      period: h.period,
      timeNanos: src.timeUnixNano !== 0n ? src.timeUnixNano : nowNanos(),
      durationNanos: src.durationNano !== 0n ? Number(src.durationNano) : DEFAULT_DURATION_NS,
      defaultSampleType: h.defaultSampleType,
      comments: [],
      dropFrames: "",
      keepFrames: "",
      mappings: b.mappings,
      functions: b.functions,
      locations: b.locations,
      samples: {
        count: b.labels.length,
        locStart: Uint32Array.from(b.locStart),
        locs: Uint32Array.from(b.locs),
        values: Float64Array.from(b.values),
        labels: b.hasLabels ? b.labels : null,
      },
    });
    out.set(svc, { name: h.name, profile });
  }
  return out;
}

/** Symbolized mappings lose their addresses, as Pyroscope's pprof.Normalize does. */
function clearAddresses(p: Profile): Profile {
  for (const l of p.locations) if (l.mapping >= 0 && p.mappings[l.mapping].hasFunctions) l.address = 0n;
  for (const m of p.mappings) if (m.hasFunctions) m.memoryStart = m.memoryLimit = m.fileOffset = 0n;
  return p;
}
