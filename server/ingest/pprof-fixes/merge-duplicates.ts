// What Pyroscope's ProfileMerge does to a single profile (used after renaming functions): drop
// locations with neither lines nor address (and the samples that use them), then merge equal
// mappings, functions, locations and samples, keeping first-seen order and summing sample values.

import type { Func, Location, Mapping, Profile, SampleLabel } from "../../../storage/model/profile.ts";
import { firstSlot, sameRange, tableMask } from "./hash-table.ts";

/** A new profile with duplicate symbols and samples merged; `p` is not modified. */
export function mergeDuplicateSymbols(p: Profile): Profile {
  const mapOf = mergeMappings(p.mappings);
  const fnOf = mergeFunctions(p.functions);
  const { locations, locOf } = mergeLocations(p.locations, mapOf.index, fnOf.index);
  const samples = mergeSamples(p, locOf);
  return { ...p, mappings: mapOf.values, functions: fnOf.values, locations, samples };
}

interface Merged<T> {
  values: T[];
  /** old index → new index */
  index: Int32Array;
}

// Pyroscope's mapping key: size rounded up to 4 KiB, file offset, and build id or else file name.
function mergeMappings(ms: Mapping[]): Merged<Mapping> {
  const index = new Int32Array(ms.length);
  const values: Mapping[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i];
    const size = BigInt.asUintN(64, m.memoryLimit - m.memoryStart + 0xfffn) & ~0xfffn;
    const key = `${size}|${m.fileOffset}|${m.buildId !== "" ? m.buildId : m.filename}`;
    let n = seen.get(key);
    if (n === undefined) {
      n = values.length;
      values.push(m);
      seen.set(key, n);
    }
    index[i] = n;
  }
  return { values, index };
}

function mergeFunctions(fns: Func[]): Merged<Func> {
  const index = new Int32Array(fns.length);
  const values: Func[] = [];
  // Keyed by name, then compared field by field: no key strings are built.
  const byName = new Map<string, number | number[]>();
  for (let i = 0; i < fns.length; i++) {
    const f = fns[i];
    const same = byName.get(f.name);
    let n = -1;
    if (same !== undefined) {
      if (typeof same === "number") {
        if (sameFunc(values[same], f)) n = same;
      } else {
        for (let j = 0; j < same.length && n < 0; j++) if (sameFunc(values[same[j]], f)) n = same[j];
      }
    }
    if (n < 0) {
      n = values.length;
      values.push(f);
      if (same === undefined) byName.set(f.name, n);
      else if (typeof same === "number") byName.set(f.name, [same, n]);
      else same.push(n);
    }
    index[i] = n;
  }
  return { values, index };
}

function sameFunc(a: Func, b: Func): boolean {
  return a.systemName === b.systemName && a.filename === b.filename && a.startLine === b.startLine;
}

/** Merged locations; locOf[i] is -1 for a location that sanitising removes. */
function mergeLocations(locs: Location[], mapOf: Int32Array, fnOf: Int32Array): { locations: Location[]; locOf: Int32Array } {
  const locOf = new Int32Array(locs.length);
  const locations: Location[] = [];
  const byHash = new Map<number, number | number[]>();
  for (let i = 0; i < locs.length; i++) {
    const l = locs[i];
    if (l.lines.length === 0 && l.address === 0n) {
      locOf[i] = -1;
      continue;
    }
    const mapping = l.mapping >= 0 ? mapOf[l.mapping] : -1;
    let changed = mapping !== l.mapping;
    const addr = l.address === 0n ? 0 : Number(l.address); // only hashed; compared exactly below
    let h = Math.imul(mapping + 0x9e3779b1, 0x85ebca6b) ^ (addr | 0) ^ Math.imul((addr / 4294967296) | 0, 0xc2b2ae35);
    for (let j = 0; j < l.lines.length; j++) {
      const fn = fnOf[l.lines[j].fn];
      if (fn !== l.lines[j].fn) changed = true;
      h = Math.imul(h ^ fn, 0x01000193) ^ Math.imul(l.lines[j].line, 0x27d4eb2d);
    }
    const cand: Location = changed
      ? { mapping, address: l.address, lines: l.lines.map((x) => ({ fn: fnOf[x.fn], line: x.line })), isFolded: l.isFolded }
      : l;
    const same = byHash.get(h);
    let n = -1;
    if (same !== undefined) {
      if (typeof same === "number") {
        if (sameLocation(locations[same], cand)) n = same;
      } else {
        for (let j = 0; j < same.length && n < 0; j++) if (sameLocation(locations[same[j]], cand)) n = same[j];
      }
    }
    if (n < 0) {
      n = locations.length;
      locations.push(cand);
      if (same === undefined) byHash.set(h, n);
      else if (typeof same === "number") byHash.set(h, [same, n]);
      else same.push(n);
    }
    locOf[i] = n;
  }
  return { locations, locOf };
}

