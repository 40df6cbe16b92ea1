// Round-trip tests for the WAL record encoding, on hand-built edge cases and real pprof fixtures.

import { describe, expect, test } from "bun:test";
import { emptySamples, type Func, type Location, type Mapping, type Profile, type SampleLabel } from "../model/profile.ts";
import { decodeRecords, encodeRecords, type IngestRecord } from "./record.ts";

function emptyProfile(): Profile {
  return {
    sampleTypes: [],
    periodType: null,
    period: 0,
    timeNanos: 0n,
    durationNanos: 0,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions: [],
    locations: [],
    samples: emptySamples(),
  };
}

/** Builds a profile with n samples over a small symbol set, the shape of a real CPU profile. */
function syntheticProfile(n: number, opts: { labels?: boolean; depth?: number } = {}): Profile {
  const depth = opts.depth ?? 16;
  const nFn = 2000;
  const functions: Func[] = [];
  for (let i = 0; i < nFn; i++) functions.push({ name: `pkg/mod${i % 50}.Func${i}`, systemName: `pkg/mod${i % 50}.Func${i}`, filename: `/src/pkg/mod${i % 50}.go`, startLine: i * 3 });
  const locations: Location[] = [];
  for (let i = 0; i < nFn; i++) locations.push({ mapping: 0, address: BigInt(0x400000 + i * 16), lines: [{ fn: i, line: 10 + (i % 200) }], isFolded: false });
  const locStart = new Uint32Array(n + 1);
  const locs = new Uint32Array(n * depth);
  const values = new Float64Array(n * 2);
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < depth; d++) locs[i * depth + d] = rnd() % nFn;
    locStart[i + 1] = (i + 1) * depth;
    values[i * 2] = 1 + (rnd() % 10);
    values[i * 2 + 1] = values[i * 2] * 10_000_000;
  }
  let labels: SampleLabel[][] | null = null;
  if (opts.labels) {
    labels = [];
    for (let i = 0; i < n; i++) labels.push([{ key: "span_id", str: (i % 1000).toString(16).padStart(16, "0"), num: 0, numUnit: "" }]);
  }
  return {
    ...emptyProfile(),
    sampleTypes: [
      { type: "samples", unit: "count" },
      { type: "cpu", unit: "nanoseconds" },
    ],
    periodType: { type: "cpu", unit: "nanoseconds" },
    period: 10_000_000,
    timeNanos: 1_700_000_000_000_000_000n,
    durationNanos: 10_000_000_000,
    mappings: [{ memoryStart: 0x400000n, memoryLimit: 0x800000n, fileOffset: 0n, filename: "/bin/app", buildId: "abc", hasFunctions: true, hasFilenames: true, hasLineNumbers: true, hasInlineFrames: false }],
    functions,
    locations,
    samples: { count: n, locStart, locs, values, labels },
  };
}

/** Sample values compared bit for bit (bun's toEqual fails NaN inside typed arrays, and -0 must stay -0). */
function comparable(recs: IngestRecord[]) {
  return recs.map((r) => {
    const v = r.profile.samples.values;
    return { ...r, profile: { ...r.profile, samples: { ...r.profile.samples, values: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) } } };
  });
}

function roundTrip(recs: IngestRecord[]): IngestRecord[] {
  const out = decodeRecords(encodeRecords(recs));
  expect(comparable(out)).toEqual(comparable(recs));
  return out;
}

