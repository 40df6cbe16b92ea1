// How many bytes a profile counts for against the size and rate limits when its pprof bytes are
// not at hand (text, JFR, speedscope uploads): the size its pprof encoding would have, estimated
// in one pass, as Pyroscope measures its generated pprof (SizeVT).

import type { Labels } from "../../storage/model/labels.ts";
import type { Profile } from "../../storage/model/profile.ts";

/** Bytes of a protobuf varint holding v (v >= 0; negative int64 take 10). */
export function varintSize(v: number): number {
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (v = Math.floor(v / 0x800000000); v >= 1; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** A length-delimited field: tag, length, body. */
const field = (body: number) => 1 + varintSize(body) + body;

/** Pyroscope counts a series' labels as the bytes of their names and values. */
export function labelsSize(ls: Labels): number {
  let n = 0;
  for (const l of ls) n += l.name.length + l.value.length;
  return n;
}

/** The size of `p` encoded as pprof, within a few percent for real profiles. */
export function estimateProfileSize(p: Profile): number {
  const strings = new Set<string>([""]);
  const add = (s: string) => void strings.add(s);
  for (const t of p.sampleTypes) add(t.type), add(t.unit);
  if (p.periodType) add(p.periodType.type), add(p.periodType.unit);
  for (const f of p.functions) add(f.name), add(f.systemName), add(f.filename);
  for (const m of p.mappings) add(m.filename), add(m.buildId);
  for (const c of p.comments) add(c);
  const s = p.samples;
  if (s.labels) for (const ls of s.labels) for (const l of ls ?? []) add(l.key), add(l.str), add(l.numUnit);
  let size = 0;
  for (const str of strings) size += field(str.length);
  const idx = 1 + varintSize(strings.size); // a string-index field, at its widest

  size += (p.sampleTypes.length + (p.periodType ? 1 : 0)) * field(2 * idx);
  size += 1 + varintSize(p.period) + 1 + varintSize(Number(p.timeNanos)) + 1 + varintSize(p.durationNanos);

  const k = p.sampleTypes.length;
  for (let i = 0; i < s.count; i++) {
    let locBytes = 0;
    for (let j = s.locStart[i]!; j < s.locStart[i + 1]!; j++) locBytes += varintSize(s.locs[j]! + 1);
    let valBytes = 0;
    for (let j = i * k; j < i * k + k; j++) valBytes += varintSize(s.values[j]!);
    let body = (locBytes ? field(locBytes) : 0) + field(valBytes);
    for (const l of s.labels?.[i] ?? []) body += field(idx + (l.str ? idx : 1 + varintSize(l.num)) + (l.numUnit ? idx : 0));
    size += field(body);
  }
  for (let i = 0; i < p.locations.length; i++) {
    const loc = p.locations[i]!;
    let body = 1 + varintSize(i + 1);
    if (loc.mapping >= 0) body += 1 + varintSize(loc.mapping + 1);
    if (loc.address) body += 1 + varintSize(Number(loc.address));
    for (const ln of loc.lines) body += field(1 + varintSize(ln.fn + 1) + (ln.line ? 1 + varintSize(ln.line) : 0));
    if (loc.isFolded) body += 2;
    size += field(body);
  }
  for (let i = 0; i < p.functions.length; i++) {
    const f = p.functions[i]!;
    size += field(1 + varintSize(i + 1) + 3 * idx + (f.startLine ? 1 + varintSize(f.startLine) : 0));
  }
  for (let i = 0; i < p.mappings.length; i++) {
    const m = p.mappings[i]!;
    const body =
      1 + varintSize(i + 1) + 1 + varintSize(Number(m.memoryStart)) + 1 + varintSize(Number(m.memoryLimit)) +
      1 + varintSize(Number(m.fileOffset)) + 2 * idx + 8;
    size += field(body);
  }
  return size;
}