// Pyroscope's location key ignores is_folded.
function sameLocation(a: Location, b: Location): boolean {
  if (a.mapping !== b.mapping || a.address !== b.address || a.lines.length !== b.lines.length) return false;
  for (let j = 0; j < a.lines.length; j++) if (a.lines[j].fn !== b.lines[j].fn || a.lines[j].line !== b.lines[j].line) return false;
  return true;
}

/** Samples keyed by (locations, string labels by key and value); the first one's labels are kept. */
function mergeSamples(p: Profile, locOf: Int32Array): Profile["samples"] {
  const s = p.samples;
  const k = p.sampleTypes.length;
  const { locStart } = s;
  const src = s.locs;
  const locs = new Uint32Array(src.length);
  const outStart = new Uint32Array(s.count + 1);
  const values = new Float64Array(s.count * k);
  const labels: SampleLabel[][] | null = s.labels ? [] : null;
  const labelKeys: string[] | null = s.labels ? [] : null;
  // Open addressing: slot → kept sample + 1 (0 = empty). A Map is several times slower here.
  const mask = tableMask(s.count);
  const table = new Int32Array(mask + 1);
  const hashes = new Int32Array(s.count);
  let n = 0;
  let o = 0;
  for (let i = 0; i < s.count; i++) {
    const a = locStart[i];
    const len = locStart[i + 1] - a;
    let h = 0x811c9dc5 ^ len;
    let ok = true;
    for (let j = 0; j < len; j++) {
      const l = locOf[src[a + j]];
      if (l < 0) {
        ok = false; // references a removed location: the sample goes too
        break;
      }
      locs[o + j] = l;
      h = Math.imul(h ^ l, 0x01000193);
    }
    if (!ok) continue;
    let lk = "";
    if (labelKeys !== null) {
      lk = labelKey(s.labels![i]);
      if (lk !== "") h = Math.imul(h ^ stringHash(lk), 0x5bd1e995);
    }
    let slot = firstSlot(h, mask);
    let m = -1;
    for (let e = table[slot]; e !== 0; e = table[(slot = (slot + 1) & mask)]) {
      const c = e - 1;
      if (hashes[c] === h && outStart[c + 1] - outStart[c] === len && (labelKeys === null || labelKeys[c] === lk) && sameRange(locs, outStart[c], o, len)) {
        m = c;
        break;
      }
    }
    if (m >= 0) {
      for (let t = 0; t < k; t++) values[m * k + t] += s.values[i * k + t];
      continue;
    }
    m = n++;
    o += len;
    outStart[n] = o;
    for (let t = 0; t < k; t++) values[m * k + t] = s.values[i * k + t];
    if (labels !== null) {
      labels.push(s.labels![i]);
      labelKeys!.push(lk);
    }
    hashes[m] = h;
    table[slot] = m + 1;
  }
  return {
    count: n,
    locStart: n === s.count ? outStart : outStart.slice(0, n + 1),
    locs: o === locs.length ? locs : locs.slice(0, o),
    values: n === s.count ? values : values.slice(0, n * k),
    labels,
  };
}

// Sample labels compare by key and string value only, in sorted order (Pyroscope's hashLabels).
function labelKey(ls: SampleLabel[]): string {
  if (ls.length === 0) return "";
  const parts: string[] = [];
  for (const l of ls) parts.push(l.key + "\xff" + l.str);
  return parts.sort().join("\xfe");
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
