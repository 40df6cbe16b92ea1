// End to end, the operator's view: flags and config errors, /ready, /metrics, buildinfo, flush,
// Push in Connect JSON and gRPC-web, and a clean SIGTERM that keeps every acknowledged write.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PushRequestSchema } from "../server/api/gen/push/v1/push_pb.ts";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { encodeRecords } from "../storage/head/record.ts";
import { WAL } from "../storage/head/wal.ts";
import { gunzipSync } from "node:zlib";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const ROOT = resolve(import.meta.dir, "..");
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const cpuBytes = readFileSync(FIXTURES + "pprof/cpu.pb.gz");
const cpuTotal = sumColumn(readPprof(FIXTURES + "pprof/cpu.pb.gz"), 1);

async function total(s: RunningServer, service: string): Promise<number> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ profileTypeID: CPU, labelSelector: `{service_name="${service}"}`, start: 1000, end: Date.now() + 3600_000 }),
  });
  expect(r.status).toBe(200);
  return Number((await r.json()).flamegraph?.total ?? 0);
}

function runMain(args: string[]) {
  return Bun.spawnSync([process.execPath, join(ROOT, "server/main.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
}

describe("configuration errors are clear and stop the process", () => {
  test("an unknown flag names itself", () => {
    const r = runMain(["--no-such-flag"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("no-such-flag");
  });

  test("an unknown YAML key names itself and the valid ones", () => {
    const dir = tempDir();
    try {
      const f = join(dir, "hearth.yaml");
      writeFileSync(f, "server:\n  port: 4040\n  prot: 1\n");
      const r = runMain(["--config", f]);
      expect(r.exitCode).toBe(2);
      const msg = r.stderr.toString();
      expect(msg).toContain("prot");
      expect(msg).toContain("port");
    } finally {
      removeDir(dir);
    }
  });

  test("--help prints usage and exits 0", () => {
    const r = runMain(["--help"]);
    expect(r.exitCode).toBe(0);
    for (const flag of ["--port", "--data-dir", "--multitenancy", "--config"]) expect(r.stdout.toString()).toContain(flag);
  });
});

describe("a running server", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    if (s.proc.exitCode === null) await s.stop();
    removeDir(s.dataDir);
  });

  test("/ready and buildinfo", async () => {
    const r = await fetch(`${s.url}/ready`);
    expect(r.status).toBe(200);
    expect((await r.text()).trim()).toBe("ready");
    const b = await (await fetch(`${s.url}/api/v1/status/buildinfo`)).json();
    expect(b.status).toBe("success");
    expect(b.data.version).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  });

  test("Push in Connect JSON (bytes as base64) is stored", async () => {
    const body = {
      series: [
        {
          labels: [
            { name: "__name__", value: "process_cpu" },
            { name: "service_name", value: "json-push" },
          ],
          samples: [{ rawProfile: Buffer.from(cpuBytes).toString("base64"), ID: crypto.randomUUID() }],
        },
      ],
    };
    const r = await fetch(`${s.url}/push.v1.PusherService/Push`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await total(s, "json-push")).toBe(cpuTotal);
  });

  test("Push over gRPC-web is stored", async () => {
    const msg = toBinary(
      PushRequestSchema,
      create(PushRequestSchema, {
        series: [{ labels: [{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "grpcweb-push" }], samples: [{ rawProfile: cpuBytes }] }],
      }),
    );
    const frame = new Uint8Array(5 + msg.length);
    new DataView(frame.buffer).setUint32(1, msg.length);
    frame.set(msg, 5);
    const r = await fetch(`${s.url}/push.v1.PusherService/Push`, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: frame });
    expect(r.status).toBe(200);
    const trailer = new TextDecoder().decode(new Uint8Array(await r.arrayBuffer()));
    expect(trailer).toContain("grpc-status: 0");
    expect(await total(s, "grpcweb-push")).toBe(cpuTotal);
  });

  test("bad Push input gets a clear 400 and the server keeps serving", async () => {
    const bad = { series: [{ labels: [{ name: "__name__", value: "process_cpu" }], samples: [{ rawProfile: Buffer.from("not a profile at all").toString("base64") }] }] };
    const r = await fetch(`${s.url}/push.v1.PusherService/Push`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(bad) });
    expect(r.status).toBe(400);
    const e = await r.json();
    expect(e.code).toBe("invalid_argument");
    expect(e.message.length).toBeGreaterThan(10);
    const empty = await fetch(`${s.url}/push.v1.PusherService/Push`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(empty.status).toBe(400);
    expect((await empty.json()).message).toContain("no profiles received");
    expect((await fetch(`${s.url}/ready`)).status).toBe(200);
  });

  test("query errors: missing time range, bad selector, bad profile type, GET on a Connect path", async () => {
    const post = (m: string, body: unknown) =>
      fetch(`${s.url}/querier.v1.QuerierService/${m}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const noRange = await post("SelectMergeStacktraces", { profileTypeID: CPU, labelSelector: "{}" });
    expect(noRange.status).toBe(400);
    expect((await noRange.json()).message).toContain("missing time range");
    const badSel = await post("SelectMergeStacktraces", { profileTypeID: CPU, labelSelector: '{a="b"', start: 1, end: 2 });
    expect(badSel.status).toBe(400);
    const badType = await post("SelectMergeStacktraces", { profileTypeID: "cpu", labelSelector: "{}", start: 1, end: 2 });
    expect(badType.status).toBe(400);
    expect((await fetch(`${s.url}/querier.v1.QuerierService/ProfileTypes`)).status).toBe(405);
    const render = await fetch(`${s.url}/pyroscope/render`);
    expect(render.status).toBe(400);
  });

  test("/metrics counts ingest by tenant and outcome, head series, RSS and query durations", async () => {
    const ok = await fetch(`${s.url}/ingest?name=metrics-app&format=pprof`, { method: "POST", body: cpuBytes });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${s.url}/ingest?name=metrics-app&format=pprof`, { method: "POST", body: "garbage" });
    expect(bad.status).toBe(422);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    expect(m).toMatch(/hearth_ingest_requests_total\{tenant="anonymous",route="ingest",outcome="ok"\} [1-9]/);
    expect(m).toMatch(/hearth_ingest_requests_total\{tenant="anonymous",route="ingest",outcome="422"\} 1/);
    expect(m).toMatch(/hearth_ingest_bytes_total\{tenant="anonymous",outcome="ok"\} [1-9]/);
    expect(m).toMatch(/hearth_head_series\{tenant="anonymous"\} [1-9]/);
    expect(m).toMatch(/hearth_query_duration_seconds_count\{method="SelectMergeStacktraces"\} [1-9]/);
    expect(m).toMatch(/process_resident_memory_bytes [1-9]/);
  });

  test("the UI page, and /pyroscope/ingest as an alias of /ingest", async () => {
    const page = await fetch(`${s.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<h1>Hearth</h1>");
    const r = await fetch(`${s.url}/pyroscope/ingest?name=alias-app&format=pprof`, { method: "POST", body: cpuBytes });
    expect(r.status).toBe(200);
    expect(await total(s, "alias-app")).toBe(cpuTotal);
  });

  test("max_nodes truncates into an `other` node without changing the total", async () => {
    const ok = await fetch(`${s.url}/ingest?name=maxnodes-app&format=pprof`, { method: "POST", body: readFileSync(FIXTURES + "pprof/heap") });
    expect(ok.status).toBe(200);
    const q = (maxNodes: number) =>
      fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ profileTypeID: "memory:inuse_space:bytes:space:bytes", labelSelector: '{service_name="maxnodes-app"}', start: 1000, end: Date.now() + 3600_000, maxNodes }),
      }).then((r) => r.json());
    const full = (await q(-1)).flamegraph;
    const small = (await q(16)).flamegraph;
    expect(small.total).toBe(full.total);
    expect(small.names).toContain("other");
    const nodes = (fg: { levels: { values?: string[] }[] }) => fg.levels.reduce((n, l) => n + (l.values?.length ?? 0) / 4, 0);
    expect(nodes(small)).toBeLessThan(nodes(full));
    const tooMany = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profileTypeID: CPU, labelSelector: "{}", start: 1, end: 2, maxNodes: 2_000_000 }),
    });
    expect(tooMany.status).toBe(400);
  });

  test("POST /ingester/flush answers once flushed", async () => {
    const r = await fetch(`${s.url}/ingester/flush`, { method: "POST" });
    expect(r.status).toBe(200);
  });

  test("SIGTERM closes cleanly and keeps every acknowledged write", async () => {
    const before = await total(s, "metrics-app");
    expect(before).toBe(cpuTotal);
    const code = await s.stop();
    expect(code).toBe(0);
    expect(s.output()).toContain("closed cleanly");
    const again = await startServer({ dataDir: s.dataDir });
    try {
      expect(await total(again, "metrics-app")).toBe(before);
      expect(await total(again, "json-push")).toBe(cpuTotal);
    } finally {
      await again.stop();
    }
  });
});

describe("start-up with a WAL to replay", () => {
  test("/ready answers 503 while the WAL replays, then 200 with every record queryable", async () => {
    const dataDir = tempDir();
    try {
      const heap = decodePprof(gunzipSync(readFileSync(FIXTURES + "pprof/heap")));
      const wal = await WAL.open(join(dataDir, "anonymous", "wal"), { fsync: "none" });
      const labels = [
        { name: "__name__", value: "memory" },
        { name: "service_name", value: "replayed" },
      ];
      const N = 40;
      for (let i = 0; i < N; i++) await wal.append(encodeRecords([{ tenant: "anonymous", labels, profile: { ...heap, timeNanos: BigInt(Date.now() - i * 10_000) * 1000000n } }]));
      await wal.close();
      const s = await startServer({ dataDir });
      try {
        expect(s.readyStatuses).toContain(503);
        expect(s.readyStatuses.at(-1)).toBe(200);
        expect(s.output()).toContain(`replayed ${N} WAL records`);
        const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ profileTypeID: "memory:alloc_space:bytes:space:bytes", labelSelector: '{service_name="replayed"}', start: Date.now() - 3600_000, end: Date.now() + 60_000 }),
        });
        expect(Number((await r.json()).flamegraph.total)).toBe(N * sumColumn(readPprof(FIXTURES + "pprof/heap"), 1));
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
