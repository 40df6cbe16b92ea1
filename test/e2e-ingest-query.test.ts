// End to end: the real process ingests real fixtures through /ingest and Push, answers the query
// API with the fixtures' own totals and stacks, survives SIGKILL, and keeps tenants apart.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { fixGoProfile } from "../server/ingest/pprof-fixes/go-profile-fix.ts";
import { profileLanguage } from "../server/ingest/pprof-fixes/profile-language.ts";
import { collapseProfile } from "../storage/model/collapse.ts";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { PushRequestSchema } from "../server/api/gen/push/v1/push_pb.ts";
import { collapse, FIXTURES, readPprof, sortedCollapsed, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const CPU = ["process_cpu:samples:count:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"];
const FIXTURE_TYPES: Record<string, { metric: string; types: string[] }> = {
  "cpu.pb.gz": { metric: "process_cpu", types: CPU },
  "go.cpu.labels.pprof": { metric: "process_cpu", types: CPU },
  heap: {
    metric: "memory",
    types: [
      "memory:alloc_objects:count:space:bytes",
      "memory:alloc_space:bytes:space:bytes",
      "memory:inuse_objects:count:space:bytes",
      "memory:inuse_space:bytes:space:bytes",
    ],
  },
  profile_java: { metric: "process_cpu", types: ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"] },
  "nodejs-wall.pb.gz": { metric: "wall", types: ["wall:samples:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"] },
};
const NAMES = Object.keys(FIXTURE_TYPES);
const appOf = (f: string, via: string) => `e2e-${f.replace(/[^a-z0-9]/gi, "-")}-${via}`;
const START = 1000; // ms: the fixtures carry their original (old) timestamps
const END = Date.now() + 3600_000;

async function rpc(s: RunningServer, method: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function mergeProfileCollapsed(s: RunningServer, typeId: string, selector: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto", ...headers },
    body: toBinary(
      (await import("../server/api/gen/querier/v1/querier_pb.ts")).SelectMergeProfileRequestSchema,
      create((await import("../server/api/gen/querier/v1/querier_pb.ts")).SelectMergeProfileRequestSchema, {
        profileTypeID: typeId,
        labelSelector: selector,
        start: BigInt(START),
        end: BigInt(END),
      }),
    ),
  });
  expect(r.status).toBe(200);
  return collapse(fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer())), 0);
}

