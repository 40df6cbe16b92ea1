// The parts of Pyroscope's Profile.Normalize our pipeline does not already do. Merging equal
// stacks and dropping zero sums happen in Head.append, and a zero time_nanos is set where the
// profile is decoded, so this drops numeric sample labels, samples with a negative value or only
// zeros, and locations with neither lines nor address (with every sample that uses one), then
// clears addresses of symbolized mappings, as Pyroscope's distributor does before storing.

import type { Location, Mapping, Profile, SampleLabel } from "../../../storage/model/profile.ts";

/** The normalized profile, or `p` itself when it already is. `p` is not modified. */
export function normalizeProfile(p: Profile): Profile {
  const s = p.samples;
  const k = p.sampleTypes.length;
  const emptyLoc = new Uint8Array(p.locations.length);
  let anyEmptyLoc = false;
  for (let i = 0; i < p.locations.length; i++) {
    const l = p.locations[i];
    if (l.lines.length === 0 && l.address === 0n) {
      emptyLoc[i] = 1;
      anyEmptyLoc = true;
    }
  }
  const keep = new Uint8Array(s.count);
  let kept = 0;
  for (let i = 0; i < s.count; i++) {
    if (!keepSample(s.values, i * k, k)) continue;
    if (anyEmptyLoc && usesEmpty(s.locs, s.locStart[i], s.locStart[i + 1], emptyLoc)) continue;
    keep[i] = 1;
    kept++;
  }
  const labels = s.labels && s.labels.some((ls) => ls.some((l) => l.str === "")) ? stringLabelsOnly(s.labels) : s.labels;
  const clear = needsAddressClearing(p);
  if (kept === s.count && labels === s.labels && !anyEmptyLoc && !clear) return p;

  let out: Profile = labels === s.labels ? p : { ...p, samples: { ...s, labels } };
  if (kept !== s.count || anyEmptyLoc) out = keepSamplesAndTheirLocations(out, keep, kept);
  if (clear) out = clearAddresses(out);
  return out;
}

/** Pyroscope drops a sample with any negative value, and one whose values are all zero. */
function keepSample(values: Float64Array, at: number, k: number): boolean {
  let positive = false;
  for (let t = at; t < at + k; t++) {
    const v = values[t];
    if (v < 0) return false;
    if (v > 0) positive = true;
  }
  return positive;
}

function usesEmpty(locs: Uint32Array, a: number, b: number, emptyLoc: Uint8Array): boolean {
  for (let j = a; j < b; j++) if (emptyLoc[locs[j]] === 1) return true;
  return false;
}

const NO_LABELS: SampleLabel[] = Object.freeze([]) as unknown as SampleLabel[];

// Numeric labels (no string value) are not supported by Pyroscope's storage. null when none is left.
function stringLabelsOnly(all: SampleLabel[][]): SampleLabel[][] | null {
  const out = all.map(stringLabels);
  return out.some((ls) => ls.length > 0) ? out : null;
}

function stringLabels(ls: SampleLabel[]): SampleLabel[] {
  if (!ls.some((l) => l.str === "")) return ls;
  const out = ls.filter((l) => l.str !== "");
  return out.length ? out : NO_LABELS;
}

/** The kept samples, with locations renumbered to those they still reference. */
function keepSamplesAndTheirLocations(p: Profile, keep: Uint8Array, kept: number): Profile {
  const s = p.samples;
  const k = p.sampleTypes.length;
  const newLoc = new Int32Array(p.locations.length).fill(-1);
  const locations: Location[] = [];
  let nLocs = 0;
  for (let i = 0; i < s.count; i++) if (keep[i]) nLocs += s.locStart[i + 1] - s.locStart[i];
  const locStart = new Uint32Array(kept + 1);
  const locs = new Uint32Array(nLocs);
  const values = new Float64Array(kept * k);
  const labels: SampleLabel[][] | null = s.labels ? [] : null;
  let n = 0;
  let o = 0;
  for (let i = 0; i < s.count; i++) {
    if (!keep[i]) continue;
    for (let j = s.locStart[i]; j < s.locStart[i + 1]; j++) {
      const old = s.locs[j];
      let l = newLoc[old];
      if (l < 0) {
        l = newLoc[old] = locations.length;
        locations.push(p.locations[old]);
      }
      locs[o++] = l;
    }
    for (let t = 0; t < k; t++) values[n * k + t] = s.values[i * k + t];
    if (labels) labels.push(s.labels![i]);
    locStart[++n] = o;
  }
  return { ...p, locations, samples: { count: kept, locStart, locs, values, labels } };
}

function needsAddressClearing(p: Profile): boolean {
  for (const m of p.mappings) if (m.hasFunctions && (m.memoryStart !== 0n || m.memoryLimit !== 0n || m.fileOffset !== 0n)) return true;
  for (const l of p.locations) if (l.address !== 0n && l.mapping >= 0 && p.mappings[l.mapping].hasFunctions) return true;
  return false;
}

/**
 * Symbolized mappings lose their address range and their locations their addresses, so the
 * same frame at two addresses becomes one location (Pyroscope's clearAddresses).
 */
function clearAddresses(p: Profile): Profile {
  const mappings: Mapping[] = p.mappings.map((m) => (m.hasFunctions ? { ...m, memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n } : m));
  const locations: Location[] = p.locations.map((l) =>
    l.address !== 0n && l.mapping >= 0 && p.mappings[l.mapping].hasFunctions ? { ...l, address: 0n } : l,
  );
  return { ...p, mappings, locations };
}
