import { describe, expect, test } from "bun:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { ExportProfilesServiceRequestSchema } from "../../api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { ApiError } from "../../errors.ts";
import { decodeExportRequest, otlpEncodingOf } from "./decode-export-request.ts";
import { encodeSamplesAsV19 } from "./older-schema-encoding.ts";
import { otlpToIngestItems } from "./otlp-ingest.ts";

const FIXTURES = new URL("../../../../shared/fixtures/otlp/", import.meta.url).pathname;

function apiError(f: () => unknown): ApiError {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("no error thrown");
}

describe("otlpEncodingOf", () => {
  test("exactly the three OTLP/HTTP content types", () => {
    expect(otlpEncodingOf("application/json")).toBe("json");
    expect(otlpEncodingOf("application/x-protobuf")).toBe("protobuf");
    expect(otlpEncodingOf("application/protobuf")).toBe("protobuf");
    for (const ct of [null, "", "application/json; charset=utf-8", "application/octet-stream", "application/grpc", "APPLICATION/JSON"]) {
      const e = apiError(() => otlpEncodingOf(ct));
      expect(e.code).toBe("unsupported_media_type");
      expect(e.message).toContain("application/json, application/x-protobuf, application/protobuf");
    }
  });
});

describe("decodeExportRequest", () => {
  test("the fixture in both encodings", () => {
    const bin = decodeExportRequest(readFileSync(FIXTURES + "otel-ebpf-profile.pb.bin"), "protobuf");
    const json = decodeExportRequest(readFileSync(FIXTURES + "otel-ebpf-profile.pb.json"), "json");
    expect(bin.resourceProfiles.length).toBe(77);
    expect(json.resourceProfiles.length).toBe(77);
    expect(json.dictionary?.stringTable).toEqual(bin.dictionary?.stringTable);
  });

  test("malformed bodies are 400s", () => {
    for (const [body, enc] of [
      [new TextEncoder().encode("{not json"), "json"],
      [new TextEncoder().encode('{"resourceProfiles": [], "bogus": 1}'), "json"], // unknown fields refused, as protojson does
      [new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0xff]), "protobuf"],
      [new Uint8Array([0x0a, 0x10, 0x01]), "protobuf"], // truncated
    ] as const) {
      const e = apiError(() => decodeExportRequest(body, enc));
      expect(e.code).toBe("invalid_argument");
      expect(e.message).toContain(enc === "json" ? "Failed to parse JSON request" : "Failed to parse protobuf request");
    }
  });
});

describe("data written for opentelemetry-proto v1.9 (the schema-version trap)", () => {
  const pb = new Uint8Array(readFileSync(FIXTURES + "otel-ebpf-profile.pb.bin"));
  const original = fromBinary(ExportProfilesServiceRequestSchema, pb);

  test("decodes as Go does: fields of a foreign wire type are skipped, the rest lands in the wrong fields", () => {
    const req = decodeExportRequest(encodeSamplesAsV19(pb), "protobuf");
    const a = original.resourceProfiles[0].scopeProfiles[0].profiles[0].samples[0];
    const b = req.resourceProfiles[0].scopeProfiles[0].profiles[0].samples[0];
    expect(a.values.length).toBe(21);
    // v1.9's values (field 2) read as v1.10's attribute_indices; its packed attribute_indices
    // (field 3) do not fit v1.10's int32 link_index and are skipped.
    expect(b.attributeIndices).toEqual(a.values.map((v) => Number(BigInt.asIntN(32, v))));
    expect(b.values).toEqual([]);
    expect(b.linkIndex).toBe(0);
    expect(b.timestampsUnixNano).toEqual(a.timestampsUnixNano);
  });

  test("converting it leaves no samples with values: a 400 that names the schema version", () => {
    // Only the off-CPU profiles: the CPU samples of this fixture carry no values nor link, so
    // their bytes are the same in both layouts.
    const offCpu = fromBinary(ExportProfilesServiceRequestSchema, pb);
    offCpu.resourceProfiles = offCpu.resourceProfiles.filter((rp) => rp.scopeProfiles[0].profiles[0].samples.every((s) => s.values.length > 0));
    expect(offCpu.resourceProfiles.length).toBeGreaterThan(0);
    const req = decodeExportRequest(encodeSamplesAsV19(toBinary(ExportProfilesServiceRequestSchema, offCpu)), "protobuf");
    let err: unknown;
    try {
      otlpToIngestItems(req);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("invalid_argument");
    expect((err as ApiError).message).toContain("no samples with values; check the OTLP profiles schema version");
  });
});
