// JFR uploads (async-profiler, Pyroscope's Java agent) → profiles per event type and label set.

import { sortLabels, type Labels } from "../../../storage/model/labels.ts";
import { ApiError, unprocessable } from "../../errors.ts";
import type { IngestItem } from "../../ingester.ts";
import { tagLabels, type IngestParams } from "../ingest-params.ts";
import { JfrFormatError } from "./jfr-reader.ts";
import { jfrToProfiles, type JfrProfiles } from "./jfr-to-profiles.ts";
import { decodeLabelsSnapshot, emptyLabelsSnapshot } from "./labels-snapshot.ts";

/**
 * One JFR recording (uncompressed) and its optional LabelsSnapshot (uncompressed protobuf) as
 * series of the one profile model, labelled the way Pyroscope labels them.
 */
export function jfrToIngestItems(jfr: Uint8Array, labels: Uint8Array | null, params: IngestParams): IngestItem[] {
  // Pyroscope always hands its converter a snapshot (an empty one without a labels part), so
  // span ids become profile_id labels either way.
  const snapshot = labels && labels.length > 0 ? decodeLabelsSnapshot(labels) : emptyLabelsSnapshot();
  const period = params.sampleRate > 0 ? Math.floor(1e9 / params.sampleRate) : 0;
  let res: JfrProfiles;
  try {
    res = jfrToProfiles(jfr, snapshot, {
      timeNanos: BigInt(params.fromMs) * 1000000n,
      durationNanos: (params.untilMs - params.fromMs) * 1e6,
      period,
    });
  } catch (e) {
    if (e instanceof ApiError) throw e;
    // Damage the format checks did not name (a stack overflow on absurd nesting, say) is still the
    // upload's fault, not the server's.
    const what = e instanceof JfrFormatError ? e.message : `unreadable recording (${e instanceof Error ? e.message : String(e)})`;
    throw unprocessable(`jfr: ${what}; the body must be a complete JFR recording, gzip or plain`);
  }
  return res.profiles.map(({ metric, profile }) => ({ labels: seriesLabels(params, res.event, metric), profile }));
}

/**
 * Pyroscope's JFR series labels: the allowed tags, pyroscope_spy, __delta__, jfr_event, __name__,
 * and the full app name as service_name (as app_name when a service_name tag exists).
 */
function seriesLabels(params: IngestParams, event: string, metric: string): Labels {
  const ls = tagLabels(params.tags);
  const serviceLabel = params.tags.has("service_name") ? "app_name" : "service_name";
  const extra: Labels = [
    { name: "pyroscope_spy", value: params.spyName },
    { name: "__delta__", value: "false" },
    { name: "__name__", value: metric },
  ];
  if (event !== "") extra.push({ name: "jfr_event", value: event });
  // An explicit app_name tag wins over the app name (as for the text formats).
  if (params.app !== "" && !(serviceLabel === "app_name" && params.tags.has("app_name"))) extra.push({ name: serviceLabel, value: params.app });
  for (const l of extra) {
    const at = ls.findIndex((x) => x.name === l.name);
    if (at >= 0) ls[at] = l;
    else ls.push(l);
  }
  return sortLabels(ls);
}
