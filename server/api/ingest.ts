// POST /ingest (and /pyroscope/ingest): Pyroscope's legacy ingestion endpoint. Picks the format
// adapter the way Pyroscope does, derives the series labels, and hands profiles to the distributor.

import { sortLabels, type Labels } from "../../storage/model/labels.ts";
import type { Profile } from "../../storage/model/profile.ts";
import type { Distributor, DistributorRole, IngestOptions } from "../distributor.ts";
import type { IngestItem } from "../ingester.ts";
import { DiscardError, type DiscardReason } from "../limits/discard.ts";
import { ApiError, tooLarge, unprocessable } from "../errors.ts";
import { parseFolded, parseLines } from "../ingest/folded.ts";
import { maybeGunzip } from "../ingest/gunzip.ts";
import { parseIngestParams, tagLabels, textSeriesLabels, type IngestLimits, type IngestParams } from "../ingest/ingest-params.ts";
import { jfrToIngestItems } from "../ingest/jfr/jfr-ingest.ts";
import { decodePprof } from "../ingest/pprof-decoder.ts";
import { fixDotnetSampleTypes, isDotnetspy } from "../ingest/pprof-fixes/dotnet-fix.ts";
import { fixScriptingFunctionNames } from "../ingest/pprof-fixes/scripting-names.ts";
import { speedscopeToIngestItems } from "../ingest/speedscope.ts";
import { legacyType, profileFromStacks } from "../ingest/text-profile.ts";
import { parseTree, parseTrie } from "../ingest/trie.ts";
import { readBody } from "./read-body.ts";

export type { IngestLimits, IngestParams };

type SampleTypeConfig = Record<string, { "display-name"?: string }>;

const DEFAULT_DISPLAY: Record<string, string> = {
  samples: "cpu",
  goroutine: "goroutines",
  contentions: "mutex_count",
  delay: "mutex_duration",
};

/** Pyroscope's choice of one `__name__` for a whole pprof upload, from its sample types. */
export function pprofMetricName(p: Profile, config: SampleTypeConfig | null): string {
  if (p.sampleTypes.some((t) => t.type === "wall")) return "wall";
  for (const t of p.sampleTypes) {
    const d = config?.[t.type]?.["display-name"] ?? DEFAULT_DISPLAY[t.type] ?? t.type;
    if (d.includes("cpu")) return "process_cpu";
    if (d.includes("alloc_") || d.includes("inuse_") || d === "space" || d === "objects") return "memory";
    if (d.includes("mutex_")) return "mutex";
    if (d.includes("block_")) return "block";
    if (d.includes("goroutines")) return "goroutines";
  }
  return p.sampleTypes.length ? p.sampleTypes[p.sampleTypes.length - 1].type : "";
}

function pprofLabels(params: IngestParams, metric: string): Labels {
  const ls = tagLabels(params.tags);
  if (!params.tags.has("service_name")) ls.push({ name: "service_name", value: params.app });
  ls.push({ name: "__name__", value: metric }, { name: "__delta__", value: "false" }, { name: "pyroscope_spy", value: params.spyName });
  return sortLabels(ls);
}

function decodeOrReject(bytes: Uint8Array, limits: IngestLimits): { profile: Profile; raw: Uint8Array } {
  const raw = maybeGunzip(bytes, limits.maxProfileSizeBytes);
  if (limits.maxProfileSizeBytes > 0 && raw.length > limits.maxProfileSizeBytes)
    throw tooLarge(`uncompressed profile payload size exceeds limit of ${limits.maxProfileSizeBytes} bytes`);
  try {
    return { profile: decodePprof(raw), raw };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw unprocessable(`pprof: ${e instanceof Error ? e.message : e}${looksLikeText(raw) ? " (the body looks like text, not pprof: send folded stacks without format=pprof)" : ""}`);
  }
}

