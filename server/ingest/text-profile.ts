// Stacks from the older text and tree formats become a profile of the one model, typed by the
// app name's `.suffix` the way Pyroscope's legacy ingestion types them.

import { badRequest } from "../errors.ts";
import { namesOnlyMapping, type Func, type Location, type Profile } from "../../storage/model/profile.ts";

export interface LegacyType {
  name: string;
  sampleType: string;
  unit: string;
}

const SUFFIXES: Record<string, LegacyType> = {
  cpu: { name: "process_cpu", sampleType: "samples", unit: "count" },
  itimer: { name: "process_cpu", sampleType: "samples", unit: "count" },
  wall: { name: "wall", sampleType: "samples", unit: "count" },
  inuse_objects: { name: "memory", sampleType: "inuse_objects", unit: "count" },
  alloc_objects: { name: "memory", sampleType: "alloc_objects", unit: "count" },
  inuse_space: { name: "memory", sampleType: "inuse_space", unit: "bytes" },
  alloc_space: { name: "memory", sampleType: "alloc_space", unit: "bytes" },
  goroutines: { name: "goroutine", sampleType: "goroutines", unit: "count" },
  mutex_count: { name: "mutex", sampleType: "contentions", unit: "count" },
  mutex_duration: { name: "mutex", sampleType: "delay", unit: "nanoseconds" },
  block_count: { name: "block", sampleType: "contentions", unit: "count" },
  block_duration: { name: "block", sampleType: "delay", unit: "nanoseconds" },
  lock_count: { name: "block", sampleType: "contentions", unit: "count" },
  lock_duration: { name: "block", sampleType: "delay", unit: "nanoseconds" },
  alloc_in_new_tlab_objects: { name: "memory", sampleType: "alloc_in_new_tlab_objects", unit: "count" },
  alloc_in_new_tlab_bytes: { name: "memory", sampleType: "alloc_in_new_tlab_bytes", unit: "bytes" },
  alloc_outside_tlab_objects: { name: "memory", sampleType: "alloc_outside_tlab_objects", unit: "count" },
  alloc_outside_tlab_bytes: { name: "memory", sampleType: "alloc_outside_tlab_bytes", unit: "bytes" },
  live: { name: "memory", sampleType: "live", unit: "count" },
  exceptions: { name: "exceptions", sampleType: "samples", unit: "count" },
  seconds: { name: "wall", sampleType: "samples", unit: "count" },
  nanoseconds: { name: "wall", sampleType: "samples", unit: "count" },
  microseconds: { name: "wall", sampleType: "samples", unit: "count" },
  milliseconds: { name: "wall", sampleType: "samples", unit: "count" },
  bytes: { name: "memory", sampleType: "samples", unit: "bytes" },
};

/** Splits `app.suffix` into the app (service) name and its legacy profile type; no dot means cpu. */
export function legacyType(appName: string): { app: string; type: LegacyType } {
  const dot = appName.lastIndexOf(".");
  const suffix = dot < 0 ? "cpu" : appName.slice(dot + 1);
  const app = dot < 0 ? appName : appName.slice(0, dot);
  // hasOwn: a suffix like `constructor` must not find Object.prototype's.
  const type = Object.hasOwn(SUFFIXES, suffix) ? SUFFIXES[suffix] : undefined;
  if (!type) throw badRequest(`unknown profile type: ${suffix} (the part of the app name after the last '.' names the profile type, e.g. myapp.cpu, myapp.alloc_space)`);
  return { app, type };
}

/**
 * Builds a profile from `stack → value` (frames root first). With a non-zero sample rate, cpu and
 * wall values become nanoseconds (value × 1e9/sampleRate), as Pyroscope converts them.
 */
export function profileFromStacks(stacks: Map<string[], number> | Iterable<[string[], number]>, t: LegacyType, sampleRate: number, timeMs: number): Profile {
  let sampleType = t.sampleType;
  let unit = t.unit;
  let periodType: Profile["periodType"] = null;
  let period = 0;
  let mul = 1;
  if (sampleRate !== 0 && (t.name === "process_cpu" || t.name === "wall")) {
    period = Math.floor(1e9 / sampleRate);
    periodType = { type: "cpu", unit: "nanoseconds" };
    sampleType = t.name === "wall" ? "wall" : "cpu";
    unit = "nanoseconds";
    mul = period;
  }
  const functions: Func[] = [];
  const locations: Location[] = [];
  const ids = new Map<string, number>();
  const locStart: number[] = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (const [frames, v] of stacks) {
    if (v === 0 || frames.length === 0) continue;
    for (let i = frames.length - 1; i >= 0; i--) {
      const name = frames[i];
      let id = ids.get(name);
      if (id === undefined) {
        id = functions.length;
        functions.push({ name, systemName: name, filename: "", startLine: 0 });
        locations.push({ mapping: 0, address: 0n, lines: [{ fn: id, line: 0 }], isFolded: false });
        ids.set(name, id);
      }
      locs.push(id);
    }
    locStart.push(locs.length);
    values.push(v * mul);
  }
  return {
    sampleTypes: [{ type: sampleType, unit }],
    periodType,
    period,
    timeNanos: BigInt(timeMs) * 1000000n,
    durationNanos: 0,
    defaultSampleType: "",
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [namesOnlyMapping()],
    functions,
    locations,
    samples: { count: values.length, locStart: Uint32Array.from(locStart), locs: Uint32Array.from(locs), values: Float64Array.from(values), labels: null },
  };
}
