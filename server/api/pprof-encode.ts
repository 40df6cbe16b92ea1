// The canonical Profile as a google.v1 pprof message (for Connect responses) or as pprof bytes.
// Ids are index + 1 and the string table is rebuilt, deduplicated, with "" first.

import { create, toBinary } from "@bufbuild/protobuf";
import type { Profile } from "../../storage/model/profile.ts";
import {
  FunctionSchema,
  LabelSchema,
  LineSchema,
  LocationSchema,
  MappingSchema,
  ProfileSchema,
  SampleSchema,
  ValueTypeSchema,
  type Label,
  type Profile as PprofMessage,
} from "./gen/google/v1/profile_pb.ts";

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** The profile as a protobuf-es google.v1.Profile message. */
export function toPprofMessage(p: Profile): PprofMessage {
  const table: string[] = [""];
  const index = new Map<string, bigint>([["", 0n]]);
  const s = (v: string): bigint => {
    let i = index.get(v);
    if (i === undefined) {
      i = BigInt(table.length);
      table.push(v);
      index.set(v, i);
    }
    return i;
  };
  const valueType = (v: { type: string; unit: string }) => create(ValueTypeSchema, { type: s(v.type), unit: s(v.unit) });

  // Sample locations repeat a lot, so their bigint ids are made once.
  const locationIds = p.locations.map((_, i) => BigInt(i + 1));
  const k = p.sampleTypes.length;
  const { count, locStart, locs, values, labels } = p.samples;
  const sample = new Array(count);
  for (let i = 0; i < count; i++) {
    const locationId: bigint[] = [];
    for (let j = locStart[i]; j < locStart[i + 1]; j++) locationId.push(locationIds[locs[j]]);
    const value: bigint[] = [];
    for (let j = i * k; j < i * k + k; j++) value.push(int64(values[j]));
    const label: Label[] = [];
    for (const l of labels?.[i] ?? []) {
      label.push(create(LabelSchema, { key: s(l.key), str: s(l.str), num: int64(l.num), numUnit: s(l.numUnit) }));
    }
    sample[i] = create(SampleSchema, { locationId, value, label });
  }

  return create(ProfileSchema, {
    sampleType: p.sampleTypes.map(valueType),
    sample,
    mapping: p.mappings.map((m, i) =>
      create(MappingSchema, {
        id: BigInt(i + 1),
        memoryStart: m.memoryStart,
        memoryLimit: m.memoryLimit,
        fileOffset: m.fileOffset,
        filename: s(m.filename),
        buildId: s(m.buildId),
        hasFunctions: m.hasFunctions,
        hasFilenames: m.hasFilenames,
        hasLineNumbers: m.hasLineNumbers,
        hasInlineFrames: m.hasInlineFrames,
      }),
    ),
    location: p.locations.map((l, i) =>
      create(LocationSchema, {
        id: locationIds[i],
        mappingId: BigInt(l.mapping + 1), // -1 (no mapping) becomes 0
        address: l.address,
        line: l.lines.map((x) => create(LineSchema, { functionId: BigInt(x.fn + 1), line: int64(x.line) })),
        isFolded: l.isFolded,
      }),
    ),
    function: p.functions.map((f, i) =>
      create(FunctionSchema, {
        id: BigInt(i + 1),
        name: s(f.name),
        systemName: s(f.systemName),
        filename: s(f.filename),
        startLine: int64(f.startLine),
      }),
    ),
    dropFrames: s(p.dropFrames),
    keepFrames: s(p.keepFrames),
    timeNanos: p.timeNanos,
    durationNanos: int64(p.durationNanos),
    periodType: p.periodType ? valueType(p.periodType) : undefined,
    period: int64(p.period),
    comment: p.comments.map(s),
    defaultSampleType: s(p.defaultSampleType),
    stringTable: table, // filled by the s() calls above, all made before create() runs
  });
}

/** The profile as uncompressed pprof bytes. */
export function encodePprof(p: Profile): Uint8Array<ArrayBuffer> {
  return toBinary(ProfileSchema, toPprofMessage(p));
}

// Model numbers are doubles (averaged gauges can be fractional); pprof wants int64.
function int64(v: number): bigint {
  if (!Number.isFinite(v)) return v > 0 ? INT64_MAX : v < 0 ? INT64_MIN : 0n;
  const b = BigInt(Math.round(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}
