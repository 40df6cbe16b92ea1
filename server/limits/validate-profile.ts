// Pyroscope's per-profile limits (ValidateProfile), in its order: ingestion window, size, sample
// count, stack depth (truncated), labels per sample, symbol length (truncated).

import type { Labels } from "../../storage/model/labels.ts";
import type { Func, Mapping, Profile, SampleLabel, Samples } from "../../storage/model/profile.ts";
import { formatDuration } from "../config.ts";
import { invalid } from "./discard.ts";
import { labelsString } from "./validate-labels.ts";

export interface ProfileLimits {
  /** 0 = off, as every limit here. */
  maxProfileSizeBytes: number;
  maxProfileStacktraceSamples: number;
  maxProfileStacktraceSampleLabels: number;
  maxProfileStacktraceDepth: number;
  maxProfileSymbolValueLength: number;
  /** Milliseconds. */
  rejectOlderThan: number;
  /** Milliseconds. */
  rejectNewerThan: number;
}

export interface ProfileContext {
  tenant: string;
  /** The series the profile was sent for, to name it in errors. */
  labels: Labels;
  /** Uncompressed bytes (pprof size, or its estimate). */
  size: number;
  nowMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Returns the profile to store: `p`, or a copy with a time set (0 → now), deep stacks cut and long
 * symbols cut. Throws a DiscardError naming the first limit the profile breaks.
 */
export function validateProfile(p: Profile, limits: ProfileLimits, ctx: ProfileContext): Profile {
  if (p.sampleTypes.length === 0) throw invalid("malformed_profile", `malformed profile for series ${labelsString(ctx.labels)}: it has no sample types`);
  const out = { ...p };
  if (p.timeNanos > 0n) checkWindow(Number(p.timeNanos / 1000000n), limits, ctx);
  else out.timeNanos = BigInt(ctx.nowMs) * 1000000n;

  const maxSize = limits.maxProfileSizeBytes;
  if (maxSize > 0 && ctx.size > maxSize)
    throw invalid("profile_size_limit", `profile of series ${labelsString(ctx.labels)} is ${ctx.size} bytes uncompressed, more than the limit of ${maxSize} (max_profile_size_bytes)`);
  const maxSamples = limits.maxProfileStacktraceSamples;
  if (maxSamples > 0 && p.samples.count > maxSamples)
    throw invalid("samples_limit", `profile of series ${labelsString(ctx.labels)} has ${p.samples.count} samples, more than the limit of ${maxSamples} (max_profile_stacktrace_samples)`);
  if (limits.maxProfileStacktraceDepth > 0) out.samples = truncateDepth(p.samples, limits.maxProfileStacktraceDepth);
  const maxLabels = limits.maxProfileStacktraceSampleLabels;
  if (maxLabels > 0 && p.samples.labels) {
    for (const ls of p.samples.labels) {
      if (ls && ls.length > maxLabels)
        throw invalid("sample_labels_limit", `a sample of the profile of series ${labelsString(ctx.labels)} has ${ls.length} labels, more than the limit of ${maxLabels} (max_profile_stacktrace_sample_labels)`);
    }
  }
  if (limits.maxProfileSymbolValueLength > 0) truncateSymbols(out, limits.maxProfileSymbolValueLength);
  return out;
}

/** Pyroscope's window is open at both ends: (now − reject_older_than, now + reject_newer_than). */
function checkWindow(tMs: number, limits: ProfileLimits, ctx: ProfileContext): void {
  const { rejectOlderThan: older, rejectNewerThan: newer } = limits;
  const from = ctx.nowMs - older;
  const to = ctx.nowMs + newer;
  if ((older === 0 || tMs > from) && (newer === 0 || tMs < to)) return;
  const window =
    older === 0 ? `the ingestion window ends at ${iso(to)}`
    : newer === 0 ? `the ingestion window starts at ${iso(from)}`
    : `the ingestion window is ${iso(from)} to ${iso(to)}`;
  const rules = [older ? `reject_older_than ${formatDuration(older)}` : "", newer ? `reject_newer_than ${formatDuration(newer)}` : ""].filter(Boolean).join(", ");
  throw invalid(
    "not_in_ingestion_window",
    `profile of series ${labelsString(ctx.labels)} has time ${iso(tMs)}, outside the ingestion window of tenant ${JSON.stringify(ctx.tenant)}: ${window} (${rules}); check the client's clock, or change these limits for the tenant`,
  );
}

/** Keeps each stack's `max` root-most frames: locations are leaf first, so the leaf side goes. */
export function truncateDepth(s: Samples, max: number): Samples {
  let over = false;
  for (let i = 0; i < s.count && !over; i++) over = s.locStart[i + 1]! - s.locStart[i]! > max;
  if (!over) return s;
  const locStart = new Uint32Array(s.count + 1);
  let n = 0;
  for (let i = 0; i < s.count; i++) n += Math.min(max, s.locStart[i + 1]! - s.locStart[i]!);
  const locs = new Uint32Array(n);
  let o = 0;
  for (let i = 0; i < s.count; i++) {
    const end = s.locStart[i + 1]!;
    const start = Math.max(s.locStart[i]!, end - max);
    locs.set(s.locs.subarray(start, end), o);
    o += end - start;
    locStart[i + 1] = o;
  }
  return { ...s, locStart, locs };
}

/**
 * Cuts strings longer than `max` to their last `max` characters, as Pyroscope does to its string
 * table: the end of a qualified name or path is the part that tells frames apart. Copies what it
 * changes, since symbols may be shared with other profiles.
 */
function truncateSymbols(p: Profile, max: number): void {
  const cut = (v: string) => (v.length > max ? v.slice(v.length - max) : v);
  const long = (v: string) => v.length > max;
  if (p.functions.some((f) => long(f.name) || long(f.systemName) || long(f.filename)))
    p.functions = p.functions.map((f): Func => ({ ...f, name: cut(f.name), systemName: cut(f.systemName), filename: cut(f.filename) }));
  if (p.mappings.some((m) => long(m.filename) || long(m.buildId)))
    p.mappings = p.mappings.map((m): Mapping => ({ ...m, filename: cut(m.filename), buildId: cut(m.buildId) }));
  const sl = p.samples.labels;
  if (sl && sl.some((ls) => ls?.some((l) => long(l.str)))) {
    p.samples = { ...p.samples, labels: sl.map((ls) => ls?.map((l): SampleLabel => (long(l.str) ? { ...l, str: cut(l.str) } : l))) };
  }
}
