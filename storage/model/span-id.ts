// Span ids: the per-sample link from a profile to a trace span. Clients send them as a pprof
// sample label (`span_id`, or the older `profile_id`), 16 hex digits; they are stored as the
// unsigned 64-bit number those digits spell, 0 meaning "no span".

import type { Profile } from "./profile.ts";

/** Sample label keys that carry a span id (`profile_id` is what older SDKs and JFR send). */
export const SPAN_ID_LABELS = new Set(["span_id", "profile_id"]);

const HEX16 = /^[0-9a-fA-F]{16}$/;

/** The span id `s` spells (16 hex digits), or 0n when it is not one, as Pyroscope ignores those. */
export function parseSpanId(s: string): bigint {
  return s.length === 16 && HEX16.test(s) ? BigInt("0x" + s) : 0n;
}

/**
 * The span id of each sample of `p` (0n where a sample has none), or null when no sample has one:
 * most profiles carry no spans and then cost nothing more.
 */
export function sampleSpanIds(p: Profile): BigUint64Array | null {
  const labels = p.samples.labels;
  if (!labels) return null;
  let out: BigUint64Array | null = null;
  for (let i = 0; i < p.samples.count; i++) {
    const ls = labels[i];
    if (!ls) continue;
    for (const l of ls) {
      if (!SPAN_ID_LABELS.has(l.key)) continue;
      const id = parseSpanId(l.str);
      if (id === 0n) continue;
      out ??= new BigUint64Array(p.samples.count);
      out[i] = id;
      break;
    }
  }
  return out;
}
