// The official Pyroscope Node SDK (@pyroscope/nodejs, run under Node: under Bun its wall profile
// is empty) profiles a small program and uploads to the real server; the query API must then show
// its profile types, tags, wrapWithLabels label, hot functions and sane totals. The oracle is what
// the SDK actually sent (each upload is recorded by the app and decoded here with protobuf-es).
// Without Node on the machine the test is skipped, except in CI where Node must be there.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { join, resolve } from "node:path";
import type { Profile } from "../server/api/gen/google/v1/profile_pb.ts";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { collapse, readProfileBytes, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const ROOT = resolve(import.meta.dir, "..");
const node = Bun.which("node");
const mustHaveNode = process.env.CI === "true";
const APP = `node-sdk-e2e-${process.pid}`;
const FLUSH_MS = 1500;
const BURN_MS = 4000;
const APP_DEADLINE_MS = 25_000;

// From the SDK's sample types and Pyroscope's naming rules (pyroscope-api.md §2.5): any `wall`
// sample type makes the metric `wall`; `inuse_*` makes it `memory`; the period type completes the ID.
const WALL_NS = "wall:wall:nanoseconds:wall:nanoseconds";
const WALL_SAMPLES = "wall:samples:count:wall:nanoseconds";
const HEAP_SPACE = "memory:inuse_space:bytes:inuse_space:bytes";
const HEAP_OBJECTS = "memory:inuse_objects:count:inuse_space:bytes";

interface Upload {
  url: URL;
  method: string;
  contentType: string | null;
  status: number;
  answer: string;
  raw: Uint8Array;
  profile: Profile;
}

const str = (p: Profile, i: bigint) => p.stringTable[Number(i)];
const isWall = (u: Upload) => u.profile.sampleType.some((t) => str(u.profile, t.type) === "wall");
const columnOf = (p: Profile, typeId: string) => {
  const [, type, unit] = typeId.split(":");
  return p.sampleType.findIndex((t) => str(p, t.type) === type && str(p, t.unit) === unit);
};

/** Stack → value summed over every upload, for one profile type (the server's merge should equal it). */
function mergedCollapsed(uploads: Upload[], typeId: string, onlyLabel?: [string, string]): Map<string, number> {
  const out = new Map<string, number>();
  for (const u of uploads) {
    const idx = columnOf(u.profile, typeId);
    if (idx < 0) continue;
    let p = u.profile;
    if (onlyLabel) {
      const keep = p.sample.filter((s) => s.label.some((l) => str(p, l.key) === onlyLabel[0] && str(p, l.str) === onlyLabel[1]));
      p = { ...p, sample: keep };
    }
    for (const [k, v] of collapse(p, idx)) out.set(k, (out.get(k) ?? 0) + v);
  }
  return out;
}

/** The value of stacks passing through a function of the app named `fn`. */
function under(stacks: Map<string, number>, fn: string): number {
  const re = new RegExp(`(^|/)node-sdk-app\\.cjs:${fn}:\\d+$`);
  let t = 0;
  for (const [k, v] of stacks) if (k.split(";").some((f) => re.test(f))) t += v;
  return t;
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const sorted = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ${v}`).sort();

test("node is available where it must be", () => {
  if (mustHaveNode) expect(node, "CI must have Node (>= 20.20.2) for the Pyroscope Node SDK test").not.toBeNull();
  else if (!node) console.warn("node not found: skipping the @pyroscope/nodejs end-to-end test (it needs Node, not Bun)");
});

describe.skipIf(!node)("@pyroscope/nodejs under Node uploads to Hearth", () => {
  let s: RunningServer;
  let uploads: Upload[] = [];
  let profiledMs = 0;
  let start = 0;
  let end = 0;

  async function rpc(method: string, body: unknown) {
    const r = await fetch(`${s.url}/querier.v1.QuerierService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${method}: ${r.status} ${text}`);
    return JSON.parse(text);
  }
  const fgTotal = async (typeId: string, selector: string) =>
    Number((await rpc("SelectMergeStacktraces", { profileTypeID: typeId, labelSelector: selector, start, end })).flamegraph?.total ?? 0);
  async function mergeProfile(typeId: string, selector: string): Promise<Map<string, number>> {
    const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: toBinary(
        SelectMergeProfileRequestSchema,
        create(SelectMergeProfileRequestSchema, { profileTypeID: typeId, labelSelector: selector, start: BigInt(start), end: BigInt(end) }),
      ),
    });
    expect(r.status, `SelectMergeProfile ${typeId} ${selector}`).toBe(200);
    const p = fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer()));
    const idx = columnOf(p, typeId);
    return idx < 0 ? new Map() : collapse(p, idx);
  }
  const sel = (extra = "") => `{service_name="${APP}"${extra}}`;

  beforeAll(async () => {
    start = Date.now() - 60_000;
    s = await startServer();
    const app = Bun.spawn([node!, join(ROOT, "test/helpers/node-sdk-app.cjs")], {
      cwd: ROOT,
      // DEBUG=pyroscope makes the SDK log rejected or failed uploads to stderr (it never throws).
      env: { ...process.env, HEARTH_URL: s.url, APP_NAME: APP, DURATION_MS: String(BURN_MS), FLUSH_MS: String(FLUSH_MS), DEBUG: "pyroscope" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => app.kill(9), APP_DEADLINE_MS);
    const [out, err, code] = await Promise.all([new Response(app.stdout).text(), new Response(app.stderr).text(), app.exited]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`node-sdk-app exited with ${code} (killed after ${APP_DEADLINE_MS} ms if 137):\n${err}\n${out.slice(0, 2000)}`);
    for (const line of out.trim().split("\n")) {
      const r = JSON.parse(line);
      if (r.kind === "done") profiledMs = r.profiledMs;
      if (r.kind !== "upload") continue;
      const raw = new Uint8Array(Buffer.from(r.body, "base64"));
      uploads.push({ url: new URL(r.url), method: r.method, contentType: r.contentType, status: r.status, answer: r.answer, raw, profile: readProfileBytes(raw) });
    }
    if (err.trim()) console.warn(`node-sdk-app stderr:\n${err}`);
    end = Date.now() + 60_000;
  }, 60_000);

  afterAll(async () => {
    if (!s) return;
    await s.stop();
    removeDir(s.dataDir);
  });

  test("Node is new enough for @pyroscope/nodejs 0.6.4 (engines: >= 20.20.2)", () => {
    const [maj, min, pat] = Bun.spawnSync([node!, "-p", "process.versions.node"]).stdout.toString().trim().split(".").map(Number);
    expect(maj * 1e6 + min * 1e3 + pat, `node ${maj}.${min}.${pat}`).toBeGreaterThanOrEqual(20_020_002);
  });

  test("the SDK's uploads: raw gzipped pprof to /ingest?format=pprof, tags in the name, every one accepted", () => {
    expect(profiledMs).toBeGreaterThanOrEqual(BURN_MS);
    const wall = uploads.filter(isWall);
    const heap = uploads.filter((u) => !isWall(u));
    // Periodic flushes every FLUSH_MS plus the final one on stop() (heap sends nothing on stop()).
    expect(wall.length).toBeGreaterThanOrEqual(2);
    expect(heap.length).toBeGreaterThanOrEqual(1);
    for (const u of uploads) {
      expect(u.status, `${u.url} → ${u.answer}`).toBe(200);
      expect(u.method).toBe("POST");
      expect(u.url.pathname).toBe("/ingest");
      expect(u.contentType).toBe("application/octet-stream");
      expect([u.raw[0], u.raw[1]]).toEqual([0x1f, 0x8b]);
      const q = u.url.searchParams;
      expect(q.get("format")).toBe("pprof");
      expect(q.get("spyName")).toBe("nodespy");
      expect(Number(q.get("until"))).toBeGreaterThanOrEqual(Number(q.get("from")));
      // No profile type in the name: wall and heap share it, told apart only by sample types.
      expect(q.get("name")).toStartWith(`${APP}{`);
      expect(q.get("name")).toContain("process.runtime.name=nodejs");
      expect(q.get("name")).toContain("region=eu-1");
      expect(q.get("name")).not.toContain("__name__");
    }
    // The SDK's sampleRate is ceil(1e6 / samplingDurationMs), not the real ~100 Hz: the server must
    // not use it for pprof (the totals test below would catch it).
    for (const u of wall) expect(u.url.searchParams.get("sampleRate")).toBe(String(Math.ceil(1e6 / FLUSH_MS)));
    for (const u of heap) expect(u.url.searchParams.has("sampleRate")).toBe(false);
  });

  test("ProfileTypes and the series' __profile_type__ are the wall and heap types the SDK sent", async () => {
    const want = [HEAP_OBJECTS, HEAP_SPACE, WALL_SAMPLES, WALL_NS].sort();
    // Cross-check the expectation against the uploads' own sample and period types.
    const fromUploads = new Set<string>();
    for (const u of uploads) {
      const p = u.profile;
      const metric = isWall(u) ? "wall" : "memory";
      const period = `${str(p, p.periodType!.type)}:${str(p, p.periodType!.unit)}`;
      for (const t of p.sampleType) fromUploads.add(`${metric}:${str(p, t.type)}:${str(p, t.unit)}:${period}`);
    }
    expect([...fromUploads].sort()).toEqual(want);
    const types = ((await rpc("ProfileTypes", { start, end })).profileTypes ?? []).map((p: { ID: string }) => p.ID).sort();
    expect(types).toEqual(want);
    const series = await rpc("Series", { matchers: [sel()], labelNames: ["__profile_type__"], start, end });
    const ids = [...new Set(series.labelsSet.map((l: { labels: { value: string }[] }) => l.labels[0].value))].sort();
    expect(ids).toEqual(want);
  });

  test("tags and the wrapWithLabels label are queryable labels (dots sanitized to underscores)", async () => {
    const names: string[] = (await rpc("LabelNames", { matchers: [sel()], start, end })).names ?? [];
    for (const n of ["service_name", "__name__", "region", "handler", "process_runtime_name", "process_runtime_version", "otel_scope_name", "otel_scope_version"])
      expect(names, n).toContain(n);
    expect(names.filter((n) => n.includes("."))).toEqual([]);
    const values = async (name: string) => ((await rpc("LabelValues", { name, matchers: [sel()], start, end })).names ?? []).sort();
    expect(await values("region")).toEqual(["eu-1"]);
    expect(await values("process_runtime_name")).toEqual(["nodejs"]);
    expect(await values("otel_scope_name")).toEqual(["com.grafana.pyroscope/nodejs"]);
    expect(await values("handler")).toEqual(["hot"]);
    expect(await values("__name__")).toEqual(["memory", "wall"]);
    expect(((await rpc("LabelValues", { name: "service_name", start, end })).names ?? []) as string[]).toContain(APP);
  });

  test("totals equal what the SDK sent and are sane: wall time ≈ time profiled, whatever sampleRate says", async () => {
    const wall = uploads.filter(isWall);
    for (const t of [WALL_NS, WALL_SAMPLES, HEAP_SPACE, HEAP_OBJECTS]) {
      const want = uploads.reduce((a, u) => a + (columnOf(u.profile, t) < 0 ? 0 : sumColumn(u.profile, columnOf(u.profile, t))), 0);
      expect(want, t).toBeGreaterThan(0);
      expect(await fgTotal(t, sel()), t).toBe(want);
      expect(await fgTotal(t, sel(`, region="eu-1"`)), t).toBe(want);
    }
    expect(await fgTotal(WALL_NS, sel(`, region="us-1"`))).toBe(0);
    // Wall time is sampled ~100 Hz; each sample is worth its elapsed nanoseconds, so the sum spans
    // the run. (A dropped flush can lose a round, hence the loose lower bound.)
    const wallNs = await fgTotal(WALL_NS, sel());
    expect(wallNs).toBeGreaterThan(0.4 * profiledMs * 1e6);
    expect(wallNs).toBeLessThan(1.5 * profiledMs * 1e6);
    // Nanoseconds per sample is about the pprof period (~10 ms), nothing like 1/sampleRate.
    const perSample = wallNs / (await fgTotal(WALL_SAMPLES, sel()));
    const meanPeriod = wall.reduce((a, u) => a + Number(u.profile.period), 0) / wall.length;
    expect(perSample).toBeGreaterThan(0.5 * meanPeriod);
    expect(perSample).toBeLessThan(2 * meanPeriod);
  });

  test("the burn functions carry the flame graph; the labelled one is under handler=hot", async () => {
    const got = await mergeProfile(WALL_NS, sel());
    expect(sorted(got)).toEqual(sorted(mergedCollapsed(uploads, WALL_NS)));
    const all = total(got);
    const hot = under(got, "burnHot");
    const cold = under(got, "burnCold");
    // The loop spends ~30 ms in burnHot per ~10 ms in burnCold; wall time counts even when descheduled.
    expect(hot / all).toBeGreaterThan(0.35);
    expect(cold / all).toBeGreaterThan(0.05);
    expect(hot).toBeGreaterThan(cold);

    const labelled = await mergeProfile(WALL_NS, sel(`, handler="hot"`));
    expect(sorted(labelled)).toEqual(sorted(mergedCollapsed(uploads, WALL_NS, ["handler", "hot"])));
    expect(await fgTotal(WALL_NS, sel(`, handler="hot"`))).toBe(total(labelled));
    expect(under(labelled, "burnHot") / total(labelled)).toBeGreaterThan(0.9);
    expect(under(labelled, "burnCold")).toBeLessThan(0.05 * total(labelled));
    const rest = await mergeProfile(WALL_NS, sel(`, handler!="hot"`));
    expect(total(rest) + total(labelled)).toBe(all);
    expect(under(rest, "burnCold")).toBe(cold);

    const heap = await mergeProfile(HEAP_SPACE, sel());
    expect(sorted(heap)).toEqual(sorted(mergedCollapsed(uploads, HEAP_SPACE)));
    // allocRetained keeps tens of MB reachable: it dominates in-use space in every heap snapshot.
    const heapUploads = uploads.filter((u) => !isWall(u)).length;
    expect(under(heap, "allocRetained") / total(heap)).toBeGreaterThan(0.3);
    expect(under(heap, "allocRetained") / heapUploads).toBeGreaterThan(10 * 2 ** 20);
  });
});
