// End to end: per-tenant ingestion limits from an overrides file that is rewritten while the
// server runs — rate limit (429), ingestion window (400), stack depth and symbol truncation — and
// the discards they cause in /metrics by tenant and reason.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { collapse } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const PERIOD = 1e9 / 100; // folded uploads at the default sampleRate 100: each count is 10 ms of CPU

let s: RunningServer;
let dir: string;
let overridesFile: string;

const slowLimits = (rateMb: number, burstMb: number) => ["  slow:", `    ingestion_rate_mb: ${rateMb}`, `    ingestion_burst_size_mb: ${burstMb}`];
const strictLimits = ["  strict:", "    reject_older_than: 1h", "    max_profile_stacktrace_depth: 5", "    max_profile_symbol_value_length: 12"];

function writeOverrides(lines: string[]) {
  // Written aside and renamed over, so the server never reads a half-written file.
  const tmp = overridesFile + ".tmp";
  writeFileSync(tmp, ["overrides:", ...lines, ""].join("\n"));
  renameSync(tmp, overridesFile);
}

beforeAll(async () => {
  dir = tempDir("hearth-e2e-limits-");
  overridesFile = join(dir, "overrides.yaml");
  // About 100 B/s with a 1 KiB burst for tenant "slow", so a refused tenant stays refused for
  // longer than the overrides file takes to reload; window, depth and symbol limits for "strict".
  writeOverrides([...slowLimits(0.0001, 0.001), ...strictLimits]);
  s = await startServer({ dataDir: join(dir, "data"), args: ["--multitenancy", "--overrides", overridesFile] });
});

afterAll(async () => {
  await s?.stop();
  removeDir(dir);
});

async function ingestFolded(tenant: string, app: string, body: string, query = "") {
  const r = await fetch(`${s.url}/ingest?name=${encodeURIComponent(app)}&format=folded${query}`, {
    method: "POST",
    headers: { "content-type": "text/plain", "X-Scope-OrgID": tenant },
    body,
  });
  return { status: r.status, text: await r.text() };
}

