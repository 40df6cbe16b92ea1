// What an /ingest request says about its profiles besides the body: the `name` label set, the
// time range, sample rate and spy name, and how each becomes series labels.

import { sortLabels, type Labels } from "../../storage/model/labels.ts";
import { parseAttime } from "./attime.ts";
import { parseLabelSet } from "./labelset.ts";
import type { LegacyType } from "./text-profile.ts";

export interface IngestParams {
  /** The parsed `name`: `__name__` is the app name, the rest are tags. */
  tags: Map<string, string>;
  app: string;
  fromMs: number;
  untilMs: number;
  sampleRate: number;
  spyName: string;
}

export interface IngestLimits {
  ingestionBodyLimitBytes: number;
  maxProfileSizeBytes: number;
  /** Longest symbol (frame name) kept; 0 = no limit. */
  maxProfileSymbolValueLength?: number;
  /** Most samples (stacks) in one profile; 0 = no limit. */
  maxProfileStacktraceSamples?: number;
}

export const DEFAULT_SAMPLE_RATE = 100;

export function parseIngestParams(url: URL, now = Date.now()): IngestParams {
  const q = url.searchParams;
  const tags = parseLabelSet(q.get("name"));
  const app = tags.get("__name__")!;
  const sr = q.get("sampleRate");
  let sampleRate = DEFAULT_SAMPLE_RATE;
  // Missing, non-numeric or negative → 100; 0 stays 0 (Pyroscope HEAD, which fixed v1.21.1's wrap).
  if (sr !== null && /^\d+$/.test(sr.trim())) {
    sampleRate = Number(sr.trim());
  }
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
export function tagLabels(tags: Map<string, string>): Labels {
  const out: Labels = [];
  for (const [name, value] of tags) {
    if (name.startsWith("__") && name !== "__session_id__") continue;
    if (value === "") continue;
    out.push({ name, value });
  }
  return out;
}

/**
 * Series labels for the text-like formats (folded, lines, trie, tree, speedscope): Pyroscope's
 * `Put` adds service_name = the app without its suffix, or app_name when service_name is a tag.
 */
export function textSeriesLabels(tags: Map<string, string>, app: string, type: LegacyType, spyName: string, extra: Labels = []): Labels {
  const ls = tagLabels(tags);
  for (const l of extra) if (!tags.has(l.name)) ls.push(l);
  if (!tags.has("service_name")) ls.push({ name: "service_name", value: app });
  else if (!tags.has("app_name")) ls.push({ name: "app_name", value: app });
  ls.push({ name: "__name__", value: type.name }, { name: "__delta__", value: "false" }, { name: "pyroscope_spy", value: spyName });
  return sortLabels(ls);
}