async function ingestAll(s: RunningServer, headers: Record<string, string> = {}) {
  for (const f of NAMES) {
    const body = readFileSync(FIXTURES + "pprof/" + f);
    const name = encodeURIComponent(`${appOf(f, "ingest")}{fixture=${f},via=ingest}`);
    const r = await fetch(`${s.url}/ingest?format=pprof&name=${name}&spyName=gospy&from=${Math.floor(Date.now() / 1000)}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream", ...headers },
      body,
    });
    expect(r.status, `${f}: ${await r.clone().text()}`).toBe(200);
  }
  // Push: binary Connect, the way Grafana Alloy sends, gzipped pprof per sample.
  const req = create(PushRequestSchema, {
    series: NAMES.map((f) => {
      const raw = readFileSync(FIXTURES + "pprof/" + f);
      return {
        labels: [
          { name: "__name__", value: FIXTURE_TYPES[f].metric },
          { name: "service_name", value: appOf(f, "push") },
          { name: "__delta__", value: "false" },
          { name: "fixture", value: f },
        ],
        samples: [{ rawProfile: raw[0] === 0x1f ? raw : gzipSync(raw), ID: crypto.randomUUID() }],
      };
    }),
  });
  const r = await fetch(`${s.url}/push.v1.PusherService/Push`, {
    method: "POST",
    headers: { "content-type": "application/proto", ...headers },
    body: toBinary(PushRequestSchema, req),
  });
  expect(r.status, await r.clone().text()).toBe(200);
}

/** Every query answer the acceptance criteria name, as one comparable object. */
async function snapshot(s: RunningServer, headers: Record<string, string> = {}) {
  const out: Record<string, unknown> = {};
  out.types = (await rpc(s, "ProfileTypes", { start: START, end: END }, headers)).profileTypes ?? [];
  out.names = await rpc(s, "LabelNames", { start: START, end: END }, headers);
  out.services = await rpc(s, "LabelValues", { name: "service_name", start: START, end: END }, headers);
  for (const f of NAMES)
    for (const via of ["ingest", "push"])
      for (const t of FIXTURE_TYPES[f].types) {
        const sel = `{service_name="${appOf(f, via)}"}`;
        out[`fg ${f} ${via} ${t}`] = await rpc(s, "SelectMergeStacktraces", { profileTypeID: t, labelSelector: sel, start: START, end: END, maxNodes: -1 }, headers);
      }
  return out;
}

describe("end to end: real fixtures in, queried back", () => {
  let s: RunningServer;
  let dataDir: string;
  let before: Record<string, unknown>;

  beforeAll(async () => {
    dataDir = tempDir();
    s = await startServer({ dataDir });
    await ingestAll(s);
  });
  afterAll(async () => {
    await s?.stop();
    removeDir(dataDir);
  });

  test("ProfileTypes lists each fixture's profile type IDs", async () => {
    const got = ((await rpc(s, "ProfileTypes", { start: START, end: END })).profileTypes ?? []).map((p: { ID: string }) => p.ID);
    const want = [...new Set(NAMES.flatMap((f) => FIXTURE_TYPES[f].types))].sort();
    expect(got).toEqual(want);
    for (const f of NAMES) {
      const per = await rpc(s, "Series", { matchers: [`{service_name="${appOf(f, "ingest")}"}`], labelNames: ["__profile_type__"], start: START, end: END });
      const ids = per.labelsSet.map((l: { labels: { value: string }[] }) => l.labels[0].value).sort();
      expect(ids, f).toEqual([...FIXTURE_TYPES[f].types].sort());
    }
  });

  test("SelectMergeStacktraces totals equal the fixtures' sample column sums", async () => {
    for (const f of NAMES) {
      const p = readPprof(FIXTURES + "pprof/" + f);
      for (const via of ["ingest", "push"]) {
        for (const t of FIXTURE_TYPES[f].types) {
          const idx = p.sampleType.findIndex((st) => `${p.stringTable[Number(st.type)]}:${p.stringTable[Number(st.unit)]}` === t.split(":").slice(1, 3).join(":"));
          expect(idx, `${f} ${t}`).toBeGreaterThanOrEqual(0);
          const fg = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: t, labelSelector: `{service_name="${appOf(f, via)}"}`, start: START, end: END })).flamegraph;
          expect(Number(fg.total), `${f} ${via} ${t}`).toBe(sumColumn(p, idx));
        }
      }
    }
  });

  test("SelectMergeProfile, collapsed, equals the fixture collapsed", async () => {
    for (const f of NAMES) {
      const p = readPprof(FIXTURES + "pprof/" + f);
      for (const t of FIXTURE_TYPES[f].types) {
        const idx = p.sampleType.findIndex((st) => `${p.stringTable[Number(st.type)]}:${p.stringTable[Number(st.unit)]}` === t.split(":").slice(1, 3).join(":"));
        // Go profiles are stored after Pyroscope's Go fix-ups (type parameters, truncated stacks),
        // which are checked against Pyroscope's own fixed fixtures in server/ingest/pprof-fixes.
        const model = decodePprof(new Uint8Array(gunzipIfNeeded(readFileSync(FIXTURES + "pprof/" + f))));
        const want = sortedCollapsed(profileLanguage(undefined, model) === "go" ? collapseProfile(fixGoProfile(model), idx) : collapse(p, idx));
        for (const via of ["ingest", "push"]) {
          const got = sortedCollapsed(await mergeProfileCollapsed(s, t, `{service_name="${appOf(f, via)}"}`));
          expect(got.length, `${f} ${via} ${t}`).toBe(want.length);
          expect(got, `${f} ${via} ${t}`).toEqual(want);
        }
      }
    }
  });

  test("label filters select the right subset (sample labels become series labels)", async () => {
    const f = "go.cpu.labels.pprof";
    const p = readPprof(FIXTURES + "pprof/" + f);
    // Pick the first series-worthy string sample label that takes several values.
    const values = new Map<bigint, Set<bigint>>();
    for (const smp of p.sample) for (const l of smp.label) if (l.str !== 0n) values.set(l.key, (values.get(l.key) ?? new Set()).add(l.str));
    const keyIdx = [...values].find(([k, vs]) => vs.size > 1 && !["profile_id", "span_id", "trace_id"].includes(p.stringTable[Number(k)]))?.[0];
    expect(keyIdx).toBeDefined();
    const key = p.stringTable[Number(keyIdx)];
    const byValue = new Map<string, number>();
    for (const smp of p.sample) {
      const l = smp.label.find((x) => x.key === keyIdx);
      const v = l ? p.stringTable[Number(l.str)] : "";
      byValue.set(v, (byValue.get(v) ?? 0) + Number(smp.value[1]));
    }
    expect(byValue.size).toBeGreaterThan(1);
    const got = (await rpc(s, "LabelValues", { name: key, matchers: [`{service_name="${appOf(f, "ingest")}"}`], start: START, end: END })).names ?? [];
    expect(got.sort()).toEqual([...byValue.keys()].filter((v) => v !== "").sort());
    for (const [v, want] of byValue) {
      for (const op of ["=", "!="] as const) {
        const sel = `{service_name="${appOf(f, "ingest")}", ${key}${op}"${v}"}`;
        const fg = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: CPU[1], labelSelector: sel, start: START, end: END })).flamegraph;
        const total = sumColumn(p, 1);
        expect(Number(fg.total), sel).toBe(op === "=" ? want : total - want);
      }
    }
    // Regex matchers select by pattern, anchored.
    const anyV = [...byValue.keys()].find((v) => v !== "")!;
    const re = `{service_name=~"e2e-go-cpu-labels-pprof-.*", ${key}=~"${anyV.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&")}"}`;
    const fgRe = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: CPU[1], labelSelector: re, start: START, end: END })).flamegraph;
    expect(Number(fgRe.total)).toBe(2 * byValue.get(anyV)!); // ingest + push copies
    const fgNre = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: CPU[1], labelSelector: `{service_name!~"e2e-go-cpu-labels-pprof-.*|e2e-cpu-pb-gz-.*"}`, start: START, end: END })).flamegraph;
    // Of the CPU-time fixtures only Java is left (ingested twice).
    expect(Number(fgNre.total)).toBe(2 * sumColumn(readPprof(FIXTURES + "pprof/profile_java"), 0));
  });

  test("/pyroscope/render agrees with SelectMergeStacktraces", async () => {
    for (const f of NAMES) {
      const t = FIXTURE_TYPES[f].types[0];
      const sel = `{service_name="${appOf(f, "ingest")}"}`;
      const fg = (await rpc(s, "SelectMergeStacktraces", { profileTypeID: t, labelSelector: sel, start: START, end: END })).flamegraph;
      const r = await fetch(`${s.url}/pyroscope/render?query=${encodeURIComponent(t + sel)}&from=${START}&until=${END}&format=json`);
      expect(r.status).toBe(200);
      const fb = await r.json();
      expect(fb.flamebearer.numTicks).toBe(Number(fg.total));
      expect(fb.flamebearer.names).toEqual(fg.names);
      expect(fb.flamebearer.levels).toEqual(fg.levels.map((l: { values?: string[] }) => (l.values ?? []).map(Number)));
      expect(fb.timeline.samples.reduce((a: number, b: number) => a + b, 0)).toBe(Number(fg.total));
    }
  });

  test("SelectSeries sums per step and groups by label", async () => {
    const f = "profile_java";
    const t = FIXTURE_TYPES[f].types[0];
    const total = sumColumn(readPprof(FIXTURES + "pprof/" + f), 0);
    const r = await rpc(s, "SelectSeries", { profileTypeID: t, labelSelector: `{fixture="${f}"}`, start: START, end: END, step: 3600, groupBy: ["service_name"] });
    expect(r.series.length).toBe(2);
    for (const series of r.series) {
      expect(series.labels.map((l: { name: string }) => l.name)).toEqual(["service_name"]);
      expect(series.points.reduce((a: number, p: { value: number }) => a + p.value, 0)).toBe(total);
    }
  });

  test("SIGKILL right after acknowledged writes loses nothing", async () => {
    before = await snapshot(s);
    await s.kill9();
    s = await startServer({ dataDir });
    const after = await snapshot(s);
    expect(after).toEqual(before);
  });
});

