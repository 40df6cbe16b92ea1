// OTLP/HTTP request bodies: protobuf or protojson ExportProfilesServiceRequest, picked by the exact
// Content-Type as Pyroscope's handler does.

import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  ExportProfilesServiceRequestSchema,
  type ExportProfilesServiceRequest,
} from "../../api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { ApiError, badRequest } from "../../errors.ts";
import { dropMismatchedWireTypes } from "./drop-mismatched-wire-types.ts";
import { OTLP_PROFILES_SCHEMA } from "./otlp-ingest.ts";

export type OtlpEncoding = "json" | "protobuf";

const ACCEPTED: Record<string, OtlpEncoding> = {
  "application/json": "json",
  "application/x-protobuf": "protobuf",
  "application/protobuf": "protobuf",
};

/** The body encoding named by Content-Type; anything but the three accepted types is a 415. */
export function otlpEncodingOf(contentType: string | null): OtlpEncoding {
  const enc = contentType === null ? undefined : ACCEPTED[contentType];
  if (!enc)
    throw new ApiError(
      "unsupported_media_type",
      `Unsupported Content-Type: ${JSON.stringify(contentType ?? "")}; OTLP profiles are accepted as ${Object.keys(ACCEPTED).join(", ")}`,
    );
  return enc;
}

function parseError(e: unknown, enc: OtlpEncoding) {
  const what = enc === "json" ? "JSON" : "protobuf";
  return badRequest(
    `Failed to parse ${what} request: ${e instanceof Error ? e.message : String(e)}; ` +
      `check the OTLP profiles schema version (Hearth reads ExportProfilesServiceRequest of ${OTLP_PROFILES_SCHEMA}, profiles v1development)`,
  );
}

export function decodeExportRequest(body: Uint8Array, enc: OtlpEncoding): ExportProfilesServiceRequest {
  if (enc === "json") {
    try {
      // protojson, like Go's protojson.Unmarshal, refuses unknown fields.
      return fromJsonString(ExportProfilesServiceRequestSchema, new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch (e) {
      throw parseError(e, enc);
    }
  }
  try {
    return fromBinary(ExportProfilesServiceRequestSchema, body);
  } catch (e) {
    // Decode the way Go (and so Pyroscope) does: fields with a foreign wire type are skipped.
    let cleaned;
    try {
      cleaned = dropMismatchedWireTypes(body, ExportProfilesServiceRequestSchema);
    } catch {
      throw parseError(e, enc);
    }
    if (cleaned.dropped === 0) throw parseError(e, enc);
    try {
      return fromBinary(ExportProfilesServiceRequestSchema, cleaned.bytes);
    } catch (e2) {
      throw parseError(e2, enc);
    }
  }
}
