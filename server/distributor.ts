// The distributor: turns every ingest dialect's output into series of the one profile model,
// applies each tenant's limits (rate, window, size, depth, symbols, labels) and Pyroscope's label
// rules, counts what it refuses by reason, and hands the rest to the ingester.

import { LABEL_NAME, LABEL_SERVICE_NAME, getLabel, sortLabels, type Labels } from "../storage/model/labels.ts";
import { selectSamples, type Profile } from "../storage/model/profile.ts";
import { SPAN_ID_LABELS } from "../storage/model/span-id.ts";
import type { PushRequest } from "./api/gen/push/v1/push_pb.ts";
import { ApiError, badRequest } from "./errors.ts";
import type { Ingester, IngestItem } from "./ingester.ts";
import { maybeGunzip } from "./ingest/gunzip.ts";
import { decodePprof } from "./ingest/pprof-decoder.ts";
import { applyDefaultRelabelRules } from "./ingest/pprof-fixes/default-relabel.ts";
import { DeltaTracker } from "./ingest/pprof-fixes/delta-tracker.ts";
import { fixGoProfile } from "./ingest/pprof-fixes/go-profile-fix.ts";
import { normalizeProfile } from "./ingest/pprof-fixes/normalize.ts";
import { profileLanguage } from "./ingest/pprof-fixes/profile-language.ts";
import { DiscardError, invalid, type DiscardReason } from "./limits/discard.ts";
import { estimateProfileSize, labelsSize } from "./limits/profile-size.ts";
import { RateLimiter, rateLimitMessage } from "./limits/rate-limiter.ts";
import { validateLabels } from "./limits/validate-labels.ts";
import { validateProfile } from "./limits/validate-profile.ts";
import type { Metrics } from "./metrics.ts";
import type { TenantLimits } from "./overrides.ts";

/** Every tenant's limits, plus the request-wide one that is not per tenant. 0 = off. */
export interface DistributorLimits extends TenantLimits {
  ingestionBodyLimitBytes: number;
}

/** What an /ingest adapter knows about the request besides its profiles, for limits and metrics. */
export interface IngestOptions {
  /** Bytes of the profile as uploaded (gzip or not); observed as received compressed bytes. */
  compressedBytes?: number;
  /** Uncompressed pprof bytes of a single-profile upload; else each profile's size is estimated. */
  uncompressedBytes?: number;
  /** The `type` label of the compressed-bytes histogram for a multi-profile upload, e.g. "jfr". */
  format?: string;
}

export interface Distributor {
  /** push.v1.PusherService/Push: series of gzipped or plain pprof with their labels. */
  push(tenant: string, req: PushRequest): Promise<void>;
  /** Profiles already decoded by an /ingest adapter, with their series labels. */
  ingest(tenant: string, items: IngestItem[], opts?: IngestOptions): Promise<void>;
}

/** The distributor as the app holds it: also what the edges need to apply and count limits. */
export interface DistributorRole extends Distributor {
  /** The limits in force for `tenant` now (config defaults under its overrides). */
  limitsFor(tenant: string): DistributorLimits;
  /** Counts profiles an edge refused before reaching the distributor (e.g. too large to inflate). */
  discarded(tenant: string, reason: DiscardReason, profiles: number, bytes: number): void;
}

export interface DistributorDeps {
  ingester: Ingester;
  /** The global limits (config.limits): every tenant's, unless tenantLimits says otherwise. */
  limits: DistributorLimits;
  /** A tenant's limits as in force now (the overrides file, reloaded); read on every request. */
  tenantLimits?: (tenant: string) => TenantLimits;
  metrics?: Metrics;
  /** Called after each accepted request (the heap governor looks at the heap then). */
  afterIngest?: () => void;
  /** Wall-clock ms; for tests. */
  now?: () => number;
}

const MiB = 1024 * 1024;

// Sample labels that identify one span or trace: per-sample data, never series labels. Span ids
// are stored with the samples (storage/model/span-id.ts); trace ids, which Pyroscope v1 would make
// series labels, are dropped: one series per trace would swamp the index. `span_name` is a series
// label, as in Pyroscope: few values, and Grafana filters by it.
const SAMPLE_ONLY_LABELS = new Set([...SPAN_ID_LABELS, "trace_id"]);

