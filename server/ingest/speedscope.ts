// speedscope JSON (sampled and evented profiles) → profiles, as Pyroscope converts it.

import { ApiError } from "../errors.ts";
import type { IngestItem } from "../ingester.ts";
import type { IngestParams } from "./ingest-params.ts";

export function speedscopeToIngestItems(body: Uint8Array, params: IngestParams): IngestItem[] {
  void body, params;
  throw new ApiError("unsupported_media_type", "format \"speedscope\" is not supported yet");
}
