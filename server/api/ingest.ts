// POST /ingest (and /pyroscope/ingest): Pyroscope's legacy ingestion endpoint. Picks the format
// adapter the way Pyroscope does, derives the series labels, and hands profiles to the distributor.

import type { Labels } from "../../storage/model/labels.ts";
import { sortLabels } from "../../storage/model/labels.ts";
import type { Profile } from "../../storage/model/profile.ts";
import type { Distributor } from "../distributor.ts";
import { ApiError, tooLarge, unprocessable } from "../errors.ts";
import { parseAttime } from "../ingest/attime.ts";
import { parseFolded, parseLines } from "../ingest/folded.ts";
import { maybeGunzip } from "../ingest/gunzip.ts";
import { parseLabelSet } from "../ingest/labelset.ts";
import { decodePprof } from "../ingest/pprof-decoder.ts";
import { legacyType, profileFromStacks } from "../ingest/text-profile.ts";

export interface IngestLimits {
  ingestionBodyLimitBytes: number;
  maxProfileSizeBytes: number;
}

export interface IngestParams {
  tags: Map<string, string>;
  app: string;
  fromMs: number;
  untilMs: number;
  sampleRate: number;
  spyName: string;
}

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

function parseParams(url: URL): IngestParams {
  const q = url.searchParams;
  const tags = parseLabelSet(q.get("name"));
  const app = tags.get("__name__")!;
  const now = Date.now();
  const sr = q.get("sampleRate");
  let sampleRate = 100;
  if (sr !== null && /^\d+$/.test(sr.trim())) sampleRate = Number(sr.trim());
  return {
    tags,
    app,
    fromMs: parseAttime(q.get("from"), now),
    untilMs: parseAttime(q.get("until"), now),
    sampleRate,
    spyName: q.get("spyName") || "unknown",
  };
}

/** Tags become series labels except reserved `__x__` names (Pyroscope keeps only __session_id__). */
function tagLabels(tags: Map<string, string>): Labels {
  const out: Labels = [];
  for (const [name, value] of tags) {
    if (name.startsWith("__") && name !== "__session_id__") continue;
    if (value === "") continue;
    out.push({ name, value });
  }
  return out;
}

function pprofLabels(params: IngestParams, metric: string): Labels {
  const ls = tagLabels(params.tags);
  if (!params.tags.has("service_name")) ls.push({ name: "service_name", value: params.app });
  ls.push({ name: "__name__", value: metric }, { name: "__delta__", value: "false" }, { name: "pyroscope_spy", value: params.spyName });
  return sortLabels(ls);
}

async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const len = Number(req.headers.get("content-length") ?? "NaN");
  if (limit > 0 && len > limit) throw tooLarge(`request body too large: ${len} bytes, the limit is ${limit} bytes (ingestion_body_limit_mb)`);
  const buf = new Uint8Array(await req.arrayBuffer());
  if (limit > 0 && buf.length > limit) throw tooLarge(`request body too large: ${buf.length} bytes, the limit is ${limit} bytes (ingestion_body_limit_mb)`);
  return buf;
}

function decodeOrReject(bytes: Uint8Array, limits: IngestLimits): Profile {
  const raw = maybeGunzip(bytes, limits.maxProfileSizeBytes);
  if (limits.maxProfileSizeBytes > 0 && raw.length > limits.maxProfileSizeBytes)
    throw tooLarge(`uncompressed profile payload size exceeds limit of ${limits.maxProfileSizeBytes} bytes`);
  try {
    return decodePprof(raw);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw unprocessable(`pprof: ${e instanceof Error ? e.message : e}`);
  }
}

function fixTime(p: Profile, fromMs: number) {
  // Pyroscope replaces a zero or 1970 timestamp with `from`.
  if (p.timeNanos < 31536000n * 1000000000n) p.timeNanos = BigInt(fromMs) * 1000000n;
}

async function ingestPprof(tenant: string, bytes: Uint8Array, params: IngestParams, config: SampleTypeConfig | null, d: Distributor, limits: IngestLimits) {
  if (bytes.length === 0) return;
  const p = decodeOrReject(bytes, limits);
  fixTime(p, params.fromMs);
  await d.ingest(tenant, [{ labels: pprofLabels(params, pprofMetricName(p, config)), profile: p }]);
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
  const ls = tagLabels(params.tags);
  if (!params.tags.has("service_name")) ls.push({ name: "service_name", value: app });
  else if (!params.tags.has("app_name")) ls.push({ name: "app_name", value: app });
  ls.push({ name: "__name__", value: type.name }, { name: "__delta__", value: "false" }, { name: "pyroscope_spy", value: params.spyName });
  await d.ingest(tenant, [{ labels: sortLabels(ls), profile: p }]);
}

/** Handles one /ingest request for `tenant`; throws ApiError for the client. */
export async function handleIngest(req: Request, tenant: string, d: Distributor, limits: IngestLimits): Promise<void> {
  const url = new URL(req.url);
  const params = parseParams(url);
  if (params.tags.get("profile_id")) return; // Pyroscope silently drops uploads tagged with a profile_id
  const format = url.searchParams.get("format") ?? "";
  const ctype = req.headers.get("content-type") ?? "";

  if (format === "trie" || format === "tree" || ctype.includes("octet-stream+trie") || ctype.includes("octet-stream+tree") || format === "jfr" || format === "speedscope")
    throw new ApiError("unsupported_media_type", `format ${JSON.stringify(format || ctype)} is not supported yet; send pprof, folded or lines`);

  if (format === "pprof") {
    await ingestPprof(tenant, await readBody(req, limits.ingestionBodyLimitBytes), params, null, d, limits);
    return;
  }
  if (format === "lines") {
    await ingestText(tenant, parseLines(new TextDecoder().decode(await readBody(req, limits.ingestionBodyLimitBytes))), params, d);
    return;
  }
  if (ctype.includes("multipart/form-data")) {
    const body = await readBody(req, limits.ingestionBodyLimitBytes);
    let form: FormData;
    try {
      form = await new Response(body as Uint8Array<ArrayBuffer>, { headers: { "content-type": ctype } }).formData();
    } catch (e) {
      throw unprocessable(`multipart body could not be parsed: ${e instanceof Error ? e.message : e}`);
    }
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
    const part = form.get("profile");
    if (!part) return; // no profile part: nothing to store, as Pyroscope answers
    const bytes = typeof part === "string" ? new TextEncoder().encode(part) : new Uint8Array(await part.arrayBuffer());
    await ingestPprof(tenant, bytes, params, config, d, limits);
    return;
  }
  // folded / collapsed / anything else: Pyroscope's default "groups" format.
  const body = await readBody(req, limits.ingestionBodyLimitBytes);
  await ingestText(tenant, parseFolded(new TextDecoder().decode(body)), params, d);
}

