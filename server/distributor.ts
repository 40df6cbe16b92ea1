// The distributor: turns every ingest dialect's output into series of the one profile model,
// applies Pyroscope's label rules and validation, and hands the result to the ingester.

import { LABEL_NAME, LABEL_SERVICE_NAME, getLabel, sortLabels, type Labels } from "../storage/model/labels.ts";
import { selectSamples, type Profile } from "../storage/model/profile.ts";
import type { PushRequest } from "./api/gen/push/v1/push_pb.ts";
import { badRequest } from "./errors.ts";
import type { Ingester, IngestItem } from "./ingester.ts";
import { maybeGunzip } from "./ingest/gunzip.ts";
import { decodePprof } from "./ingest/pprof-decoder.ts";
import type { Metrics } from "./metrics.ts";

export interface DistributorLimits {
  maxProfileSizeBytes: number;
  ingestionBodyLimitBytes: number;
  maxLabelNamesPerSeries: number;
  maxLabelNameLength: number;
  maxLabelValueLength: number;
}

export interface Distributor {
  /** push.v1.PusherService/Push: series of gzipped or plain pprof with their labels. */
  push(tenant: string, req: PushRequest): Promise<void>;
  /** Profiles already decoded by an /ingest adapter, with their series labels. */
  ingest(tenant: string, items: IngestItem[]): Promise<void>;
}

// Sample labels that identify a span or profile instance: per-sample data, never series labels.
const SAMPLE_ONLY_LABELS = new Set(["span_id", "profile_id", "trace_id", "span_name"]);
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

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
  return sortLabels(out);
}

export function createDistributor(deps: { ingester: Ingester; limits: DistributorLimits; metrics?: Metrics }): Distributor {
  const { ingester, limits } = deps;

  function validateLabels(ls: Labels) {
    if (ls.length > limits.maxLabelNamesPerSeries)
      throw badRequest(`profile series has ${ls.length} labels, more than the limit of ${limits.maxLabelNamesPerSeries} (max_label_names_per_series)`);
    const name = getLabel(ls, LABEL_NAME);
    if (!name) throw badRequest("profile series has no __name__ label (invalid metric name)");
    if (!getLabel(ls, LABEL_SERVICE_NAME)) throw badRequest("service name is not provided (label service_name is empty)");
    let prev = "";
    for (const l of ls) {
      if (l.name === prev) throw badRequest(`duplicate label name ${JSON.stringify(l.name)}`);
      prev = l.name;
      if (l.name.length > limits.maxLabelNameLength)
        throw badRequest(`label name ${JSON.stringify(l.name.slice(0, 64))}… is longer than ${limits.maxLabelNameLength} characters (max_label_name_length)`);
      if (l.value.length > limits.maxLabelValueLength)
        throw badRequest(`value of label ${JSON.stringify(l.name)} is longer than ${limits.maxLabelValueLength} characters (max_label_value_length)`);
      if (!LABEL_NAME_RE.test(l.name)) throw badRequest(`invalid label name ${JSON.stringify(l.name)}`);
    }
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

  async function ingest(tenant: string, items: IngestItem[]) {
    const out: IngestItem[] = [];
    for (const it of items) {
      if (it.profile.sampleTypes.length === 0) throw badRequest("malformed profile: it has no sample types");
      for (const part of splitBySampleLabels(it.labels, it.profile)) {
        const labels = sanitizeLabels(part.labels);
        validateLabels(labels);
        out.push({ labels, profile: part.profile });
      }
    }
    if (out.length) await ingester.push(tenant, out);
  }

  async function push(tenant: string, req: PushRequest) {
    if (req.series.length === 0) throw badRequest("no profiles received");
    const items: IngestItem[] = [];
    let total = 0;
    for (const s of req.series) {
      const ls: Labels = [];
      for (const l of s.labels) {
        if (l.name === "") throw badRequest("label with an empty name");
        ls.push({ name: l.name, value: l.value });
      }
      if (!getLabel(ls, LABEL_SERVICE_NAME)) ls.push({ name: LABEL_SERVICE_NAME, value: "unknown_service" });
      sortLabels(ls);
      for (const sample of s.samples) {
        const raw = maybeGunzip(sample.rawProfile, limits.maxProfileSizeBytes);
        if (limits.maxProfileSizeBytes > 0 && raw.length > limits.maxProfileSizeBytes)
          throw badRequest(`uncompressed profile payload size exceeds limit of ${limits.maxProfileSizeBytes} bytes`);
        total += raw.length;
        if (limits.ingestionBodyLimitBytes > 0 && total > limits.ingestionBodyLimitBytes)
          throw badRequest(`uncompressed push body exceeds limit of ${limits.ingestionBodyLimitBytes} bytes`);
        let profile: Profile;
        try {
          profile = decodePprof(raw);
        } catch (e) {
          // Push reports every malformed profile as invalid_argument (400), as Pyroscope does.
          throw badRequest(e instanceof Error ? e.message : String(e));
        }
        if (profile.timeNanos === 0n) profile.timeNanos = BigInt(Date.now()) * 1000000n;
        items.push({ labels: ls, profile });
      }
    }
    await ingest(tenant, items);
  }

  return { push, ingest };
}
