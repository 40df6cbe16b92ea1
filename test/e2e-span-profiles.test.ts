// End to end: span profiles. Samples labelled with a span id (`profile_id` from older Go SDKs and
// JFR, `span_id` from the OpenTelemetry integrations) keep it per sample, not as a series label;
// SelectMergeSpanProfile merges only the selected spans' samples, from the head and from blocks,
// as a flame graph or as Pyroscope's tree bytes. The oracle is the fixture read by protobuf-es.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { toBinary } from "@bufbuild/protobuf";
import { ProfileSchema, type Profile as PprofMessage } from "../server/api/gen/google/v1/profile_pb.ts";
import { collapsed, treeFromBytes } from "../storage/model/tree.ts";
import { collapsedFromFlamegraph } from "./helpers/flamegraph-collapse.ts";
import { collapse, FIXTURES, readPprof } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const START = Date.now() - 3600_000;
const END = Date.now() + 3600_000;
let s: RunningServer;

/** go.cpu.labels.pprof: 480 samples, 432 of them with a `profile_id` of 16 hex digits. */
const legacy = readPprof(FIXTURES + "pprof/go.cpu.labels.pprof");
legacy.timeNanos = BigInt(Date.now() - 60_000) * 1000000n;

/**
 * The same profile as the OpenTelemetry Go integration labels it: `span_id` instead of
 * `profile_id`, and a `span_name` per sample (from its `function` label).
 */
function otelVariant(): PprofMessage {
  const p = readPprof(FIXTURES + "pprof/go.cpu.labels.pprof");
  p.timeNanos = legacy.timeNanos;
  const str = (x: string) => {
    let i = p.stringTable.indexOf(x);
    if (i < 0) i = p.stringTable.push(x) - 1;
    return BigInt(i);
  };
  const profileId = str("profile_id");
  const spanId = str("span_id");
  const spanName = str("span_name");
  const fn = str("function");
  for (const sample of p.sample) {
    const f = sample.label.find((l) => l.key === fn);
    for (const l of sample.label) if (l.key === profileId) l.key = spanId;
    if (f) sample.label.push({ ...f, key: spanName, str: str(`GET /${p.stringTable[Number(f.str)]}`) });
  }
  return p;
}

/** The oracle: stacks of the samples whose span label is in `ids`, collapsed root first. */
function spanCollapsed(p: PprofMessage, ids: Set<string>, key = "profile_id"): Map<string, number> {
  const fn = new Map(p.function.map((f) => [f.id, p.stringTable[Number(f.name)]]));
  const loc = new Map(p.location.map((l) => [l.id, l]));
  const out = new Map<string, number>();
  for (const smp of p.sample) {
    const span = smp.label.find((l) => p.stringTable[Number(l.key)] === key);
    if (!span || !ids.has(p.stringTable[Number(span.str)])) continue;
    const frames: string[] = [];
    for (let i = smp.locationId.length - 1; i >= 0; i--) {
      const l = loc.get(smp.locationId[i])!;
      for (let j = l.line.length - 1; j >= 0; j--) frames.push(fn.get(l.line[j].functionId) ?? "");
    }
    const k = frames.join(";");
    const v = Number(smp.value[1]);
    if (v !== 0) out.set(k, (out.get(k) ?? 0) + v);
  }
  return out;
}

const spanIds = [...new Set(legacy.sample.flatMap((smp) => smp.label.filter((l) => legacy.stringTable[Number(l.key)] === "profile_id").map((l) => legacy.stringTable[Number(l.str)])))];
const sortedEntries = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));

async function ingest(service: string, p: PprofMessage) {
  const r = await fetch(`${s.url}/ingest?format=pprof&name=${service}`, { method: "POST", body: toBinary(ProfileSchema, p) });
  expect(r.status, await r.clone().text()).toBe(200);
}

async function spanQuery(service: string, spanSelector: string[], format?: string): Promise<Response> {
  return fetch(`${s.url}/querier.v1.QuerierService/SelectMergeSpanProfile`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ profileTypeID: CPU, labelSelector: `{service_name="${service}"}`, spanSelector, start: START, end: END, ...(format ? { format } : {}) }),
  });
}

async function spanFlamegraph(service: string, ids: string[]): Promise<Map<string, number>> {
  const r = await spanQuery(service, ids);
  expect(r.status, await r.clone().text()).toBe(200);
  const body = await r.json();
  return body.flamegraph ? collapsedFromFlamegraph(body.flamegraph) : new Map();
}

async function spanTree(service: string, ids: string[]): Promise<Map<string, number>> {
  const r = await spanQuery(service, ids, "PROFILE_FORMAT_TREE");
  expect(r.status, await r.clone().text()).toBe(200);
  const body = await r.json();
  return collapsed(treeFromBytes(Buffer.from(body.tree ?? "", "base64")));
}

