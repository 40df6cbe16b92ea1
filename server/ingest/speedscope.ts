// speedscope JSON (sampled and evented profiles) → profiles, as Pyroscope converts it
// (pkg/og/convert/speedscope): one series per profile, labelled profile_name, typed by the unit.

import { ApiError, unprocessable } from "../errors.ts";
import type { IngestItem } from "../ingester.ts";
import { DEFAULT_SAMPLE_RATE, textSeriesLabels, type IngestParams } from "./ingest-params.ts";
import { legacyType, profileFromStacks } from "./text-profile.ts";

const SCHEMA = "https://www.speedscope.app/file-format-schema.json";

/** Time values are scaled by this before truncation to integers (Pyroscope's timePrecisionMultiplier). */
const TIME_PRECISION = 100;

interface UnitRule {
  /** Used when the request's sampleRate is the default 100. */
  defaultRate: number;
  multiplier: number;
}

// Pyroscope's defaults are TIME_PRECISION × ticks per second, so that period × multiplier is one
// unit in nanoseconds. For nanoseconds that would need a 0.01 ns period (and Pyroscope's uint32
// overflows to 1215752192, zeroing every value); we keep nanoseconds as they are instead: rate
// 1e9 (period 1 ns) without the precision multiplier.
const UNITS: Record<string, UnitRule> = {
  none: { defaultRate: TIME_PRECISION * 100, multiplier: TIME_PRECISION },
  nanoseconds: { defaultRate: 1e9, multiplier: TIME_PRECISION },
  microseconds: { defaultRate: TIME_PRECISION * 1e6, multiplier: TIME_PRECISION },
  milliseconds: { defaultRate: TIME_PRECISION * 1e3, multiplier: TIME_PRECISION },
  seconds: { defaultRate: TIME_PRECISION, multiplier: TIME_PRECISION },
  bytes: { defaultRate: 0, multiplier: 1 },
};

interface SpeedscopeEvent {
  type: string;
  at: number;
  frame: number;
}

interface SpeedscopeProfile {
  type: string;
  name: string;
  unit: string;
  startValue: number;
  events: SpeedscopeEvent[];
  samples: number[][];
  weights: number[];
}

type Obj = Record<string, unknown>;

const fail = (msg: string) => unprocessable(`speedscope: ${msg}`);

