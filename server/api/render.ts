// GET /pyroscope/render and /pyroscope/label-values: the legacy HTTP query API (flamebearer JSON
// with a timeline), answered through the querier like the Connect API.

import { create } from "@bufbuild/protobuf";
import { calcPointInterval, flamebearerResponse, timelineFromPoints } from "../../storage/model/flamebearer.ts";
import { flamegraphFromTree } from "../../storage/model/flamegraph.ts";
import { parseProfileTypeId } from "../../storage/model/profile-type.ts";
import { formatSelector, parseQuery } from "../../storage/model/selector.ts";
import { badRequest } from "../errors.ts";
import { parseAttime } from "../ingest/attime.ts";
import type { Querier } from "../querier.ts";
import { SelectMergeStacktracesRequestSchema, SelectSeriesRequestSchema } from "../api/gen/querier/v1/querier_pb.ts";
import { TimeSeriesAggregationType } from "../api/gen/types/v1/types_pb.ts";

const DEFAULT_MAX_NODES = 8192;

export async function handleRender(url: URL, tenants: string[], querier: Querier) {
  const q = url.searchParams;
  const query = q.get("query");
  if (!query) throw badRequest("query is required, e.g. query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"app\"}");
  let parsed;
  try {
    parsed = parseQuery(query);
  } catch (e) {
    throw badRequest(`invalid query ${JSON.stringify(query)}: ${e instanceof Error ? e.message : e}`);
  }
  if (!parsed.profileTypeId) throw badRequest(`query ${JSON.stringify(query)} names no profile type: put its ID before the braces`);
  let pt;
  try {
    pt = parseProfileTypeId(parsed.profileTypeId);
  } catch (e) {
    throw badRequest(e instanceof Error ? e.message : String(e));
  }
  const now = Date.now();
  const from = parseAttime(q.get("from"), now - 3600_000);
  const until = parseAttime(q.get("until"), now);
  if (until <= from) throw badRequest("invalid time range: until must be after from");
  // `maxNodes` wins over `max-nodes`; 0 or invalid means the default.
  const mn = Number(q.get("maxNodes") ?? q.get("max-nodes") ?? "0");
  const maxNodes = Number.isFinite(mn) && mn > 0 ? Math.floor(mn) : DEFAULT_MAX_NODES;
  const groupBy = q.getAll("groupBy").filter((g) => g !== "");
  const aggregation = q.get("aggregation") === "avg" ? TimeSeriesAggregationType.AVERAGE : TimeSeriesAggregationType.SUM;
  const labelSelector = formatSelector(parsed.matchers);

  const tree = await querier.selectMergeTree(
    tenants,
    create(SelectMergeStacktracesRequestSchema, {
      profileTypeID: parsed.profileTypeId,
      labelSelector,
      start: BigInt(from),
      end: BigInt(until),
    }),
  );
  const flamegraph = flamegraphFromTree(tree, maxNodes);

  const step = calcPointInterval(from, until);
  const series = (
    await querier.selectSeries(
    tenants,
    create(SelectSeriesRequestSchema, {
      profileTypeID: parsed.profileTypeId,
      labelSelector,
      start: BigInt(from),
      end: BigInt(until),
      step,
      groupBy: groupBy.slice(0, 1),
      aggregation,
    }),
  )
  ).series;
  const toPoints = (s: (typeof series)[number]) => s.points.map((p) => ({ timestamp: Number(p.timestamp), value: p.value }));
  const all = series.flatMap(toPoints);
  const timeline = timelineFromPoints(all, from, until, step);
  let groups: Record<string, ReturnType<typeof timelineFromPoints>> | null = null;
  if (groupBy.length) {
    groups = {};
    for (const s of series) {
      const key = s.labels.find((l) => l.name === groupBy[0])?.value ?? "*";
      groups[key] = timelineFromPoints(toPoints(s), from, until, step);
    }
  }
  return flamebearerResponse({ flamegraph, sampleType: pt.sampleType, sampleUnit: pt.sampleUnit, timeline, groups });
}

/** `?label=__name__` lists profile type IDs, as Pyroscope answers; other labels list their values. */
export async function handleLabelValues(url: URL, tenants: string[], querier: Querier): Promise<string[]> {
  const label = url.searchParams.get("label");
  if (!label) throw badRequest("label is required");
  if (label === "__name__") {
    return (await querier.profileTypes(tenants, { start: 0n, end: 0n } as never)).profileTypes.map((p) => p.ID);
  }
  const match = url.searchParams.getAll("match[]").concat(url.searchParams.getAll("query"));
  return (await querier.labelValues(tenants, { name: label, matchers: match, start: 0n, end: 0n } as never)).names;
}