async function metrics(): Promise<string> {
  return (await fetch(`${s.url}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

async function mergedStacks(tenant: string, service: string): Promise<Record<string, number>> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto", "X-Scope-OrgID": tenant },
    body: toBinary(
      SelectMergeProfileRequestSchema,
      create(SelectMergeProfileRequestSchema, {
        profileTypeID: CPU,
        labelSelector: `{service_name="${service}"}`,
        start: BigInt(Date.now() - 3_600_000),
        end: BigInt(Date.now() + 3_600_000),
      }),
    ),
  });
  expect(r.status).toBe(200);
  return Object.fromEntries(collapse(fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer())), 0));
}

// About 1.6 KiB as pprof: more than the 1 KiB burst, so the first upload takes the full bucket
// into debt and the next one finds it empty.
const SLOW_BODY = Array.from({ length: 40 }, (_, i) => `main;handler;work_${i} ${i + 1}`).join("\n") + "\n";

describe("rate limit from the overrides file", () => {
  test("429 naming the limit and tenant; other tenants unaffected", async () => {
    expect((await ingestFolded("slow", "ratelimited.cpu", SLOW_BODY)).status).toBe(200);
    const r = await ingestFolded("slow", "ratelimited.cpu", SLOW_BODY);
    expect(r.status).toBe(429);
    const body = JSON.parse(r.text);
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toStartWith('ingestion rate limit (105 B/s, burst 1 KiB) exceeded for tenant "slow" while adding ');
    expect(body.message).toContain("ingestion_rate_mb");
    // Tenants without overrides have the server's defaults (rate limit off in test servers).
    for (let i = 0; i < 3; i++) expect((await ingestFolded("other", "ratelimited.cpu", SLOW_BODY)).status).toBe(200);
  });

  test("the discards are in /metrics by tenant and reason", async () => {
    const text = await metrics();
    expect(text).toContain("# TYPE pyroscope_discarded_samples_total counter");
    expect(metricValue(text, "pyroscope_discarded_samples_total", 'reason="rate_limited",tenant="slow"')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "pyroscope_discarded_bytes_total", 'reason="rate_limited",tenant="slow"')).toBeGreaterThan(1024);
    expect(metricValue(text, "pyroscope_discarded_samples_total", 'reason="rate_limited",tenant="other"')).toBe(0);
    expect(metricValue(text, "pyroscope_distributor_received_samples_count", 'type="process_cpu",tenant="slow"')).toBeGreaterThanOrEqual(1);
  });

  test("a rewritten overrides file applies without a restart", async () => {
    // Still in debt: at ~100 B/s the bucket needs ~15 s to fill again.
    expect((await ingestFolded("slow", "ratelimited.cpu", SLOW_BODY)).status).toBe(429);
    writeOverrides([...slowLimits(100, 100), ...strictLimits]);
    // The server polls the file every few seconds and logs each reload.
    const deadline = Date.now() + 20_000;
    while (!s.output().includes(`overrides: reloaded ${overridesFile}`) && Date.now() < deadline) await Bun.sleep(100);
    expect(s.output()).toContain(`overrides: reloaded ${overridesFile}`);
    for (let i = 0; i < 6; i++) expect((await ingestFolded("slow", "ratelimited.cpu", SLOW_BODY)).status).toBe(200);
  }, 30_000);
});

describe("per-profile limits from the overrides file", () => {
  test("a profile older than reject_older_than is refused with 400 naming its time and the window", async () => {
    const from = Math.floor(Date.now() / 1000) - 2 * 3600;
    const r = await ingestFolded("strict", "old.cpu", "main;work 1\n", `&from=${from}`);
    expect(r.status).toBe(400);
    const { code, message } = JSON.parse(r.text);
    expect(code).toBe("invalid_argument");
    expect(message).toContain(`has time ${new Date(from * 1000).toISOString()}, outside the ingestion window of tenant "strict"`);
    expect(message).toMatch(/the ingestion window is \d{4}-\d\d-\d\dT[\d:.]+Z to \d{4}-\d\d-\d\dT[\d:.]+Z \(reject_older_than 1h, reject_newer_than 10m\)/);
    // The test server's default turns the window off for everyone else.
    expect((await ingestFolded("other", "old.cpu", "main;work 1\n", `&from=${from}`)).status).toBe(200);
    const text = await metrics();
    expect(metricValue(text, "pyroscope_discarded_samples_total", 'reason="not_in_ingestion_window",tenant="strict"')).toBe(1);
    expect(metricValue(text, "pyroscope_discarded_bytes_total", 'reason="not_in_ingestion_window",tenant="strict"')).toBeGreaterThan(0);
  });

  test("stacks deeper than max_profile_stacktrace_depth keep their root-most frames", async () => {
    const body = "f0;f1;f2;f3;f4;f5;f6;f7;f8;f9 7\nf0;f1;f2;f3;f4;other 2\nf0;g1 3\n";
    expect((await ingestFolded("strict", "deep.cpu", body)).status).toBe(200);
    expect(await mergedStacks("strict", "deep")).toEqual({ "f0;f1;f2;f3;f4": 9 * PERIOD, "f0;g1": 3 * PERIOD });
    // Without the override the whole stack is kept.
    expect((await ingestFolded("other", "deep.cpu", body)).status).toBe(200);
    expect(await mergedStacks("other", "deep")).toEqual({
      "f0;f1;f2;f3;f4;f5;f6;f7;f8;f9": 7 * PERIOD,
      "f0;f1;f2;f3;f4;other": 2 * PERIOD,
      "f0;g1": 3 * PERIOD,
    });
  });

  test("symbols longer than max_profile_symbol_value_length keep their suffix", async () => {
    const body = "main;org.example.LongClass.method 4\nmain;short 1\n";
    expect((await ingestFolded("strict", "symbols.cpu", body)).status).toBe(200);
    expect(await mergedStacks("strict", "symbols")).toEqual({ "main;Class.method": 4 * PERIOD, "main;short": PERIOD });
  });
});