/** A field as Go's encoding/json finds it: the exact key, else a case-insensitive match. */
function field(o: Obj, key: string): unknown {
  if (key in o) return o[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

function str(o: Obj, key: string, where: string): string {
  const v = field(o, key);
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw fail(`${where}.${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function num(o: Obj, key: string, where: string): number {
  const v = field(o, key);
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number") throw fail(`${where}.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function arr(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw fail(`${where} must be an array`);
  return v;
}

function obj(v: unknown, where: string): Obj {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw fail(`${where} must be an object`);
  return v as Obj;
}

function numbers(v: unknown, where: string): number[] {
  return arr(v, where).map((x, i) => {
    if (x === null) return 0;
    if (typeof x !== "number") throw fail(`${where}[${i}] must be a number, got ${JSON.stringify(x)}`);
    return x;
  });
}

function readFile(body: Uint8Array): { frames: string[]; profiles: SpeedscopeProfile[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(body));
  } catch (e) {
    throw fail(`invalid JSON: ${e instanceof Error ? e.message : e}`);
  }
  const file = obj(doc, "the document");
  const schema = str(file, "$schema", "file");
  if (schema !== SCHEMA) throw fail(`unknown schema ${JSON.stringify(schema)}: a speedscope file has "$schema": "${SCHEMA}"`);
  const shared = obj(field(file, "shared"), "shared");
  const frames = arr(field(shared, "frames"), "shared.frames").map((f, i) => str(obj(f, `shared.frames[${i}]`), "name", `shared.frames[${i}]`));
  const profiles = arr(field(file, "profiles"), "profiles").map((raw, i): SpeedscopeProfile => {
    const where = `profiles[${i}]`;
    const p = obj(raw, where);
    return {
      type: str(p, "type", where),
      name: str(p, "name", where),
      unit: str(p, "unit", where),
      startValue: num(p, "startValue", where),
      events: arr(field(p, "events"), `${where}.events`).map((e, j) => {
        const ew = `${where}.events[${j}]`;
        const eo = obj(e, ew);
        return { type: str(eo, "type", ew), at: num(eo, "at", ew), frame: num(eo, "frame", ew) };
      }),
      samples: arr(field(p, "samples"), `${where}.samples`).map((s, j) => numbers(s, `${where}.samples[${j}]`)),
      weights: numbers(field(p, "weights"), `${where}.weights`),
    };
  });
  return { frames, profiles };
}

/**
 * Profiles with equal (name, type, unit, startValue) become one, then all are ordered by
 * startValue: Pyroscope does this so that they do not collapse into one series at one timestamp.
 */
function mergeProfiles(profiles: SpeedscopeProfile[]): SpeedscopeProfile[] {
  const byKey = new Map<string, SpeedscopeProfile>();
  for (const p of profiles) {
    const key = JSON.stringify([p.name, p.type, p.unit, p.startValue]);
    const have = byKey.get(key);
    if (!have) {
      byKey.set(key, { ...p, events: [...p.events], samples: [...p.samples], weights: [...p.weights] });
      continue;
    }
    have.events.push(...p.events);
    have.samples.push(...p.samples);
    have.weights.push(...p.weights);
  }
  return [...byKey.values()].sort((a, b) => a.startValue - b.startValue);
}

/** Stacks (root first) → value, merged the way Pyroscope's tree merges them. */
class StackSums {
  readonly sums = new Map<string, [string[], number]>();
  add(frames: string[], v: number) {
    const key = frames.join("\0");
    const have = this.sums.get(key);
    if (have) have[1] += v;
    else this.sums.set(key, [frames.slice(), v]);
  }
}

function frameName(frames: string[], f: number, where: string): string {
  const i = Math.trunc(f);
  if (!(i >= 0 && i < frames.length)) throw fail(`${where}: frame ${f} is not an index into shared.frames (${frames.length} frames)`);
  return frames[i];
}

function parseSampled(p: SpeedscopeProfile, frames: string[], multiplier: number, out: StackSums) {
  if (p.samples.length !== p.weights.length)
    throw fail(`profile ${JSON.stringify(p.name)}: ${p.samples.length} samples but ${p.weights.length} weights (they must pair up)`);
  for (let i = 0; i < p.samples.length; i++) {
    const w = p.weights[i];
    if (w < 0) throw fail(`profile ${JSON.stringify(p.name)}: weight ${i} is negative (${w})`);
    const stack = p.samples[i].map((f) => frameName(frames, f, `profile ${JSON.stringify(p.name)}, sample ${i}`));
    // Pyroscope truncates the weight before scaling it.
    out.add(stack, Math.trunc(w) * multiplier);
  }
}

function parseEvented(p: SpeedscopeProfile, frames: string[], multiplier: number, out: StackSums) {
  const where = `profile ${JSON.stringify(p.name)}`;
  let last = p.startValue;
  const open: number[] = [];
  const names: string[] = [];
  for (let i = 0; i < p.events.length; i++) {
    const ev = p.events[i];
    if (ev.at < last) throw fail(`${where}: event ${i} is out of order (at ${ev.at} < ${last})`);
    const name = frameName(frames, ev.frame, `${where}, event ${i}`);
    const fid = Math.trunc(ev.frame);
    if (ev.type === "C") {
      if (open.length === 0) throw fail(`${where}: event ${i} closes frame ${fid} at ${ev.at} but no frame is open`);
      if (open[open.length - 1] !== fid) throw fail(`${where}: event ${i} closes frame ${fid}, which is not the innermost open frame (${open[open.length - 1]})`);
      out.add(names, Math.trunc(ev.at - last) * multiplier);
      open.pop();
      names.pop();
    } else if (ev.type === "O") {
      // Pyroscope credits the time before a child opens without the precision multiplier (only
      // closes apply it); we keep that so the same file gives the same numbers.
      if (names.length > 0) out.add(names, Math.trunc(ev.at - last));
      open.push(fid);
      names.push(name);
    } else {
      throw fail(`${where}: event ${i} has unknown type ${JSON.stringify(ev.type)} (expected "O" or "C")`);
    }
    last = ev.at;
  }
}

function typeOf(app: string): ReturnType<typeof legacyType> {
  try {
    return legacyType(app);
  } catch (e) {
    // Pyroscope answers 422 here, not 400: speedscope passes the push error on unwrapped.
    if (e instanceof ApiError) throw unprocessable(e.message);
    throw e;
  }
}

export function speedscopeToIngestItems(body: Uint8Array, params: IngestParams): IngestItem[] {
  const { frames, profiles: raw } = readFile(body);
  const profiles = mergeProfiles(raw);
  const multi = profiles.length > 1;
  const items: IngestItem[] = [];
  for (const p of profiles) {
    const rule = Object.hasOwn(UNITS, p.unit) ? UNITS[p.unit] : undefined;
    if (!rule) throw fail(`profile ${JSON.stringify(p.name)} has unknown unit ${JSON.stringify(p.unit)} (expected one of ${Object.keys(UNITS).join(", ")})`);
    if (p.type !== "sampled" && p.type !== "evented")
      throw fail(`profile ${JSON.stringify(p.name)} has unsupported type ${JSON.stringify(p.type)} (expected "sampled" or "evented")`);
    const defaulted = params.sampleRate === DEFAULT_SAMPLE_RATE;
    const rate = defaulted ? rule.defaultRate : params.sampleRate;
    const multiplier = defaulted && p.unit === "nanoseconds" ? 1 : rule.multiplier;

    // Several profiles: the unit becomes the app name's type suffix (foo → foo.seconds).
    const typed = typeOf(multi ? `${params.app}.${p.unit}` : params.app);

    const sums = new StackSums();
    if (p.type === "sampled") parseSampled(p, frames, multiplier, sums);
    else parseEvented(p, frames, multiplier, sums);
    const profile = profileFromStacks(sums.sums.values(), typed.type, rate, params.fromMs);
    if (profile.samples.count === 0) continue;

    // profile_name comes from the file, even over a profile_name tag in the request.
    const tags = new Map(params.tags);
    tags.delete("profile_name");
    const extra = p.name === "" ? [] : [{ name: "profile_name", value: p.name }];
    items.push({ labels: textSeriesLabels(tags, typed.app, typed.type, params.spyName, extra), profile });
  }
  return items;
}
