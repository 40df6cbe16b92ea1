// maybeGunzip: inflate a request body when it is gzip, refusing gzip bombs without inflating
// them whole.

import { kMaxLength } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { tooLarge, unprocessable } from "../errors.ts";

/**
 * `bytes` inflated when they start with the gzip magic (1f 8b), else `bytes` itself.
 * Throws tooLarge when the output would pass `maxBytes` (0 or less: no limit, as the limits'
 * "0 = off"), unprocessable when the gzip is corrupt.
 */
export function maybeGunzip(bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  if (maxBytes <= 0) maxBytes = kMaxLength;
  // node:zlib stops at maxOutputLength, so a bomb costs at most maxBytes of memory and time.
  // Bun.gunzipSync is ~10% faster but has no limit, and it reads only the first gzip member.
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes, { maxOutputLength: Math.min(Math.max(1, maxBytes), kMaxLength) });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === "ERR_BUFFER_TOO_LARGE") throw exceeds(maxBytes);
    throw unprocessable(`invalid gzip data: ${e.message ?? String(err)}`);
  }
  if (out.length > maxBytes) throw exceeds(maxBytes); // only when maxBytes < 1
  // A plain Uint8Array, not a Buffer: hot decoders that see both shapes deoptimise.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function exceeds(maxBytes: number) {
  return tooLarge(`uncompressed profile payload size exceeds limit of ${maxBytes} bytes`);
}