/**
 * Pyroscope v1's label sanitization: dots in label names become underscores (so an SDK's
 * `process.runtime.name` is queried as `process_runtime_name`), and `__session_id__` is dropped
 * (max_sessions_per_series defaults to 0).
 */
export function sanitizeLabels(ls: Labels): Labels {
  const out: Labels = [];
  for (const l of ls) {
    if (l.name === "__session_id__") continue;
    out.push(l.name.includes(".") ? { name: l.name.replaceAll(".", "_"), value: l.value } : l);
  }
  sortLabels(out);
  // `service.name` next to `service_name` with the same value is one label, as in Pyroscope; with
  // different values both stay, and validation names the duplicate.
  return out.filter((l, i) => i === 0 || l.name !== out[i - 1].name || l.value !== out[i - 1].value);
}

/** Splits a profile by its string sample labels: each distinct set becomes its own series. */
function splitBySampleLabels(labels: Labels, p: Profile): IngestItem[] {
  const sl = p.samples.labels;
  if (!sl) return [{ labels, profile: p }];
  const groups = new Map<string, { extra: Labels; idx: number[] }>();
  for (let i = 0; i < p.samples.count; i++) {
    const extra: Labels = [];
    for (const l of sl[i] ?? []) if (l.str !== "" && !SAMPLE_ONLY_LABELS.has(l.key)) extra.push({ name: l.key, value: l.str });
    sortLabels(extra);
    const key = extra.map((l) => `${l.name}\xff${l.value}`).join("\xff");
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { extra, idx: [] }));
    g.idx.push(i);
  }
  if (groups.size === 1 && groups.has("")) return [{ labels, profile: p }];
  const out: IngestItem[] = [];
  for (const g of groups.values()) {
    // Series labels win over sample labels on conflict.
    const merged = [...labels];
    for (const l of g.extra) if (getLabel(labels, l.name) === undefined) merged.push(l);
    out.push({ labels: sortLabels(merged), profile: selectSamples(p, g.idx) });
  }
  return out;
}

