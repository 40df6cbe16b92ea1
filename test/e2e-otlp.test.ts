// End to end: the otel-ebpf-profiler fixture goes in over OTLP/HTTP (protobuf, gzip, JSON),
// Connect on the main port and gRPC on the h2c port, and every route's data queries back exactly
// as Pyroscope's integration test expects (pkg/test/integration/ingest_otlp_test.go: the expected
// files are strprofile.ToCompactProfile of SelectMergeProfile with service_name=unknown_service,
// samples sorted, time and duration left out).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { ProfileSchema, type Profile as PprofProfile } from "../server/api/gen/google/v1/profile_pb.ts";
import {
  ExportProfilesServiceRequestSchema,
  ProfilesService,
  type ExportProfilesServiceRequest,
} from "../server/api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { PusherService } from "../server/api/gen/push/v1/push_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { decodeExportRequest } from "../server/ingest/otlp/decode-export-request.ts";
import { encodeSamplesAsV19 } from "../server/ingest/otlp/older-schema-encoding.ts";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { collapsedFromFlamegraph } from "./helpers/flamegraph-collapse.ts";
import { freePort, removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const OTLP = FIXTURES + "otlp/";
const PB = new Uint8Array(readFileSync(OTLP + "otel-ebpf-profile.pb.bin"));
const JSON_TEXT = readFileSync(OTLP + "otel-ebpf-profile.pb.json", "utf8");
const START = 1000;
const END = Date.now() + 3600_000;

const EXPECTED = [
  { typeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", file: "otel-ebpf-profile-cpu.out.json" },
  { typeId: "off_cpu:off_cpu:nanoseconds::", file: "otel-ebpf-profile-offcpu.out.json" },
];

// How each run gets in; a scope attribute `test_run` tells the runs apart, as in Pyroscope's test.
const RUNS = ["protobuf", "protobuf-gzip", "json", "connect", "grpc"] as const;

/** The fixture with a `test_run` scope attribute on every scope. */
function tagged(run: string): ExportProfilesServiceRequest {
  const req = fromBinary(ExportProfilesServiceRequestSchema, PB);
  for (const rp of req.resourceProfiles)
    for (const sp of rp.scopeProfiles) {
      sp.scope ??= { $typeName: "opentelemetry.proto.common.v1.InstrumentationScope", name: "", version: "", attributes: [], droppedAttributesCount: 0 };
      sp.scope.attributes.push({ $typeName: "opentelemetry.proto.common.v1.KeyValue", key: "test_run", keyStrindex: 0, value: { $typeName: "opentelemetry.proto.common.v1.AnyValue", value: { case: "stringValue", value: run } } });
    }
  return req;
}

/** The JSON fixture, tagged the same way in its own (protojson) form. */
function taggedJson(run: string): string {
  const j = JSON.parse(JSON_TEXT);
  for (const rp of j.resourceProfiles) for (const sp of rp.scopeProfiles) (sp.scope ??= {}).attributes = [...(sp.scope.attributes ?? []), { key: "test_run", value: { stringValue: run } }];
  return JSON.stringify(j);
}

const postOtlp = (s: RunningServer, body: BodyInit, headers: Record<string, string>) => fetch(`${s.url}/v1development/profiles`, { method: "POST", headers, body });

async function rpc(s: RunningServer, method: string, body: unknown) {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function selectMergeProfile(s: RunningServer, typeId: string, selector: string): Promise<PprofProfile> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto" },
    body: toBinary(SelectMergeProfileRequestSchema, create(SelectMergeProfileRequestSchema, { profileTypeID: typeId, labelSelector: selector, start: BigInt(START), end: BigInt(END) })),
  });
  expect(r.status).toBe(200);
  return fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer()));
}

// strprofile's compact form (pkg/og/convert/pprof/strprofile), written here from its field rules.
interface CompactProfile {
  sample_types: { type: string; unit: string }[];
  samples: { locations?: { address?: string; lines?: string[]; mapping?: string }[]; values: string; labels?: string }[];
  period?: string;
}

