import { describe, expect, test } from "bun:test";
import { create, fromBinary, fromJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { ExportProfilesServiceRequestSchema } from "../../api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { getLabel } from "../../../storage/model/labels.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { ApiError } from "../../errors.ts";
import type { IngestItem } from "../../ingester.ts";
import { otlpToIngestItems } from "./otlp-ingest.ts";

const FIXTURES = new URL("../../../../shared/fixtures/otlp/", import.meta.url).pathname;

type ReqInit = MessageInitShape<typeof ExportProfilesServiceRequestSchema>;
const str = (s: string) => ({ value: { case: "stringValue" as const, value: s } });
const int = (n: bigint) => ({ value: { case: "intValue" as const, value: n } });

/** A one-profile request: one mapping, two locations with lines, one stack, `samples` as given. */
function request(opts: {
  resource?: { key: string; value: ReturnType<typeof str> | ReturnType<typeof int> }[];
  scope?: { key: string; value: ReturnType<typeof str> }[];
  samples?: { stackIndex: number; values: bigint[]; attributeIndices?: number[] }[];
  attributeTable?: { keyStrindex: number; value: ReturnType<typeof str> }[];
}): ReqInit {
  const strings = ["", "samples", "count", "cpu", "nanoseconds", "main", "work", "app.so", "service.name", "svc-b"];
  return {
    resourceProfiles: [
      {
        resource: { attributes: opts.resource ?? [] },
        scopeProfiles: [
          {
            scope: { name: "profiler", attributes: opts.scope ?? [] },
            profiles: [
              {
                sampleType: { typeStrindex: 1, unitStrindex: 2 },
                periodType: { typeStrindex: 3, unitStrindex: 4 },
                period: 10_000_000n,
                timeUnixNano: 1_700_000_000_000_000_000n,
                durationNano: 5_000_000_000n,
                samples: opts.samples ?? [{ stackIndex: 1, values: [3n] }],
              },
            ],
          },
        ],
      },
    ],
    dictionary: {
      stringTable: strings,
      mappingTable: [{}, { filenameStrindex: 7 }],
      functionTable: [{}, { nameStrindex: 5 }, { nameStrindex: 6 }],
      locationTable: [{}, { mappingIndex: 1, address: 0x10n, lines: [{ functionIndex: 2 }] }, { mappingIndex: 1, address: 0x20n, lines: [{ functionIndex: 1 }] }],
      stackTable: [{}, { locationIndices: [1, 2] }],
      attributeTable: [{}, ...(opts.attributeTable ?? [])],
    },
  };
}

const convert = (init: ReqInit) => otlpToIngestItems(create(ExportProfilesServiceRequestSchema, init));

function labelsOf(it: IngestItem): Record<string, string> {
  return Object.fromEntries(it.labels.map((l) => [l.name, l.value]));
}

describe("series labels", () => {
  test("Pyroscope's fixed labels, the guessed __name__, resource and scope attributes", () => {
    const { items } = convert(
      request({
        resource: [
          { key: "service.name", value: str("checkout") },
          { key: "process.pid", value: int(42n) },
          { key: "host.name", value: str("h1") },
        ],
        scope: [
          { key: "host.name", value: str("ignored: the resource's value came first") },
          { key: "test_run", value: str("7") },
        ],
      }),
    );
    expect(items).toHaveLength(1);
    expect(labelsOf(items[0])).toEqual({
      __delta__: "false",
      __otel__: "true",
      __name__: "process_cpu",
      service_name: "checkout",
      "process.pid": "42",
      "host.name": "h1",
      test_run: "7",
    });
    // Sorted, as the distributor expects.
    const names = items[0].labels.map((l) => l.name);
    expect(names).toEqual([...names].sort());
  });

  test("service_name falls back to unknown_service, with the executable's name when known", () => {
    expect(getLabel(convert(request({})).items[0].labels, "service_name")).toBe("unknown_service");
    const withExe = convert(request({ resource: [{ key: "process.executable.name", value: str("bash") }] }));
    expect(getLabel(withExe.items[0].labels, "service_name")).toBe("unknown_service:bash");
    const empty = convert(request({ resource: [{ key: "service.name", value: str("") }] }));
    expect(getLabel(empty.items[0].labels, "service_name")).toBe("unknown_service");
  });

  test("a sample-level service.name splits the profile and wins over the resource's", () => {
    const { items } = convert(
      request({
        resource: [{ key: "service.name", value: str("svc-a") }],
        attributeTable: [{ keyStrindex: 8, value: str("svc-b") }],
        samples: [
          { stackIndex: 1, values: [1n] },
          { stackIndex: 1, values: [2n], attributeIndices: [1] },
        ],
      }),
    );
    const bySvc = Object.fromEntries(items.map((it) => [getLabel(it.labels, "service_name"), it]));
    expect(Object.keys(bySvc).sort()).toEqual(["svc-a", "svc-b"]);
    expect([...bySvc["svc-a"].profile.samples.values]).toEqual([1e7]);
    expect([...bySvc["svc-b"].profile.samples.values]).toEqual([2e7]);
    // The resource's service.name is not carried along as a second, conflicting label.
    expect(labelsOf(bySvc["svc-b"])["service.name"]).toBe("svc-a");
    expect(labelsOf(bySvc["svc-a"])["service.name"]).toBeUndefined();
    // service.name is never a sample label.
    expect(bySvc["svc-b"].profile.samples.labels).toBeNull();
  });
});

describe("rejections", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof ApiError ? `${e.code}: ${e.message}` : `not an ApiError: ${e}`;
    }
    return "no error";
  };

  test("no dictionary, no resource profiles", () => {
    expect(code(() => convert({ resourceProfiles: request({}).resourceProfiles }))).toBe("invalid_argument: missing profile metadata dictionary");
    expect(code(() => convert({ dictionary: {} }))).toBe("invalid_argument: missing resource profiles");
  });

  test("no samples with values: 400 pointing at the schema version", () => {
    const msg = code(() => convert(request({ samples: [{ stackIndex: 1, values: [0n] }] })));
    expect(msg).toStartWith("invalid_argument: ");
    expect(msg).toContain("no samples with values; check the OTLP profiles schema version");
    // Attribute indexes that do not resolve (what another revision's field numbers produce)
    // make the profile convert to nothing, which is reported the same way.
    const garbled = code(() => convert(request({ samples: [{ stackIndex: 1, values: [5n], attributeIndices: [806680624] }] })));
    expect(garbled).toContain("no samples with values; check the OTLP profiles schema version");
  });

  test("references that do not resolve are a 400 naming them", () => {
    expect(code(() => convert(request({ samples: [{ stackIndex: 9, values: [1n] }] })))).toBe("invalid_argument: failed to convert otel profile: invalid stack index: 9");
  });
});

