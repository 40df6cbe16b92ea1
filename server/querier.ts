// The querier: answers querier.v1.QuerierService over every store of a tenant (today the head),
// validating requests as Pyroscope does and merging the stores' answers.

import { create } from "@bufbuild/protobuf";
import { mergedProfileShell, type ProfileReader, type SeriesPoints, type TimeRange } from "../storage/head/read.ts";
import { labelsKey, type Labels } from "../storage/model/labels.ts";
import type { Profile } from "../storage/model/profile.ts";
import { mergeProfiles } from "../storage/model/merge-profiles.ts";
import { parseProfileTypeId } from "../storage/model/profile-type.ts";
import { parseSelector, type Matcher } from "../storage/model/selector.ts";
import { flamegraphFromTree, type FlameGraph } from "../storage/model/flamegraph.ts";
import { Tree, treeToBytes } from "../storage/model/tree.ts";
import { parseSpanId } from "../storage/model/span-id.ts";
import type {
  ProfileTypesRequest,
  SelectMergeProfileRequest,
  SelectMergeSpanProfileRequest,
  SelectMergeStacktracesRequest,
  SelectSeriesRequest,
  SeriesRequest,
} from "./api/gen/querier/v1/querier_pb.ts";
import { FlameGraphSchema, ProfileFormat, ProfileTypesResponseSchema, SelectSeriesResponseSchema, SeriesResponseSchema } from "./api/gen/querier/v1/querier_pb.ts";
import type { LabelNamesRequest, LabelValuesRequest } from "./api/gen/types/v1/types_pb.ts";
import { TimeSeriesAggregationType } from "./api/gen/types/v1/types_pb.ts";
import { ApiError, badRequest } from "./errors.ts";
import { toPprofMessage } from "./api/pprof-encode.ts";

export interface QuerierLimits {
  maxFlamegraphNodesDefault: number;
  maxFlamegraphNodesMax: number;
}

export interface MergeResult {
  tree: Tree;
  flamegraph: FlameGraph;
}

function matchersOf(selectors: string[]): Matcher[] {
  const out: Matcher[] = [];
  for (const s of selectors) {
    if (s.trim() === "") continue;
    try {
      out.push(...parseSelector(s));
    } catch (e) {
      throw badRequest(`invalid label selector ${JSON.stringify(s)}: ${e instanceof Error ? e.message : e}`);
    }
  }
  return out;
}

function requireRange(start: bigint, end: bigint): TimeRange {
  if (start === 0n || end === 0n) throw badRequest("missing time range in the query");
  if (start > end) throw badRequest("query start time is after end time");
  return { start: Number(start), end: Number(end) };
}

function optionalRange(start: bigint, end: bigint): TimeRange {
  if (start === 0n && end === 0n) return { start: 0, end: 0 };
  if (start > end && end !== 0n) throw badRequest("query start time is after end time");
  return { start: Number(start), end: end === 0n ? Number.MAX_SAFE_INTEGER : Number(end) };
}

function checkProfileType(id: string) {
  if (!id) throw badRequest("profile_typeID is required");
  try {
    parseProfileTypeId(id);
  } catch (e) {
    throw badRequest(e instanceof Error ? e.message : String(e));
  }
}

/**
 * The span selector of SelectMergeSpanProfile: span ids of 16 hex digits, as Pyroscope requires.
 * The all-zero id is how samples without a span are stored, so it selects nothing.
 */
function spanSelector(ids: string[]): Set<bigint> {
  const out = new Set<bigint>();
  for (const s of ids) {
    if (s.length !== 16) throw badRequest(`invalid span id length: ${JSON.stringify(s)} (a span id is 16 hex digits)`);
    const id = parseSpanId(s);
    if (id !== 0n) out.add(id);
    else if (!/^0{16}$/.test(s)) throw badRequest(`invalid span id ${JSON.stringify(s)}: not hexadecimal`);
  }
  return out;
}

/**
 * A merged tree in the format asked for: the flame graph (the default) or Pyroscope's tree bytes,
 * both truncated to maxNodes. DOT, like Pyroscope v1's query-frontend, is not served.
 */
function treeResponse(tree: Tree, maxNodes: number, format: ProfileFormat) {
  if (format === ProfileFormat.TREE) return { tree: treeToBytes(tree, maxNodes) };
  if (format === ProfileFormat.DOT) throw new ApiError("unimplemented", "the DOT format is not supported; ask for FLAMEGRAPH or TREE");
  const fg = flamegraphFromTree(tree, maxNodes);
  return {
    flamegraph: create(FlameGraphSchema, {
      names: fg.names,
      levels: fg.levels.map((values) => ({ values: values.map((v) => BigInt(Math.round(v))) })),
      total: BigInt(Math.round(fg.total)),
      maxSelf: BigInt(Math.round(fg.maxSelf)),
    }),
  };
}

/** Trees of several readers merged into one (the first, when there is one). */
function mergeTrees(trees: Tree[]): Tree {
  if (trees.length === 1) return trees[0];
  const tree = new Tree();
  for (const t of trees) tree.merge(t);
  return tree;
}

/** Blocks queried at once: each holds its decoded symbols while it runs, so a wide query must not open them all together. */
const FAN_OUT = 4;

/** `fn` over every reader, at most FAN_OUT at a time; results in the readers' order. */
async function fanOut<T>(rs: ProfileReader[], fn: (r: ProfileReader) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(rs.length);
  let next = 0;
  const worker = async () => {
    while (next < rs.length) {
      const i = next++;
      out[i] = await fn(rs[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FAN_OUT, rs.length) }, worker));
  return out;
}

