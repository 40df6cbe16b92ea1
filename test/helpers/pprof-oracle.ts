// An independent oracle for tests: reads pprof with the generated protobuf-es code (not our
// hand-written decoder) and collapses one value column to `stack → value`.

import { fromBinary } from "@bufbuild/protobuf";
import { gunzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { ProfileSchema, type Profile } from "../../server/api/gen/google/v1/profile_pb.ts";

export const FIXTURES = new URL("../../../shared/fixtures/", import.meta.url).pathname;

export function readPprof(path: string): Profile {
  let b: Uint8Array = readFileSync(path);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return fromBinary(ProfileSchema, b);
}

export function readProfileBytes(bytes: Uint8Array): Profile {
  return fromBinary(ProfileSchema, bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
}

/** Stacks root→leaf, inlined lines expanded caller first, `;`-joined; zeros dropped; sums merged. */
export function collapse(p: Profile, valueIndex: number): Map<string, number> {
  const fn = new Map(p.function.map((f) => [f.id, p.stringTable[Number(f.name)]]));
  const loc = new Map(p.location.map((l) => [l.id, l]));
  const out = new Map<string, number>();
  for (const s of p.sample) {
    const v = Number(s.value[valueIndex]);
    if (v === 0) continue;
    const frames: string[] = [];
    for (let i = s.locationId.length - 1; i >= 0; i--) {
      const l = loc.get(s.locationId[i])!;
      for (let j = l.line.length - 1; j >= 0; j--) frames.push(fn.get(l.line[j].functionId) ?? "");
    }
    const k = frames.join(";");
    out.set(k, (out.get(k) ?? 0) + v);
  }
  return out;
}

export function sumColumn(p: Profile, valueIndex: number): number {
  let t = 0;
  for (const s of p.sample) t += Number(s.value[valueIndex]);
  return t;
}

export function sortedCollapsed(m: Map<string, number>): string[] {
  return [...m].map(([k, v]) => `${k} ${v}`).sort();
}