describe("record", () => {
  test("empty batch and empty profile", () => {
    roundTrip([]);
    roundTrip([{ tenant: "", labels: [], profile: emptyProfile() }]);
  });

  test("every field, with edge-case values", () => {
    const p: Profile = {
      sampleTypes: [
        { type: "alloc_objects", unit: "count" },
        { type: "alloc_space", unit: "bytes" },
      ],
      periodType: { type: "space", unit: "bytes" },
      period: 524288.5,
      timeNanos: -5n,
      durationNanos: 2 ** 60,
      defaultSampleType: "alloc_space",
      comments: ["first", "", "ünïcödé 🔥", "\uFEFFstarts with a BOM"],
      dropFrames: "runtime\\..*",
      keepFrames: "main",
      mappings: [
        { memoryStart: 0n, memoryLimit: 2n ** 64n - 1n, fileOffset: 1n << 63n, filename: "/lib/x.so", buildId: "", hasFunctions: true, hasFilenames: false, hasLineNumbers: true, hasInlineFrames: true },
        { memoryStart: 1n, memoryLimit: 2n, fileOffset: 3n, filename: "", buildId: "deadbeef", hasFunctions: false, hasFilenames: true, hasLineNumbers: false, hasInlineFrames: false },
      ],
      functions: [
        { name: "main", systemName: "main", filename: "main.go", startLine: 0 },
        { name: "日本語", systemName: "_Z3foov", filename: "", startLine: -1 },
        { name: "big", systemName: "", filename: "main.go", startLine: 2 ** 40 },
      ],
      locations: [
        { mapping: -1, address: 0n, lines: [], isFolded: false },
        { mapping: 0, address: 0xffff_ffff_ffff_fff0n, lines: [{ fn: 1, line: 3 }, { fn: 0, line: 42 }], isFolded: true },
        { mapping: 1, address: 7n, lines: [{ fn: 2, line: -0 }], isFolded: false },
      ],
      samples: {
        count: 3,
        locStart: Uint32Array.of(0, 2, 2, 5),
        locs: Uint32Array.of(1, 0, 2, 1, 0),
        values: Float64Array.of(1, 2, -0, NaN, Infinity, 1.5e300),
        labels: [
          [{ key: "span_id", str: "abc", num: 0, numUnit: "" }],
          [],
          [
            { key: "bytes", str: "", num: 4096, numUnit: "bytes" },
            { key: "neg", str: "", num: -3.25, numUnit: "" },
          ],
        ],
      },
    };
    const [out] = roundTrip([{ tenant: "tenant-α", labels: [{ name: "__name__", value: "memory" }, { name: "service_name", value: "svc" }], profile: p }]);
    // toEqual does not tell -0 from 0 everywhere; these must stay negative zero.
    expect(Object.is(out.profile.samples.values[2], -0)).toBe(true);
    expect(Object.is(out.profile.locations[2].lines[0].line, -0)).toBe(true);
    expect(out.profile.comments[3].charCodeAt(0)).toBe(0xfeff);
    expect(out.profile.samples.values.byteOffset % 8).toBe(0);
  });

  test("batches of several tenants, with and without sample labels", () => {
    const recs: IngestRecord[] = [];
    for (let i = 0; i < 5; i++) recs.push({ tenant: `t${i % 2}`, labels: [{ name: "service_name", value: `svc${i}` }], profile: syntheticProfile(100 + i, { labels: i % 2 === 0 }) });
    roundTrip(recs);
  });

  test("decoded arrays do not alias the input", () => {
    const bytes = encodeRecords([{ tenant: "t", labels: [], profile: syntheticProfile(10) }]);
    const [out] = decodeRecords(bytes);
    bytes.fill(0);
    expect(out.profile.samples.values[0]).toBeGreaterThan(0);
  });

  test("decodes from an unaligned view", () => {
    const bytes = encodeRecords([{ tenant: "t", labels: [], profile: syntheticProfile(50, { labels: true }) }]);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect(decodeRecords(shifted.subarray(3))).toEqual(decodeRecords(bytes));
  });

  test("rejects an unknown version, truncation and trailing bytes", () => {
    const bytes = encodeRecords([{ tenant: "t", labels: [], profile: syntheticProfile(20) }]);
    const bad = bytes.slice();
    bad[0] = 99;
    expect(() => decodeRecords(bad)).toThrow(/version/);
    for (const cut of [1, 7, 100, bytes.length - 1]) expect(() => decodeRecords(bytes.subarray(0, cut))).toThrow();
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeRecords(longer)).toThrow(/trailing/);
  });
});