/** Mostly printable ASCII: someone sent folded text or JSON where pprof was expected. */
function looksLikeText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  if (n === 0) return false;
  let printable = 0;
  for (let i = 0; i < n; i++) if ((b[i] >= 0x20 && b[i] < 0x7f) || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09) printable++;
  return printable / n > 0.95;
}

/**
 * pprof and JFR uploads: Pyroscope (HEAD) answers a refused profile with 422, but keeps 429 for
 * the rate limit. The error stays a DiscardError, already counted by the distributor.
 */
async function ingestAsUpload(d: Distributor, tenant: string, items: IngestItem[], opts: IngestOptions): Promise<void> {
  try {
    await d.ingest(tenant, items, opts);
  } catch (e) {
    if (e instanceof DiscardError && e.code === "invalid_argument") throw new DiscardError(e.reason, e.message, "unprocessable");
    throw e;
  }
}

function fixTime(p: Profile, fromMs: number) {
  // Pyroscope replaces a zero or 1970 timestamp with `from`.
  if (p.timeNanos < 31536000n * 1000000000n) p.timeNanos = BigInt(fromMs) * 1000000n;
}

async function ingestPprof(tenant: string, bytes: Uint8Array, params: IngestParams, config: SampleTypeConfig | null, d: Distributor, limits: IngestLimits) {
  if (bytes.length === 0) return;
  const { profile: decoded, raw } = decodeOrReject(bytes, limits);
  fixTime(decoded, params.fromMs);
  // Before the metric name is chosen: the .NET rewrite renames sample types.
  let p = fixScriptingFunctionNames(decoded, params.spyName);
  if (isDotnetspy(params.spyName, config)) p = fixDotnetSampleTypes(p);
  await ingestAsUpload(d, tenant, [{ labels: pprofLabels(params, pprofMetricName(p, config)), profile: p }], { compressedBytes: bytes.length, uncompressedBytes: raw.length });
}

async function ingestText(tenant: string, stacks: Map<string, number>, params: IngestParams, d: Distributor) {
  const { app, type } = legacyType(params.app);
  const p = profileFromStacks(
    [...stacks].map(([k, v]) => [k.split(";"), v] as [string[], number]),
    type,
    params.sampleRate,
    params.fromMs,
  );
  if (p.samples.count === 0) return;
  await d.ingest(tenant, [{ labels: textSeriesLabels(params.tags, app, type, params.spyName), profile: p }]);
}

async function readForm(body: Uint8Array, ctype: string): Promise<FormData> {
  try {
    return await new Response(body as Uint8Array<ArrayBuffer>, { headers: { "content-type": ctype } }).formData();
  } catch (e) {
    throw unprocessable(`multipart body could not be parsed: ${e instanceof Error ? e.message : e}`);
  }
}

async function formBytes(v: FormDataEntryValue | null): Promise<Uint8Array | null> {
  if (v === null) return null;
  return typeof v === "string" ? new TextEncoder().encode(v) : new Uint8Array(await v.arrayBuffer());
}

/** JFR as a raw body or as multipart with `jfr` (required) and `labels` (LabelsSnapshot), each gzip or plain. */
async function ingestJfr(tenant: string, req: Request, ctype: string, params: IngestParams, d: Distributor, limits: IngestLimits) {
  const body = await readBody(req, limits.ingestionBodyLimitBytes);
  let jfr: Uint8Array | null = body;
  let labels: Uint8Array | null = null;
  if (ctype.includes("multipart/form-data")) {
    const form = await readForm(body, ctype);
    jfr = await formBytes(form.get("jfr"));
    if (!jfr) throw unprocessable("jfr field is required (multipart JFR uploads carry the recording in a part named jfr)");
    labels = await formBytes(form.get("labels"));
  }
  const max = limits.maxProfileSizeBytes;
  jfr = maybeGunzip(jfr, max);
  if (labels) labels = maybeGunzip(labels, max);
  if (max > 0 && jfr.length > max) throw tooLarge(`uncompressed profile payload size exceeds limit of ${max} bytes`);
  const items = jfrToIngestItems(jfr, labels, params);
  if (items.length) await ingestAsUpload(d, tenant, items, { compressedBytes: body.length, format: "jfr" });
}

