import { describe, expect, test } from "bun:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ProfileSchema,
  ProfilesDictionarySchema,
} from "../../api/gen/opentelemetry/proto/profiles/v1development/profiles_pb.ts";
import { convertOtlpProfile } from "./profile-converter.ts";

type ProfileInit = MessageInitShape<typeof ProfileSchema>;
type DictInit = MessageInitShape<typeof ProfilesDictionarySchema>;

/** A small dictionary builder: strings are interned, index 0 of every table is the zero entry. */
function dictionary() {
  const strings = [""];
  const s = (x: string) => {
    const i = strings.indexOf(x);
    return i >= 0 ? i : strings.push(x) - 1;
  };
  const d: DictInit & Required<Pick<DictInit, "mappingTable" | "locationTable" | "functionTable" | "stackTable" | "attributeTable" | "linkTable">> = {
    mappingTable: [{}],
    locationTable: [{}],
    functionTable: [{}],
    stackTable: [{}],
    attributeTable: [{}],
    linkTable: [{}],
  };
  return { s, d, strings };
}

function run(p: ProfileInit, d: DictInit, strings: string[]) {
  return convertOtlpProfile(create(ProfileSchema, p), create(ProfilesDictionarySchema, { ...d, stringTable: strings }), () => 123n);
}

describe("sample types and __name__", () => {
  // The unsymbolized two-mapping setup of Pyroscope's converter tests.
  function unsymbolized() {
    const b = dictionary();
    b.d.mappingTable.push({ memoryStart: 0x1000n, memoryLimit: 0x1000n, filenameStrindex: b.s("file1.so") });
    b.d.locationTable.push({ mappingIndex: 1, address: 0x1e0n }, { mappingIndex: 1, address: 0x2f0n }, { mappingIndex: 1, address: 0x3f0n });
    b.d.stackTable.push({ locationIndices: [1, 2] }, { locationIndices: [3] });
    return b;
  }

  test("off_cpu sums the per-event values; no period, default duration, time kept", () => {
    const { s, d, strings } = unsymbolized();
    const out = run(
      {
        sampleType: { typeStrindex: s("off_cpu"), unitStrindex: s("nanoseconds") },
        timeUnixNano: 239n,
        samples: [
          { stackIndex: 1, values: [0xefn] },
          { stackIndex: 2, values: [1n, 2n, 3n, 4n, 5n, 6n] },
        ],
      },
      d,
      strings,
    );
    expect([...out.keys()]).toEqual([""]);
    const c = out.get("")!;
    expect(c.name).toBe("off_cpu");
    const p = c.profile;
    expect(p.sampleTypes).toEqual([{ type: "off_cpu", unit: "nanoseconds" }]);
    expect([...p.samples.values]).toEqual([239, 21]);
    expect(p.timeNanos).toBe(239n);
    expect(p.durationNanos).toBe(10e9);
    expect(p.period).toBe(0);
    // Unsymbolized frames keep addresses and the mapping's range.
    const locs = [...p.samples.locs].map((i) => p.locations[i]);
    expect(locs.map((l) => l.address)).toEqual([0x1e0n, 0x2f0n, 0x3f0n]);
    expect(locs.map((l) => p.mappings[l.mapping].filename)).toEqual(["file1.so", "file1.so", "file1.so"]);
    expect(p.mappings[locs[0].mapping]).toMatchObject({ memoryStart: 0x1000n, memoryLimit: 0x1000n, hasFunctions: false });
    expect([...p.samples.locStart]).toEqual([0, 2, 3]);
  });

  test("samples:count with a cpu:nanoseconds period becomes process_cpu in nanoseconds", () => {
    const { s, d, strings } = unsymbolized();
    const c = run(
      {
        sampleType: { typeStrindex: s("samples"), unitStrindex: s("count") },
        periodType: { typeStrindex: s("cpu"), unitStrindex: s("nanoseconds") },
        period: 50_000_000n,
        samples: [{ stackIndex: 1, values: [3n] }],
      },
      d,
      strings,
    ).get("")!;
    expect(c.name).toBe("process_cpu");
    expect(c.profile.sampleTypes).toEqual([{ type: "cpu", unit: "nanoseconds" }]);
    expect(c.profile.periodType).toEqual({ type: "cpu", unit: "nanoseconds" });
    expect(c.profile.defaultSampleType).toBe("samples");
    expect([...c.profile.samples.values]).toEqual([150_000_000]);
    expect(c.profile.timeNanos).toBe(123n); // no time: now
  });

  test("other types take the period type as the name, else process_cpu", () => {
    const { s, d, strings } = unsymbolized();
    const name = (t: string, u: string, pt?: [string, string], period = 0n) =>
      run(
        {
          sampleType: { typeStrindex: s(t), unitStrindex: s(u) },
          periodType: pt ? { typeStrindex: s(pt[0]), unitStrindex: s(pt[1]) } : undefined,
          period,
          samples: [{ stackIndex: 1, values: [1n] }],
        },
        d,
        strings,
      ).get("")!.name;
    expect(name("alloc_space", "bytes", ["space", "bytes"], 512n)).toBe("space");
    expect(name("samples", "count", ["wall", "nanoseconds"], 10n)).toBe("wall");
    // Without a period the period part is empty.
    expect(name("samples", "count", ["cpu", "nanoseconds"], 0n)).toBe("process_cpu");
    expect(name("samples", "ms")).toBe("process_cpu");
  });

  test("values without a period type count per timestamp; with a period the count must be one", () => {
    const { s, d, strings } = unsymbolized();
    const st = { typeStrindex: s("events"), unitStrindex: s("count") };
    const c = run({ sampleType: st, samples: [{ stackIndex: 1, timestampsUnixNano: [1n, 2n, 3n] }] }, d, strings).get("")!;
    expect([...c.profile.samples.values]).toEqual([3]);
    expect(() => run({ sampleType: st, samples: [{ stackIndex: 1 }] }, d, strings)).toThrow("sample value is required");
    expect(() =>
      run(
        {
          sampleType: st,
          periodType: { typeStrindex: s("period_type"), unitStrindex: s("period_unit") },
          period: 100n,
          samples: [{ stackIndex: 2, values: [1n, 2n] }],
        },
        d,
        strings,
      ),
    ).toThrow("sample values length mismatch");
    expect(() => run({ samples: [{ stackIndex: 1, values: [1n] }] }, d, strings)).toThrow("sample type is missing");
  });
});

