// JFR uploads (async-profiler, Pyroscope's Java agent) → profiles per event type and label set.

import { ApiError } from "../../errors.ts";
import type { IngestItem } from "../../ingester.ts";
import type { IngestParams } from "../ingest-params.ts";

/**
 * One JFR recording (uncompressed) and its optional LabelsSnapshot (uncompressed protobuf) as
 * series of the one profile model, labelled the way Pyroscope labels them.
 */
export function jfrToIngestItems(jfr: Uint8Array, labels: Uint8Array | null, params: IngestParams): IngestItem[] {
  void jfr, labels, params;
  throw new ApiError("unsupported_media_type", "format \"jfr\" is not supported yet");
}
