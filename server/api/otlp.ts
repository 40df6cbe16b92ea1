// OTLP profiles ingestion: POST /v1development/profiles (OTLP/HTTP, protobuf or JSON) and the
// opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export RPC (Connect,
// gRPC-web and, on the h2c listener, gRPC). Both end in exportProfiles.

import { create, toBinary } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ExportProfilesServiceResponseSchema,
  type ExportProfilesServiceRequest,
  type ExportProfilesServiceResponse,
} from "./gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import type { Distributor } from "../distributor.ts";
import { ApiError, badRequest, errorResponse, errorStatus, toConnectError, tooLarge } from "../errors.ts";
import { maybeGunzip } from "../ingest/gunzip.ts";
import { decodeExportRequest, otlpEncodingOf } from "../ingest/otlp/decode-export-request.ts";
import { otlpToIngestItems } from "../ingest/otlp/otlp-ingest.ts";
import type { Metrics } from "../metrics.ts";
import { tenantOf } from "../tenant.ts";
import { readBody } from "./read-body.ts";

export interface OtlpDeps {
  distributor: Distributor;
  limits: { maxProfileSizeBytes: number; ingestionBodyLimitBytes: number };
  /** A tenant's limits as in force now (overrides file); `limits` when absent. */
  limitsFor?: (tenant: string) => { maxProfileSizeBytes: number; ingestionBodyLimitBytes: number };
  multitenancy: boolean;
  metrics?: Metrics;
}

/** Converts and ingests one request; resolves to the number of profiles handed on. */
export async function exportProfiles(tenant: string, req: ExportProfilesServiceRequest, distributor: Distributor, compressedBytes?: number): Promise<number> {
  const { items } = otlpToIngestItems(req);
  await distributor.ingest(tenant, items, { format: "otel", compressedBytes });
  return items.length;
}

/** The body as protobuf/JSON bytes: gunzipped when it is gzip, and within the profile size limit. */
function uncompressed(body: Uint8Array, contentEncoding: string | null, maxProfileSizeBytes: number): Uint8Array {
  const max = maxProfileSizeBytes;
  const isGzip = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  if (contentEncoding?.toLowerCase() === "gzip" && !isGzip) throw badRequest("Content-Encoding is gzip but the body is not gzip data");
  let raw: Uint8Array;
  try {
    // Neither protobuf (0x1f is an invalid tag) nor JSON can start with the gzip magic, so a
    // gzip body without the header is inflated too.
    raw = maybeGunzip(body, max);
  } catch (e) {
    if (e instanceof ApiError && e.code === "unprocessable") throw badRequest(e.message);
    throw e;
  }
  if (max > 0 && raw.length > max) throw tooLarge(`uncompressed profile payload size exceeds limit of ${max} bytes`);
  return raw;
}

/** POST /v1development/profiles. The answer is an ExportProfilesServiceResponse in protobuf, even for JSON requests. */
export async function handleOtlpHttp(req: Request, deps: OtlpDeps): Promise<Response> {
  let tenant = "unknown";
  const bytes = Number(req.headers.get("content-length") ?? 0) || 0;
  const count = (outcome: string, profiles: number) => {
    deps.metrics?.ingestRequests.inc({ tenant, route: "otlp", outcome });
    deps.metrics?.ingestBytes.inc({ tenant, outcome }, bytes);
    if (profiles) deps.metrics?.ingestProfiles.inc({ tenant, outcome }, profiles);
  };
  try {
    tenant = tenantOf(req.headers, deps.multitenancy);
    const enc = otlpEncodingOf(req.headers.get("content-type"));
    const limits = deps.limitsFor?.(tenant) ?? deps.limits;
    const sent = await readBody(req, limits.ingestionBodyLimitBytes);
    const body = uncompressed(sent, req.headers.get("content-encoding"), limits.maxProfileSizeBytes);
    const n = await exportProfiles(tenant, decodeExportRequest(body, enc), deps.distributor, sent.length);
    count("ok", n);
    return new Response(toBinary(ExportProfilesServiceResponseSchema, create(ExportProfilesServiceResponseSchema)), {
      status: 200,
      headers: { "content-type": "application/x-protobuf" },
    });
  } catch (e) {
    count(String(errorStatus(e)), 0);
    return errorResponse(e);
  }
}

/** The ProfilesService implementation for a Connect router. */
export function otlpProfilesService(deps: OtlpDeps) {
  return {
    async export(req: ExportProfilesServiceRequest, ctx: HandlerContext): Promise<ExportProfilesServiceResponse> {
      let tenant = "unknown";
      try {
        tenant = tenantOf(ctx.requestHeader, deps.multitenancy);
        const n = await exportProfiles(tenant, req, deps.distributor);
        deps.metrics?.ingestRequests.inc({ tenant, route: "otlp-grpc", outcome: "ok" });
        deps.metrics?.ingestProfiles.inc({ tenant, outcome: "ok" }, n);
        return create(ExportProfilesServiceResponseSchema);
      } catch (e) {
        deps.metrics?.ingestRequests.inc({ tenant, route: "otlp-grpc", outcome: String(errorStatus(e)) });
        throw toConnectError(e);
      }
    },
  };
}
