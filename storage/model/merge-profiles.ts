// Concatenates profiles of one sample type into one (symbols appended, not deduplicated): the merge
// of SelectMergeProfile answers from several stores. Consumers sum identical stacks.

import type { Profile } from "./profile.ts";

export function mergeProfiles(parts: Profile[]): Profile {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  let nSamples = 0;
  let nLocs = 0;
  for (const p of parts) {
    nSamples += p.samples.count;
    nLocs += p.samples.locs.length;
  }
  const locStart = new Uint32Array(nSamples + 1);
  const locs = new Uint32Array(nLocs);
  const values = new Float64Array(nSamples);
  const out: Profile = { ...first, mappings: [], functions: [], locations: [], samples: { count: nSamples, locStart, locs, values, labels: null } };
  let si = 0;
  let li = 0;
  for (const p of parts) {
    const mapOff = out.mappings.length;
    const fnOff = out.functions.length;
    const locOff = out.locations.length;
    out.mappings.push(...p.mappings);
    out.functions.push(...p.functions);
    for (const l of p.locations)
      out.locations.push({ ...l, mapping: l.mapping >= 0 ? l.mapping + mapOff : -1, lines: l.lines.map((x) => ({ fn: x.fn + fnOff, line: x.line })) });
    const s = p.samples;
    for (let i = 0; i < s.count; i++) {
      for (let j = s.locStart[i]; j < s.locStart[i + 1]; j++) locs[li++] = s.locs[j] + locOff;
      values[si] = s.values[i];
      locStart[++si] = li;
    }
  }
  return out;
}
