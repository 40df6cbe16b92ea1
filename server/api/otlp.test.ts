import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import {
  ExportProfilesServiceRequestSchema,
  ExportProfilesServiceResponseSchema,
  ProfilesService,
} from "./gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import type { Distributor } from "../distributor.ts";
import type { IngestItem } from "../ingester.ts";
import { handleOtlpHttp, otlpProfilesService, type OtlpDeps } from "./otlp.ts";

const FIXTURES = new URL("../../../shared/fixtures/otlp/", import.meta.url).pathname;
const PB = new Uint8Array(readFileSync(FIXTURES + "otel-ebpf-profile.pb.bin"));
const JSON_BODY = new Uint8Array(readFileSync(FIXTURES + "otel-ebpf-profile.pb.json"));

function setup(limits: Partial<OtlpDeps["limits"]> = {}, multitenancy = false) {
  const pushed: { tenant: string; items: IngestItem[] }[] = [];
  const distributor: Distributor = {
    async push() {
      throw new Error("not used");
    },
    async ingest(tenant, items) {
      pushed.push({ tenant, items });
    },
  } as Distributor;
  const deps: OtlpDeps = { distributor, limits: { maxProfileSizeBytes: 16 << 20, ingestionBodyLimitBytes: 16 << 20, ...limits }, multitenancy };
  const post = (body: Uint8Array, headers: Record<string, string>) =>
    handleOtlpHttp(new Request("http://x/v1development/profiles", { method: "POST", headers, body: new Uint8Array(body) }), deps);
  return { pushed, deps, post };
}

describe("POST /v1development/profiles", () => {
  test("protobuf, gzipped protobuf and JSON are accepted; the answer is a protobuf ExportProfilesServiceResponse", async () => {
    const { pushed, post } = setup();
    for (const [body, headers] of [
      [PB, { "content-type": "application/x-protobuf" }],
      [PB, { "content-type": "application/protobuf" }],
      [gzipSync(PB), { "content-type": "application/x-protobuf", "content-encoding": "gzip" }],
      [JSON_BODY, { "content-type": "application/json" }],
      [gzipSync(JSON_BODY), { "content-type": "application/json", "content-encoding": "GZIP" }],
    ] as const) {
      const r = await post(new Uint8Array(body), headers);
      expect(r.status, await r.clone().text()).toBe(200);
      expect(r.headers.get("content-type")).toBe("application/x-protobuf");
      const msg = fromBinary(ExportProfilesServiceResponseSchema, new Uint8Array(await r.arrayBuffer()));
      expect(msg.partialSuccess).toBeUndefined();
    }
    expect(pushed).toHaveLength(5);
    for (const p of pushed) {
      expect(p.tenant).toBe("anonymous");
      expect(p.items.length).toBe(pushed[0].items.length);
    }
  });

  test("other content types are a 415 naming the accepted ones", async () => {
    const { pushed, post } = setup();
    const r = await post(PB, { "content-type": "application/octet-stream" });
    expect(r.status).toBe(415);
    expect(await r.text()).toContain("application/json, application/x-protobuf, application/protobuf");
    expect(pushed).toHaveLength(0);
  });

  test("the uncompressed size is held to max_profile_size_bytes: 413", async () => {
    const { pushed, post } = setup({ maxProfileSizeBytes: 50_000 });
    const gz = await post(gzipSync(PB), { "content-type": "application/x-protobuf", "content-encoding": "gzip" });
    expect(gz.status).toBe(413);
    expect(await gz.text()).toContain("uncompressed profile payload size exceeds limit of 50000 bytes");
    const raw = await post(PB, { "content-type": "application/x-protobuf" });
    expect(raw.status).toBe(413);
    expect(pushed).toHaveLength(0);
  });

  test("malformed bodies and a gzip header on plain data are 400s", async () => {
    const { pushed, post } = setup();
    expect((await post(new Uint8Array([1, 2, 3]), { "content-type": "application/x-protobuf" })).status).toBe(400);
    expect((await post(new TextEncoder().encode("{"), { "content-type": "application/json" })).status).toBe(400);
    expect((await post(PB, { "content-type": "application/x-protobuf", "content-encoding": "gzip" })).status).toBe(400);
    expect((await post(gzipSync(PB).subarray(0, 200), { "content-type": "application/x-protobuf", "content-encoding": "gzip" })).status).toBe(400);
    expect(pushed).toHaveLength(0);
  });

  test("a request whose samples come out empty is a 400 and nothing is handed on", async () => {
    const { pushed, post } = setup();
    const req = fromBinary(ExportProfilesServiceRequestSchema, PB);
    for (const rp of req.resourceProfiles) for (const sp of rp.scopeProfiles) for (const p of sp.profiles) for (const s of p.samples) s.values = s.values.length ? s.values.map(() => 0n) : [0n]; // CPU samples carry only timestamps
    const r = await post(toBinary(ExportProfilesServiceRequestSchema, req), { "content-type": "application/x-protobuf" });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("no samples with values; check the OTLP profiles schema version");
    expect(pushed).toHaveLength(0);
  });

  test("the tenant comes from X-Scope-OrgID when multi-tenancy is on", async () => {
    const { pushed, post } = setup({}, true);
    expect((await post(PB, { "content-type": "application/x-protobuf" })).status).toBe(401);
    expect((await post(PB, { "content-type": "application/x-protobuf", "x-scope-orgid": "team-a" })).status).toBe(200);
    expect(pushed.map((p) => p.tenant)).toEqual(["team-a"]);
  });
});

describe("ProfilesService/Export", () => {
  test("through a Connect router: ingests, and maps errors to invalid_argument", async () => {
    const { pushed, deps } = setup({}, true);
    const transport = createRouterTransport((router) => router.service(ProfilesService, otlpProfilesService(deps)));
    const client = createClient(ProfilesService, transport);
    const req = fromBinary(ExportProfilesServiceRequestSchema, PB);
    await client.export(req, { headers: { "x-scope-orgid": "t1" } });
    expect(pushed.map((p) => p.tenant)).toEqual(["t1"]);
    await expect(client.export(create(ExportProfilesServiceRequestSchema), { headers: { "x-scope-orgid": "t1" } })).rejects.toThrow(
      "missing profile metadata dictionary",
    );
  });
});
