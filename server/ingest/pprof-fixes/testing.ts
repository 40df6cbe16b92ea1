// Test support for the pprof fix-ups (imported by *.test.ts only): fixture loading and a tiny
// profile builder in the spirit of Pyroscope's testhelper.ProfileBuilder.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import type { Profile, ValueType } from "../../../storage/model/profile.ts";
import { decodePprof } from "../pprof-decoder.ts";

export const SHARED_PPROF = new URL("../../../../shared/fixtures/pprof/", import.meta.url).pathname;
export const FIXES = new URL("../../../test/fixtures/pprof-fixes/", import.meta.url).pathname;

/** Raw bytes of a fixture, inflated when gzip (sniffed). */
export function fixtureBytes(path: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(path));
  return raw[0] === 0x1f && raw[1] === 0x8b ? new Uint8Array(gunzipSync(raw)) : raw;
}

export function loadProfile(path: string): Profile {
  return decodePprof(fixtureBytes(path));
}

/**
 * A profile with one sample per entry: frames leaf first, one location and function per distinct
 * frame name (as Pyroscope's builder makes them), values in `types` order.
 */
export function buildProfile(types: ValueType[], samples: [frames: string[], values: number[]][], periodType: ValueType | null = null): Profile {
  const fnOf = new Map<string, number>();
  const functions: Profile["functions"] = [];
  const locations: Profile["locations"] = [];
  const locStart = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (const [frames, vs] of samples) {
    if (vs.length !== types.length) throw new Error("buildProfile: value count does not match the sample types");
    for (const name of frames) {
      let i = fnOf.get(name);
      if (i === undefined) {
        i = functions.length;
        fnOf.set(name, i);
        functions.push({ name, systemName: name, filename: "", startLine: 0 });
        locations.push({ mapping: -1, address: 0n, lines: [{ fn: i, line: 0 }], isFolded: false });
      }
      locs.push(i);
    }
    locStart.push(locs.length);
    values.push(...vs);
  }
  return {
    sampleTypes: types,
    periodType,
    period: 0,
    timeNanos: 1n,
    durationNanos: 0,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions,
    locations,
    samples: {
      count: samples.length,
      locStart: Uint32Array.from(locStart),
      locs: Uint32Array.from(locs),
      values: Float64Array.from(values),
      labels: null,
    },
  };
}

/** Frame names of sample i, leaf first (every line of every location). */
export function sampleFrames(p: Profile, i: number): string[] {
  const out: string[] = [];
  for (let j = p.samples.locStart[i]; j < p.samples.locStart[i + 1]; j++) {
    for (const l of p.locations[p.samples.locs[j]].lines) out.push(p.functions[l.fn].name);
  }
  return out;
}

/** Sum of one value column. */
export function columnSum(p: Profile, c: number): number {
  const k = p.sampleTypes.length;
  let t = 0;
  for (let i = 0; i < p.samples.count; i++) t += p.samples.values[i * k + c];
  return t;
}
