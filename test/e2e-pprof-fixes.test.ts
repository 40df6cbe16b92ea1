// End to end: the pprof fix-ups Pyroscope applies on the way in, through a real server.
// Cumulative memory profiles pushed without __delta__="false" become deltas; godeltaprof_memory
// is relabelled; py-spy/scripting names become "<file> <name>"; .NET sample types lose their '-'.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { PushRequestSchema } from "../server/api/gen/push/v1/push_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { encodePprof } from "../server/api/pprof-encode.ts";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import type { Profile } from "../storage/model/profile.ts";
import { collapse, FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const START = 1000;
const END = Date.now() + 3600_000;
let s: RunningServer;

const fixture = (f: string) => {
  const b = readFileSync(FIXTURES + "pprof/" + f);
  return new Uint8Array(b[0] === 0x1f ? gunzipSync(b) : b);
};

/** The fixture's profile with every value multiplied by `k` and its own time. */
function scaled(f: string, k: number, timeMs: number): Uint8Array {
  const p: Profile = decodePprof(fixture(f));
  const values = p.samples.values.map((v) => v * k);
  return encodePprof({ ...p, timeNanos: BigInt(timeMs) * 1000000n, samples: { ...p.samples, values } });
}

async function push(labels: Record<string, string>, bodies: Uint8Array[]) {
  const req = create(PushRequestSchema, {
    series: [{ labels: Object.entries(labels).map(([name, value]) => ({ name, value })), samples: bodies.map((b) => ({ rawProfile: gzipSync(b), ID: crypto.randomUUID() })) }],
  });
  const r = await fetch(`${s.url}/push.v1.PusherService/Push`, { method: "POST", headers: { "content-type": "application/proto" }, body: toBinary(PushRequestSchema, req) });
  expect(r.status, await r.clone().text()).toBe(200);
}

async function total(type: string, service: string): Promise<number> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ profileTypeID: type, labelSelector: `{service_name="${service}"}`, start: START, end: END }),
  });
  expect(r.status).toBe(200);
  return Number((await r.json()).flamegraph?.total ?? 0);
}

async function mergedCollapsed(type: string, service: string): Promise<Map<string, number>> {
  const req = create(SelectMergeProfileRequestSchema, { profileTypeID: type, labelSelector: `{service_name="${service}"}`, start: BigInt(START), end: BigInt(END) });
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto" },
    body: toBinary(SelectMergeProfileRequestSchema, req),
  });
  expect(r.status).toBe(200);
  return collapse(fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer())), 0);
}

beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
  if (s) removeDir(s.dataDir);
});