// The compact form of Pyroscope's strprofile (what the fixtures' expected outputs are written in).
interface CompactSample {
  locations: { address: string; lines: string[]; mapping?: string }[];
  values: string;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Samples of our model in strprofile's compact form, merged by stack as a query merges them. */
function compactSamples(profiles: Profile[]): CompactSample[] {
  const merged = new Map<string, { locations: CompactSample["locations"]; value: number }>();
  for (const p of profiles) {
    const s = p.samples;
    for (let i = 0; i < s.count; i++) {
      const locations = [];
      for (let j = s.locStart[i]; j < s.locStart[i + 1]; j++) {
        const l = p.locations[s.locs[j]];
        const m = l.mapping >= 0 ? p.mappings[l.mapping] : null;
        const loc: CompactSample["locations"][number] = {
          address: hex(l.address),
          lines: l.lines.map((x) => {
            const f = p.functions[x.fn];
            return `${f.name}[${f.systemName}]@${f.filename}:${x.line}`;
          }),
        };
        if (m) loc.mapping = `${hex(m.memoryStart)}-${hex(m.memoryLimit)}@${hex(m.fileOffset)} ${m.filename}(${m.buildId})`;
        locations.push(loc);
      }
      const key = JSON.stringify(locations);
      const have = merged.get(key);
      if (have) have.value += s.values[i];
      else merged.set(key, { locations, value: s.values[i] });
    }
  }
  return [...merged.values()].map((x) => ({ locations: x.locations, values: String(x.value) }));
}

const canonical = (samples: CompactSample[]) => samples.map((s) => JSON.stringify({ locations: s.locations.map((l) => ({ address: l.address, lines: l.lines ?? [], mapping: l.mapping })), values: s.values })).sort();

describe("the otel-ebpf-profiler fixture", () => {
  const bin = fromBinary(ExportProfilesServiceRequestSchema, readFileSync(FIXTURES + "otel-ebpf-profile.pb.bin"));
  const json = fromJsonString(ExportProfilesServiceRequestSchema, readFileSync(FIXTURES + "otel-ebpf-profile.pb.json", "utf8"));
  const fromBin = otlpToIngestItems(bin, () => 0n);
  const fromJson = otlpToIngestItems(json, () => 0n);

  test("protobuf and protojson forms convert to the same items", () => {
    expect(fromJson.items.length).toBe(fromBin.items.length);
    expect(fromJson.samples).toBe(fromBin.samples);
    expect(compactSamples(fromJson.items.map((i) => i.profile))).toEqual(compactSamples(fromBin.items.map((i) => i.profile)));
  });

  for (const [file, name, type] of [
    ["otel-ebpf-profile-cpu.out.json", "process_cpu", { type: "cpu", unit: "nanoseconds" }],
    ["otel-ebpf-profile-offcpu.out.json", "off_cpu", { type: "off_cpu", unit: "nanoseconds" }],
  ] as const) {
    test(`${name} of unknown_service equals ${file}`, () => {
      const expected = JSON.parse(readFileSync(FIXTURES + file, "utf8"));
      const items = fromBin.items.filter((it) => getLabel(it.labels, "__name__") === name && getLabel(it.labels, "service_name") === "unknown_service");
      expect(items.length).toBeGreaterThan(0);
      for (const it of items) expect(it.profile.sampleTypes).toEqual([type]);
      expect(expected.sample_types).toEqual([type]);
      expect(canonical(compactSamples(items.map((i) => i.profile)))).toEqual(canonical(expected.samples));
    });
  }

  test("the other services are the executables' fallbacks", () => {
    const services = new Set(fromBin.items.map((it) => getLabel(it.labels, "service_name")));
    expect([...services].sort()).toEqual(["unknown_service", "unknown_service:containerd", "unknown_service:kwin_wayland", "unknown_service:xdg-desktop-portal"]);
  });
});