function compact(p: PprofProfile): CompactProfile {
  const str = (i: bigint) => p.stringTable[Number(i)];
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  const fns = new Map(p.function.map((f) => [f.id, f]));
  const maps = new Map(p.mapping.map((m) => [m.id, m]));
  const locs = new Map(p.location.map((l) => [l.id, l]));
  return {
    sample_types: p.sampleType.map((t) => ({ type: str(t.type), unit: str(t.unit) })),
    samples: p.sample.map((s) => ({
      locations: s.locationId.map((id) => {
        const l = locs.get(id)!;
        const m = l.mappingId !== 0n ? maps.get(l.mappingId) : undefined;
        return {
          address: hex(l.address),
          lines: l.line.flatMap((x) => {
            const f = fns.get(x.functionId);
            return f ? [`${str(f.name)}[${str(f.systemName)}]@${str(f.filename)}:${x.line}`] : [];
          }),
          ...(m ? { mapping: `${hex(m.memoryStart)}-${hex(m.memoryLimit)}@${hex(m.fileOffset)} ${str(m.filename)}(${str(m.buildId)})` } : {}),
        };
      }),
      values: s.value.join(","),
      ...(s.label.length ? { labels: s.label.map((l) => `${str(l.key)}=${l.str !== 0n ? str(l.str) : l.num}`).sort().join(",") } : {}),
    })),
    period: String(p.period),
  };
}

/** Samples as comparable strings, sorted (strprofile sorts by hash; any total order will do). */
function sortedSamples(c: CompactProfile): string[] {
  return c.samples
    .map((s) => JSON.stringify({ locations: (s.locations ?? []).map((l) => ({ address: l.address ?? "", lines: l.lines ?? [], mapping: l.mapping ?? "" })), values: s.values, labels: s.labels ?? "" }))
    .sort();
}

/** Collapsed `root;…;leaf → value` of a compact profile: function names, callers first. */
function collapsedFromCompact(c: CompactProfile): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of c.samples) {
    const frames: string[] = [];
    for (const l of [...(s.locations ?? [])].reverse())
      for (const line of [...(l.lines ?? [])].reverse()) frames.push(line.match(/^(.*)\[[^\]]*\]@[^@]*:-?\d+$/)![1]);
    const k = frames.join(";");
    out.set(k, (out.get(k) ?? 0) + Number(s.values));
  }
  return out;
}