const EDGE_REASON: Partial<Record<ApiError["code"], DiscardReason>> = {
  payload_too_large: "profile_size_limit",
  unprocessable: "malformed_profile",
  invalid_argument: "malformed_profile",
};

/**
 * Handles one /ingest request for `tenant`; throws ApiError for the client. What the edge itself
 * refuses (too large to inflate, undecodable) is counted as discarded here; the distributor
 * counts its own refusals.
 */
export async function handleIngest(req: Request, tenant: string, d: Distributor & Partial<Pick<DistributorRole, "discarded">>, limits: IngestLimits): Promise<void> {
  try {
    await dispatchIngest(req, tenant, d, limits);
  } catch (e) {
    if (e instanceof ApiError && !(e instanceof DiscardError) && d.discarded) {
      const tooBig = e.code === "payload_too_large" && e.message.startsWith("request body too large");
      const reason = tooBig ? "body_size_limit_exceeded" : EDGE_REASON[e.code];
      if (reason) d.discarded(tenant, reason, 1, Number(req.headers.get("content-length")) || 0);
    }
    throw e;
  }
}

async function dispatchIngest(req: Request, tenant: string, d: Distributor, limits: IngestLimits): Promise<void> {
  const url = new URL(req.url);
  const params = parseIngestParams(url);
  if (params.tags.get("profile_id")) return; // Pyroscope silently drops uploads tagged with a profile_id
  const format = url.searchParams.get("format") ?? "";
  const ctype = req.headers.get("content-type") ?? "";
  const text = async () => new TextDecoder().decode(await readBody(req, limits.ingestionBodyLimitBytes));

  // Pyroscope's dispatch order: the first match wins.
  if (format === "trie" || ctype.includes("binary/octet-stream+trie")) {
    await ingestText(tenant, parseTrie(await readBody(req, limits.ingestionBodyLimitBytes), limits), params, d);
    return;
  }
  if (format === "tree" || ctype.includes("binary/octet-stream+tree")) {
    await ingestText(tenant, parseTree(await readBody(req, limits.ingestionBodyLimitBytes), limits), params, d);
    return;
  }
  if (format === "lines") {
    await ingestText(tenant, parseLines(await text()), params, d);
    return;
  }
  if (format === "jfr") {
    await ingestJfr(tenant, req, ctype, params, d, limits);
    return;
  }
  if (format === "pprof") {
    await ingestPprof(tenant, await readBody(req, limits.ingestionBodyLimitBytes), params, null, d, limits);
    return;
  }
  if (format === "speedscope") {
    const items = speedscopeToIngestItems(await readBody(req, limits.ingestionBodyLimitBytes), params);
    if (items.length) await d.ingest(tenant, items);
    return;
  }
  if (ctype.includes("multipart/form-data")) {
    const form = await readForm(await readBody(req, limits.ingestionBodyLimitBytes), ctype);
    if (form.has("prev_profile"))
      throw unprocessable("unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version (prev_profile uploads are not accepted)");
    let config: SampleTypeConfig | null = null;
    const stc = form.get("sample_type_config");
    if (stc) {
      const text = typeof stc === "string" ? stc : await stc.text();
      try {
        config = JSON.parse(text);
      } catch {
        throw unprocessable("sample_type_config is not valid JSON");
      }
    }
    const bytes = await formBytes(form.get("profile"));
    if (!bytes) return; // no profile part: nothing to store, as Pyroscope answers
    await ingestPprof(tenant, bytes, params, config, d, limits);
    return;
  }
  // folded / collapsed / anything else: Pyroscope's default "groups" format.
  await ingestText(tenant, parseFolded(await text()), params, d);
}