describe("pprof fix-ups end to end", () => {
  const heap = readPprof(FIXTURES + "pprof/heap");
  const ALLOC_SPACE = "memory:alloc_space:bytes:space:bytes";
  const INUSE_SPACE = "memory:inuse_space:bytes:space:bytes";

  test("Push without __delta__: cumulative alloc profiles are stored as deltas; the first is a baseline; inuse is stored as sent", async () => {
    const t0 = Date.now() - 60_000;
    // Cumulative: 1×, then 3× (so the delta is 2×), then 4× (delta 1×).
    await push({ __name__: "memory", service_name: "cumulative" }, [scaled("heap", 1, t0)]);
    await push({ __name__: "memory", service_name: "cumulative" }, [scaled("heap", 3, t0 + 10_000)]);
    await push({ __name__: "memory", service_name: "cumulative" }, [scaled("heap", 4, t0 + 20_000)]);
    const allocSpace = sumColumn(heap, 1);
    const inuseSpace = sumColumn(heap, 3);
    expect(await total(ALLOC_SPACE, "cumulative")).toBe(3 * allocSpace);
    expect(await total(INUSE_SPACE, "cumulative")).toBe(8 * inuseSpace);
  });

  test("a decrease (a restarted process) drops that profile and starts a new baseline", async () => {
    const t0 = Date.now() - 50_000;
    await push({ __name__: "memory", service_name: "restarted" }, [scaled("heap", 2, t0)]);
    await push({ __name__: "memory", service_name: "restarted" }, [scaled("heap", 1, t0 + 10_000)]); // went down: reset
    await push({ __name__: "memory", service_name: "restarted" }, [scaled("heap", 3, t0 + 20_000)]); // +2 over the new baseline
    expect(await total(ALLOC_SPACE, "restarted")).toBe(2 * sumColumn(heap, 1));
  });

  test('__delta__="false" and godeltaprof_memory (relabelled to memory) are stored as sent', async () => {
    const t0 = Date.now() - 40_000;
    await push({ __name__: "memory", service_name: "already-delta", __delta__: "false" }, [scaled("heap", 1, t0), scaled("heap", 1, t0 + 10_000)]);
    expect(await total(ALLOC_SPACE, "already-delta")).toBe(2 * sumColumn(heap, 1));
    await push({ __name__: "godeltaprof_memory", service_name: "godeltaprof" }, [scaled("heap", 1, t0)]);
    await push({ __name__: "godeltaprof_memory", service_name: "godeltaprof" }, [scaled("heap", 2, t0 + 10_000)]);
    expect(await total(ALLOC_SPACE, "godeltaprof")).toBe(3 * sumColumn(heap, 1));
    const types = await (await fetch(`${s.url}/querier.v1.QuerierService/ProfileTypes`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ start: START, end: END }) })).json();
    expect(JSON.stringify(types)).not.toContain("godeltaprof");
  });

  test("spyName=scripting: function names become '<file> <name>' (pyspy-1)", async () => {
    const r = await fetch(`${s.url}/ingest?format=pprof&name=pyapp&spyName=scripting`, { method: "POST", body: readFileSync(FIXTURES + "pprof/pyspy-1.pb.gz") });
    expect(r.status, await r.clone().text()).toBe(200);
    const src = readPprof(FIXTURES + "pprof/pyspy-1.pb.gz");
    // Expected from the fixture itself: each frame's file and function name, as Pyroscope joins them.
    const fnById = new Map(src.function.map((f) => [f.id, `${src.stringTable[Number(f.filename)]} ${src.stringTable[Number(f.name)]}`]));
    const want = new Map<string, number>();
    for (const smp of src.sample) {
      const frames: string[] = [];
      for (const id of smp.locationId) {
        const loc = src.location.find((l) => l.id === id)!;
        for (const line of loc.line) frames.push(fnById.get(line.functionId)!);
      }
      const key = frames.reverse().join(";");
      if (smp.value[0] !== 0n) want.set(key, (want.get(key) ?? 0) + Number(smp.value[0]));
    }
    const gotMap = await mergedCollapsed("process_cpu:samples:count::milliseconds", "pyapp");
    expect([...gotMap].sort()).toEqual([...want].sort());
    expect([...gotMap.keys()].some((k) => k.includes(".py "))).toBe(true);
  });

  test("spyName=dotnetspy: sample types lose their '-' (dotnet-pprof-73)", async () => {
    const form = new FormData();
    form.append("profile", new Blob([readFileSync(FIXTURES + "pprof/dotnet-pprof-73.pb.gz")]), "profile");
    form.append("sample_type_config", new Blob([readFileSync(FIXTURES + "pprof/dotnet-pprof-3.st.json")]), "sample_type_config");
    const r = await fetch(`${s.url}/ingest?name=dotnetapp&spyName=dotnetspy`, { method: "POST", body: form });
    expect(r.status, await r.clone().text()).toBe(200);
    const types = await (await fetch(`${s.url}/querier.v1.QuerierService/ProfileTypes`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ start: START, end: END }) })).json();
    const ids = (types.profileTypes as { ID: string }[]).map((t) => t.ID);
    expect(ids).toContain("process_cpu:alloc_samples:count::nanoseconds");
    expect(ids).toContain("process_cpu:alloc_size:bytes::nanoseconds");
    expect(ids.some((id) => id.includes("alloc-"))).toBe(false);
  });
});