describe("multi-tenancy", () => {
  let s: RunningServer;
  const A = { "X-Scope-OrgID": "tenant-a" };
  const B = { "X-Scope-OrgID": "tenant-b" };
  beforeAll(async () => {
    s = await startServer({ args: ["--multitenancy"] });
    await ingestAll(s, A);
  });
  afterAll(async () => {
    await s?.stop();
    removeDir(s.dataDir);
  });

  test("a request without X-Scope-OrgID gets 401", async () => {
    const r = await fetch(`${s.url}/querier.v1.QuerierService/ProfileTypes`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(r.status).toBe(401);
    const w = await fetch(`${s.url}/ingest?name=x&format=folded`, { method: "POST", body: "a;b 1" });
    expect(w.status).toBe(401);
    expect((await w.json()).message).toBe("no org id");
  });

  test("tenant B sees none of tenant A's data", async () => {
    const a = await snapshot(s, A);
    expect((a.types as unknown[]).length).toBe(new Set(NAMES.flatMap((f) => FIXTURE_TYPES[f].types)).size);
    const b = await snapshot(s, B);
    expect(b.types).toEqual([]);
    expect((b.services as { names?: string[] }).names ?? []).toEqual([]);
    expect((b.names as { names?: string[] }).names ?? []).toEqual([]);
    for (const [k, v] of Object.entries(b)) if (k.startsWith("fg ")) expect(Number((v as { flamegraph: { total?: string } }).flamegraph.total ?? 0), k).toBe(0);
    const merged = await mergeProfileCollapsed(s, CPU[1], `{service_name="${appOf("cpu.pb.gz", "ingest")}"}`, B);
    expect(merged.size).toBe(0);
    const rb = await fetch(`${s.url}/pyroscope/render?query=${encodeURIComponent(CPU[1] + "{}")}&from=${START}&until=${END}`, { headers: B });
    expect((await rb.json()).flamebearer.numTicks).toBe(0);
  });
});

function gunzipIfNeeded(b: Buffer): Buffer {
  return b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
}
