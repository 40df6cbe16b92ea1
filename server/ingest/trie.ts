// The older agents' binary formats: transporttrie ("trie") and the dictionary-less tree ("tree").

import { ApiError } from "../errors.ts";
import type { IngestLimits } from "./ingest-params.ts";

/** transporttrie: prefix-compressed keys; every node with a value emits (key, value). */
export function parseTrie(bytes: Uint8Array, limits: IngestLimits): Map<string, number> {
  void bytes, limits;
  throw new ApiError("unsupported_media_type", "format \"trie\" is not supported yet");
}

/** tree (no dictionary): pre-order nodes of name, self value and child count. */
export function parseTree(bytes: Uint8Array, limits: IngestLimits): Map<string, number> {
  void bytes, limits;
  throw new ApiError("unsupported_media_type", "format \"tree\" is not supported yet");
}
