// A request body read whole, refused with 413 when it passes the body limit: by its declared
// length before reading, and by what arrived.

import { tooLarge } from "../errors.ts";

export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const len = Number(req.headers.get("content-length") ?? "NaN");
  if (limit > 0 && len > limit) throw tooLarge(`request body too large: ${len} bytes, the limit is ${limit} bytes (ingestion_body_limit_mb)`);
  const buf = new Uint8Array(await req.arrayBuffer());
  if (limit > 0 && buf.length > limit) throw tooLarge(`request body too large: ${buf.length} bytes, the limit is ${limit} bytes (ingestion_body_limit_mb)`);
  return buf;
}