const sortedEntries = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ${v}`).sort();

describe("OTLP profiles end to end", () => {
  let s: RunningServer;
  let grpcPort: number;

  beforeAll(async () => {
    grpcPort = await freePort();
    s = await startServer({ args: ["--grpc-port", String(grpcPort)] });
    const responses = [
      await postOtlp(s, toBinary(ExportProfilesServiceRequestSchema, tagged("protobuf")), { "content-type": "application/x-protobuf" }),
      await postOtlp(s, gzipSync(toBinary(ExportProfilesServiceRequestSchema, tagged("protobuf-gzip"))), { "content-type": "application/protobuf", "content-encoding": "gzip" }),
      await postOtlp(s, taggedJson("json"), { "content-type": "application/json" }),
    ];
    for (const r of responses) {
      expect(r.status, await r.clone().text()).toBe(200);
      expect(r.headers.get("content-type")).toBe("application/x-protobuf");
    }
    // Connect (binary) on the main port, as connect-web/connect-node clients do.
    const connect = createClient(ProfilesService, createConnectTransport({ baseUrl: s.url, httpVersion: "1.1", useBinaryFormat: true }));
    await connect.export(tagged("connect"));
    // Real gRPC over h2c, as the OpenTelemetry collector and Alloy send, gzip-compressed.
    const grpc = createClient(ProfilesService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}`, sendCompression: (await import("@connectrpc/connect-node")).compressionGzip }));
    await grpc.export(tagged("grpc"));
  }, 60_000);

  afterAll(async () => {
    if (!s) return;
    expect(await s.stop()).toBe(0);
    removeDir(s.dataDir);
  });

  for (const run of RUNS)
    for (const { typeId, file } of EXPECTED)
      test(`${run}: SelectMergeProfile ${typeId} equals ${file}`, async () => {
        const expected: CompactProfile = JSON.parse(readFileSync(OTLP + file, "utf8"));
        const got = compact(await selectMergeProfile(s, typeId, `{service_name="unknown_service", test_run="${run}"}`));
        expect(got.samples.length).toBeGreaterThan(0);
        expect(got.sample_types).toEqual(expected.sample_types);
        expect(got.period).toBe(expected.period);
        expect(sortedSamples(got)).toEqual(sortedSamples(expected));
      });

  for (const run of RUNS)
    for (const { typeId, file } of EXPECTED)
      test(`${run}: SelectMergeStacktraces ${typeId}, collapsed, equals ${file} collapsed`, async () => {
        const expected = collapsedFromCompact(JSON.parse(readFileSync(OTLP + file, "utf8")));
        const res = await rpc(s, "SelectMergeStacktraces", { profileTypeID: typeId, labelSelector: `{service_name="unknown_service", test_run="${run}"}`, start: START, end: END, maxNodes: -1 });
        const total = [...expected.values()].reduce((a, b) => a + b, 0);
        expect(Number(res.flamegraph.total)).toBe(total);
        expect(sortedEntries(collapsedFromFlamegraph(res.flamegraph))).toEqual(sortedEntries(expected));
      });

  test("series carry Pyroscope's OTLP labels, dots turned into underscores", async () => {
    const res = await rpc(s, "Series", { matchers: ['{test_run="protobuf"}'], labelNames: ["service_name", "__name__", "process_pid", "__otel__"], start: START, end: END });
    const seen = new Set<string>();
    for (const ser of res.labelsSet ?? []) {
      const ls = Object.fromEntries(ser.labels.map((l: { name: string; value: string }) => [l.name, l.value]));
      expect(ls.__otel__).toBeUndefined(); // stripped before storage, as Pyroscope's head does
      expect(ls.process_pid).toMatch(/^\d+$/);
      seen.add(`${ls.__name__} ${ls.service_name}`);
    }
    expect([...seen].sort()).toEqual([
      "off_cpu unknown_service",
      "off_cpu unknown_service:containerd",
      "off_cpu unknown_service:kwin_wayland",
      "off_cpu unknown_service:xdg-desktop-portal",
      "process_cpu unknown_service",
    ]);
  });

  test("another content type is a 415 naming the accepted ones", async () => {
    const r = await postOtlp(s, PB, { "content-type": "application/octet-stream" });
    expect(r.status).toBe(415);
    expect(await r.text()).toContain("application/json, application/x-protobuf, application/protobuf");
    const unknownMethod = await fetch(`${s.url}/v1development/profiles`);
    expect(unknownMethod.status).toBe(405);
  });

  test("data written for another schema revision: 400 naming the schema version, nothing stored", async () => {
    // The off-CPU part of the fixture re-encoded with opentelemetry-proto v1.9's Sample field numbers.
    const req = tagged("trap");
    req.resourceProfiles = req.resourceProfiles.filter((rp) => rp.scopeProfiles.every((sp) => sp.profiles.every((p) => p.samples.every((x) => x.values.length > 0))));
    const trap = encodeSamplesAsV19(toBinary(ExportProfilesServiceRequestSchema, req));
    const r = await postOtlp(s, trap, { "content-type": "application/x-protobuf" });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("no samples with values; check the OTLP profiles schema version");
    // Over gRPC the same data (read the way Go reads it, then re-encoded by the client) is an InvalidArgument.
    const grpc = createClient(ProfilesService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` }));
    const err = await grpc.export(decodeExportRequest(trap, "protobuf")).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain("check the OTLP profiles schema version");
    const series = await rpc(s, "Series", { matchers: ['{test_run="trap"}'], start: START, end: END });
    expect(series.labelsSet ?? []).toEqual([]);
  });

  test("push.v1.PusherService/Push over gRPC on the h2c port", async () => {
    const raw = new Uint8Array(readFileSync(FIXTURES + "pprof/cpu.pb.gz"));
    const pusher = createClient(PusherService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` }));
    await pusher.push({
      series: [{ labels: [{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "grpc-push" }], samples: [{ ID: "x", rawProfile: raw }] }],
    });
    const want = sumColumn(readPprof(FIXTURES + "pprof/cpu.pb.gz"), 1);
    const fg = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", labelSelector: '{service_name="grpc-push"}', start: START, end: END })).flamegraph;
    expect(Number(fg.total)).toBe(want);
  });
});