describe("samples", () => {
  function symbolized() {
    const b = dictionary();
    b.d.mappingTable.push(
      { memoryStart: 0x400000n, memoryLimit: 0x500000n, fileOffset: 0x1000n, filenameStrindex: b.s("app"), attributeIndices: [1] },
      { filenameStrindex: b.s("lib.so") },
    );
    b.d.attributeTable.push({ keyStrindex: b.s("process.executable.build_id.gnu"), value: { value: { case: "stringValue", value: "abc123" } } });
    b.d.functionTable.push({ nameStrindex: b.s("main"), systemNameStrindex: b.s("_main"), filenameStrindex: b.s("main.c"), startLine: 3n }, { nameStrindex: b.s("inlined") });
    b.d.locationTable.push(
      { mappingIndex: 1, address: 0x401000n, lines: [{ functionIndex: 2, line: 7n }, { functionIndex: 1, line: 12n }] },
      { mappingIndex: 2, address: 0x0n }, // neither lines nor address: pprof.Normalize drops its samples
      { mappingIndex: 2, address: 0x77n },
    );
    b.d.stackTable.push({ locationIndices: [1] }, { locationIndices: [2, 1] }, { locationIndices: [3, 1] });
    return b;
  }

  test("symbols, inline lines in pprof order, build IDs; symbolized mappings lose addresses", () => {
    const { s, d, strings } = symbolized();
    const p = run({ sampleType: { typeStrindex: s("samples"), unitStrindex: s("count") }, samples: [{ stackIndex: 1, values: [4n] }, { stackIndex: 3, values: [1n] }] }, d, strings).get("")!.profile;
    expect(p.samples.count).toBe(2);
    const leaf = p.locations[p.samples.locs[0]];
    expect(leaf.address).toBe(0n);
    expect(leaf.lines.map((l) => [p.functions[l.fn].name, l.line])).toEqual([["inlined", 7], ["main", 12]]);
    expect(p.functions.find((f) => f.name === "main")).toEqual({ name: "main", systemName: "_main", filename: "main.c", startLine: 3 });
    expect(p.mappings[leaf.mapping]).toMatchObject({ memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n, filename: "app", buildId: "abc123", hasFunctions: true, hasLineNumbers: true, hasInlineFrames: false });
    // The unsymbolized lib.so frame keeps its address.
    const lib = p.locations[p.samples.locs[1]];
    expect(lib.address).toBe(0x77n);
    expect(p.mappings[lib.mapping]).toMatchObject({ filename: "lib.so", hasFunctions: false });
  });

  test("samples with no positive value or an empty location are dropped", () => {
    const { s, d, strings } = symbolized();
    const p = run(
      {
        sampleType: { typeStrindex: s("samples"), unitStrindex: s("count") },
        samples: [
          { stackIndex: 1, values: [0n] },
          { stackIndex: 1, values: [-3n] },
          { stackIndex: 2, values: [5n] },
          { stackIndex: 1, values: [2n] },
        ],
      },
      d,
      strings,
    ).get("")!.profile;
    expect([...p.samples.values]).toEqual([2]);
  });

  test("sample attributes become string labels (ints as decimals); links become span_id/trace_id", () => {
    const { s, d, strings } = symbolized();
    d.attributeTable.push(
      { keyStrindex: s("process"), value: { value: { case: "stringValue", value: "firefox" } } },
      { keyStrindex: s("cpu.logical_number"), value: { value: { case: "intValue", value: 0n } } },
      { keyStrindex: s("flag"), value: { value: { case: "boolValue", value: true } } },
      { keyStrindex: s("thread.name"), value: { value: { case: "arrayValue", value: { values: [{ value: { case: "stringValue", value: "worker" } }] } } } },
    );
    d.linkTable.push({ traceId: new Uint8Array(16).fill(0xab), spanId: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) });
    const p = run(
      { sampleType: { typeStrindex: s("samples"), unitStrindex: s("count") }, samples: [{ stackIndex: 1, values: [1n], attributeIndices: [2, 3, 4, 5], linkIndex: 1 }] },
      d,
      strings,
    ).get("")!.profile;
    expect(p.samples.labels?.[0].map((l) => `${l.key}=${l.str}`)).toEqual([
      "process=firefox",
      "cpu.logical_number=0",
      "thread.name=worker",
      "span_id=0102030405060708",
      `trace_id=${"ab".repeat(16)}`,
    ]);
  });

  test("unresolvable references: a sample's attributes empty the profile, symbols throw", () => {
    const { s, d, strings } = symbolized();
    const st = { typeStrindex: s("samples"), unitStrindex: s("count") };
    expect(run({ sampleType: st, samples: [{ stackIndex: 1, values: [1n] }, { stackIndex: 1, values: [1n], attributeIndices: [99] }] }, d, strings).size).toBe(0);
    expect(() => run({ sampleType: st, samples: [{ stackIndex: 42, values: [1n] }] }, d, strings)).toThrow("invalid stack index: 42");
    d.stackTable.push({ locationIndices: [17] });
    expect(() => run({ sampleType: st, samples: [{ stackIndex: 4, values: [1n] }] }, d, strings)).toThrow("location index 17 is out of range");
    expect(() => run({ sampleType: { typeStrindex: 500, unitStrindex: 1 }, samples: [{ stackIndex: 1, values: [1n] }] }, d, strings)).toThrow("sample type string index 500");
  });
});