export function createQuerier(deps: { readers: (tenants: string[]) => ProfileReader[]; limits: QuerierLimits }) {
  const { readers, limits } = deps;

  function maxNodes(n: bigint | undefined): number {
    const v = n === undefined ? 0 : Number(n);
    if (v < 0) return -1;
    if (v > limits.maxFlamegraphNodesMax)
      throw badRequest(`max flamegraph nodes limit ${v} is greater than allowed ${limits.maxFlamegraphNodesMax}`);
    return v === 0 ? limits.maxFlamegraphNodesDefault : v;
  }

  function selectQuery(req: { profileTypeID: string; labelSelector: string; start: bigint; end: bigint }) {
    checkProfileType(req.profileTypeID);
    return { profileTypeId: req.profileTypeID, matchers: matchersOf([req.labelSelector]), ...requireRange(req.start, req.end) };
  }

  async function mergeTree(tenants: string[], req: SelectMergeStacktracesRequest): Promise<Tree> {
    const q = selectQuery(req);
    return mergeTrees(await fanOut(readers(tenants), (r) => r.selectMergeTree(q)));
  }

  return {
    async profileTypes(tenants: string[], req: ProfileTypesRequest) {
      const range = optionalRange(req.start, req.end);
      const ids = new Set<string>();
      for (const part of await fanOut(readers(tenants), (r) => r.profileTypes(range))) for (const id of part) ids.add(id);
      const profileTypes = [...ids].sort().map((ID) => {
        const p = parseProfileTypeId(ID);
        return { ID, name: p.name, sampleType: p.sampleType, sampleUnit: p.sampleUnit, periodType: p.periodType, periodUnit: p.periodUnit };
      });
      return create(ProfileTypesResponseSchema, { profileTypes });
    },

    async labelNames(tenants: string[], req: LabelNamesRequest) {
      const ms = matchersOf(req.matchers);
      const range = optionalRange(req.start, req.end);
      const names = new Set<string>();
      for (const part of await fanOut(readers(tenants), (r) => r.labelNames(ms, range))) for (const n of part) names.add(n);
      return { names: [...names].sort() };
    },

    async labelValues(tenants: string[], req: LabelValuesRequest) {
      if (!req.name) throw badRequest("name is required");
      const ms = matchersOf(req.matchers);
      const range = optionalRange(req.start, req.end);
      const values = new Set<string>();
      for (const part of await fanOut(readers(tenants), (r) => r.labelValues(req.name, ms, range))) for (const v of part) values.add(v);
      return { names: [...values].sort() };
    },

    async series(tenants: string[], req: SeriesRequest) {
      const ms = matchersOf(req.matchers);
      const range = optionalRange(req.start, req.end);
      const seen = new Map<string, Labels>();
      const only = req.labelNames.length ? new Set(req.labelNames) : null;
      for (const part of await fanOut(readers(tenants), (r) => r.series(ms, range))) {
        for (const ls of part) {
          const kept = only ? ls.filter((l) => only.has(l.name)) : ls;
          seen.set(labelsKey(kept), kept);
        }
      }
      const labelsSet = [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, labels]) => ({ labels }));
      return create(SeriesResponseSchema, { labelsSet });
    },

    async selectMergeStacktraces(tenants: string[], req: SelectMergeStacktracesRequest) {
      const n = maxNodes(req.maxNodes);
      return treeResponse(await mergeTree(tenants, req), n, req.format);
    },

    /** The merge of only the samples of the selected spans (Grafana's "profiles for this span"). */
    async selectMergeSpanProfile(tenants: string[], req: SelectMergeSpanProfileRequest) {
      const n = maxNodes(req.maxNodes);
      const q = { ...selectQuery(req), spans: spanSelector(req.spanSelector) };
      const tree = q.spans.size === 0 ? new Tree() : mergeTrees(await fanOut(readers(tenants), (r) => r.selectMergeSpanTree(q)));
      return treeResponse(tree, n, req.format);
    },

    /** The merged tree itself, for /pyroscope/render and tests. */
    selectMergeTree(tenants: string[], req: SelectMergeStacktracesRequest): Promise<Tree> {
      return mergeTree(tenants, req);
    },

    async selectMergeProfile(tenants: string[], req: SelectMergeProfileRequest) {
      const q = selectQuery(req);
      const parts: Profile[] = await fanOut(readers(tenants), (r) => r.selectMergeProfile(q));
      return toPprofMessage(parts.length ? mergeProfiles(parts) : mergedProfileShell(q));
    },

    async selectSeries(tenants: string[], req: SelectSeriesRequest) {
      const q = selectQuery(req);
      if (!(req.step > 0)) throw badRequest("step must be non-zero");
      const aggregation = req.aggregation === TimeSeriesAggregationType.AVERAGE ? "average" : "sum";
      const merged = new Map<string, SeriesPoints>();
      const seriesQuery = { ...q, groupBy: req.groupBy, stepMs: req.step * 1000, aggregation } as const;
      for (const part of await fanOut(readers(tenants), (r) => r.selectSeries(seriesQuery))) {
        for (const s of part) {
          const k = labelsKey(s.labels);
          const have = merged.get(k);
          if (!have) merged.set(k, s);
          else have.points.push(...s.points);
        }
      }
      let series = [...merged.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, s]) => s);
      if (req.limit !== undefined && req.limit > 0n && series.length > Number(req.limit)) {
        const total = (s: SeriesPoints) => s.points.reduce((a, p) => a + p.value, 0);
        series = series.sort((a, b) => total(b) - total(a)).slice(0, Number(req.limit));
      }
      return create(SelectSeriesResponseSchema, {
        series: series.map((s) => ({ labels: s.labels, points: s.points.map((p) => ({ value: p.value, timestamp: BigInt(p.timestamp) })) })),
      });
    },
  };
}

export type Querier = ReturnType<typeof createQuerier>;