/** A profile on its way in: series labels, uncompressed size, and its size as uploaded if known. */
interface Received extends IngestItem {
  size: number;
  compressed?: number;
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function createDistributor(deps: DistributorDeps): DistributorRole {
  const { ingester, metrics } = deps;
  const now = deps.now ?? Date.now;
  const limiter = new RateLimiter(now);
  // Cumulative memory profiles (Push without __delta__="false") become deltas before the WAL.
  const delta = new DeltaTracker({ now });

  function limitsFor(tenant: string): DistributorLimits {
    return deps.tenantLimits ? { ...deps.limits, ...deps.tenantLimits(tenant) } : deps.limits;
  }

  function discarded(tenant: string, reason: DiscardReason, profiles: number, bytes: number) {
    metrics?.discardedSamples.inc({ reason, tenant }, profiles);
    metrics?.discardedBytes.inc({ reason, tenant }, bytes);
  }

  /**
   * Rate limit, then each profile's limits, label split and label rules; all or nothing, so one
   * refused profile refuses the request (and every profile in it is counted as discarded).
   */
  async function accept(tenant: string, lim: DistributorLimits, rs: Received[], bytes: number, request?: { type: string; compressed: number }) {
    const limit = { bytesPerSecond: lim.ingestionRateMb * MiB, burstBytes: lim.ingestionBurstSizeMb * MiB };
    const take = limiter.take(tenant, bytes, limit);
    if (!take.ok) throw new DiscardError("rate_limited", rateLimitMessage(tenant, limit, bytes, take.retryAfterMs), "resource_exhausted");
    if (request) metrics?.receivedCompressedBytes.observe({ type: request.type, tenant }, request.compressed);
    const nowMs = now();
    const out: IngestItem[] = [];
    for (const received of rs) {
      // Pyroscope's default relabeling (godeltaprof_memory → memory, …) comes before the rest.
      const r = { ...received, labels: applyDefaultRelabelRules(received.labels) };
      const type = getLabel(r.labels, LABEL_NAME) ?? "";
      if (r.compressed !== undefined) metrics?.receivedCompressedBytes.observe({ type, tenant }, r.compressed);
      metrics?.receivedDecompressedBytes.observe({ type, tenant }, r.size);
      metrics?.receivedSamples.observe({ type, tenant }, r.profile.samples.count);
      // Pyroscope's order: limits, then the Go fix-ups, then normalization.
      let p = validateProfile(r.profile, lim, { tenant, labels: r.labels, size: r.size, nowMs });
      if (profileLanguage(getLabel(r.labels, "pyroscope_spy"), p) === "go") p = fixGoProfile(p);
      p = normalizeProfile(p);
      if (p.samples.count === 0) continue; // nothing left to store: accepted, as Pyroscope does
      for (const part of splitBySampleLabels(r.labels, p)) {
        const labels = sanitizeLabels(part.labels);
        validateLabels(labels, lim);
        // Per final series, so series split off by sample labels keep their own baselines.
        out.push({ labels, profile: delta.apply(labels, part.profile, tenant) });
      }
    }
    if (out.length) await ingester.push(tenant, out);
    deps.afterIngest?.();
  }

  async function ingest(tenant: string, items: IngestItem[], opts: IngestOptions = {}) {
    if (items.length === 0) return;
    const lim = limitsFor(tenant);
    const single = items.length === 1;
    let bytes = 0;
    const rs = items.map((it): Received => {
      const size = single && opts.uncompressedBytes !== undefined ? opts.uncompressedBytes : estimateProfileSize(it.profile);
      bytes += size + labelsSize(it.labels);
      return { ...it, size, compressed: single ? opts.compressedBytes : undefined };
    });
    const request = !single && opts.compressedBytes !== undefined ? { type: opts.format ?? "unknown", compressed: opts.compressedBytes } : undefined;
    try {
      await accept(tenant, lim, rs, bytes, request);
    } catch (e) {
      if (e instanceof DiscardError) discarded(tenant, e.reason, items.length, bytes);
      throw e;
    }
  }

  /** Pyroscope's Push statuses: a profile too large to inflate or not pprof is a 400, counted. */
  function inflate(bytes: Uint8Array, max: number): Uint8Array {
    try {
      return maybeGunzip(bytes, max);
    } catch (e) {
      if (e instanceof ApiError && e.code === "payload_too_large") throw invalid("profile_size_limit", `${e.message} (max_profile_size_bytes)`);
      throw invalid("malformed_profile", messageOf(e));
    }
  }

  async function push(tenant: string, req: PushRequest) {
    const lim = limitsFor(tenant);
    const profiles = req.series.reduce((n, s) => n + s.samples.length, 0);
    if (profiles === 0) throw badRequest("no profiles received");
    let bytes = 0;
    let rawTotal = 0;
    try {
      const rs: Received[] = [];
      for (const s of req.series) {
        const ls: Labels = [];
        for (const l of s.labels) {
          if (l.name === "") throw invalid("invalid_labels", `label with an empty name (value ${JSON.stringify(l.value.slice(0, 64))})`);
          ls.push({ name: l.name, value: l.value });
        }
        if (!getLabel(ls, LABEL_SERVICE_NAME)) ls.push({ name: LABEL_SERVICE_NAME, value: "unknown_service" });
        sortLabels(ls);
        const lsize = labelsSize(ls);
        for (const sample of s.samples) {
          const max = lim.maxProfileSizeBytes;
          let raw: Uint8Array;
          try {
            raw = inflate(sample.rawProfile, max);
          } catch (e) {
            bytes += (e as DiscardError).reason === "profile_size_limit" ? max : sample.rawProfile.length;
            throw e;
          }
          bytes += raw.length + lsize;
          rawTotal += raw.length;
          if (max > 0 && raw.length > max)
            throw invalid("profile_size_limit", `uncompressed profile payload size ${raw.length} exceeds the limit of ${max} bytes (max_profile_size_bytes)`);
          if (lim.ingestionBodyLimitBytes > 0 && rawTotal > lim.ingestionBodyLimitBytes)
            throw invalid("body_size_limit_exceeded", `uncompressed push body exceeds the limit of ${lim.ingestionBodyLimitBytes} bytes (ingestion_body_limit_bytes)`);
          let profile: Profile;
          try {
            profile = decodePprof(raw);
          } catch (e) {
            // Push reports every malformed profile as invalid_argument (400), as Pyroscope does.
            throw invalid("malformed_profile", messageOf(e));
          }
          rs.push({ labels: ls, profile, size: raw.length, compressed: sample.rawProfile.length });
        }
      }
      await accept(tenant, lim, rs, bytes);
    } catch (e) {
      if (e instanceof DiscardError) discarded(tenant, e.reason, profiles, bytes);
      throw e;
    }
  }

  return { push, ingest, limitsFor, discarded };
}