/** Selections of span ids: one, a few with an unknown one, every one. */
const SELECTIONS: [string, string[]][] = [
  ["one span", spanIds.slice(0, 1)],
  ["ten spans and an unknown one", [...spanIds.slice(20, 30), "0123456789abcdef"]],
  ["every span", spanIds],
];

beforeAll(async () => {
  s = await startServer();
  await ingest("span-legacy", legacy);
  await ingest("span-otel", otelVariant());
});

afterAll(async () => {
  await s?.stop();
  removeDir(s?.dataDir);
});

describe("span profiles", () => {
  test("the fixture links most samples to spans", () => {
    expect(spanIds.length).toBeGreaterThan(400);
    expect(spanCollapsed(legacy, new Set(spanIds)).size).toBeGreaterThan(1);
  });

  test("span ids stay with the samples: no series per span; span_name is a series label", async () => {
    const names = await (
      await fetch(`${s.url}/querier.v1.QuerierService/LabelNames`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ start: START, end: END }) })
    ).json();
    expect(names.names).not.toContain("profile_id");
    expect(names.names).not.toContain("span_id");
    expect(names.names).toContain("span_name");
    const values = await (
      await fetch(`${s.url}/querier.v1.QuerierService/LabelValues`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "span_name", matchers: ['{service_name="span-otel"}'], start: START, end: END }),
      })
    ).json();
    expect(values.names).toEqual(["GET /fast", "GET /slow"]);
  });

  for (const stage of ["from the head", "from a block"]) {
    describe(stage, () => {
      beforeAll(async () => {
        if (stage === "from a block") expect((await fetch(`${s.url}/ingester/flush`, { method: "POST" })).status).toBe(200);
      });

      for (const [what, ids] of SELECTIONS) {
        test(`${what}: flame graph and tree equal the oracle, for profile_id and span_id alike`, async () => {
          const want = sortedEntries(spanCollapsed(legacy, new Set(ids)));
          expect(want.length).toBeGreaterThan(0);
          expect(sortedEntries(await spanFlamegraph("span-legacy", ids))).toEqual(want);
          expect(sortedEntries(await spanTree("span-legacy", ids))).toEqual(want);
          expect(sortedEntries(await spanFlamegraph("span-otel", ids))).toEqual(want);
        });
      }

      test("unknown spans and an empty selector select nothing; ordinary queries still count every sample", async () => {
        expect((await spanFlamegraph("span-legacy", ["00000000000000ff"])).size).toBe(0);
        expect((await spanFlamegraph("span-legacy", [])).size).toBe(0);
        // The all-zero id is what samples without a span hold (48 in this fixture): not a span.
        expect((await spanFlamegraph("span-legacy", ["0000000000000000"])).size).toBe(0);
        const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ profileTypeID: CPU, labelSelector: '{service_name="span-legacy"}', start: START, end: END }),
        });
        const total = legacy.sample.reduce((n, smp) => n + Number(smp.value[1]), 0);
        expect(Number((await r.json()).flamegraph.total)).toBe(total);
        // The same merge as tree bytes (PROFILE_FORMAT_TREE) holds every stack.
        const t = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ profileTypeID: CPU, labelSelector: '{service_name="span-legacy"}', start: START, end: END, format: "PROFILE_FORMAT_TREE" }),
        });
        const tree = collapsed(treeFromBytes(Buffer.from((await t.json()).tree, "base64")));
        expect(sortedEntries(tree)).toEqual(sortedEntries(collapse(legacy, 1)));
      });
    });
  }

  test("after kill -9, the WAL brings the span ids back", async () => {
    await ingest("span-wal", legacy);
    await s.kill9();
    s = await startServer({ dataDir: s.dataDir });
    const ids = spanIds.slice(40, 60);
    expect(sortedEntries(await spanFlamegraph("span-wal", ids))).toEqual(sortedEntries(spanCollapsed(legacy, new Set(ids))));
  });

  test("the DOT format is refused as unimplemented, as by Pyroscope's query-frontend", async () => {
    const r = await spanQuery("span-legacy", spanIds.slice(0, 1), "PROFILE_FORMAT_DOT");
    expect(r.status).toBe(501);
    expect((await r.json()).message).toContain("DOT");
  });

  test("a malformed span id is a 400 naming it", async () => {
    for (const bad of ["abc", "zz0000000000000z", "0123456789abcdef0"]) {
      const r = await spanQuery("span-legacy", [bad]);
      expect(r.status).toBe(400);
      expect((await r.json()).message).toContain(bad);
    }
  });
});
