// The distributor's label rules on decoded profiles (sample-label split, sanitization, validation)
// and each tenant's limits, with the discards they count.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createDistributor, sanitizeLabels } from "./distributor.ts";
import type { IngestItem, Ingester } from "./ingester.ts";
import { maybeGunzip } from "./ingest/gunzip.ts";
import { decodePprof } from "./ingest/pprof-decoder.ts";
import { ApiError } from "./errors.ts";
import { defaultConfig } from "./config.ts";
import { legacyType, profileFromStacks } from "./ingest/text-profile.ts";
import { createMetrics } from "./metrics.ts";
import type { TenantLimits } from "./overrides.ts";
import { collapseProfile } from "../storage/model/collapse.ts";
import { readProfileBytes } from "../test/helpers/pprof-oracle.ts";
import { estimateProfileSize, labelsSize } from "./limits/profile-size.ts";

const FIXTURES = new URL("../../shared/fixtures/pprof/", import.meta.url).pathname;
const load = (f: string) => decodePprof(maybeGunzip(new Uint8Array(readFileSync(FIXTURES + f)), 64 << 20));
// The fixtures keep their original timestamps: the window is off unless a test turns it on.
const limits = { ...defaultConfig().limits, rejectOlderThan: 0 };

function capture() {
  const pushed: IngestItem[] = [];
  const ingester = { push: async (_t: string, items: IngestItem[]) => void pushed.push(...items) } as unknown as Ingester;
  return { pushed, d: createDistributor({ ingester, limits }) };
}

const base = [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: "svc" },
];

describe("distributor", () => {
  test("string sample labels split a profile into series; span ids never become series labels", async () => {
    const { pushed, d } = capture();
    const p = load("go.cpu.labels.pprof");
    await d.ingest("t", [{ labels: base, profile: p }]);
    const sets = pushed.map((it) => Object.fromEntries(it.labels.map((l) => [l.name, l.value])));
    expect(sets.every((s) => s.foo === "bar")).toBe(true);
    expect(new Set(sets.map((s) => s.function ?? ""))).toEqual(new Set(["slow", "fast", ""]));
    expect(sets.some((s) => "profile_id" in s || "span_id" in s)).toBe(false);
    expect(pushed.reduce((n, it) => n + it.profile.samples.count, 0)).toBe(p.samples.count);
  });

  test("series labels win over sample labels of the same name", async () => {
    const { pushed, d } = capture();
    const p = load("go.cpu.labels.pprof");
    await d.ingest("t", [{ labels: [...base, { name: "foo", value: "series" }], profile: p }]);
    expect(pushed.every((it) => it.labels.find((l) => l.name === "foo")!.value === "series")).toBe(true);
  });

  test("dots in label names become underscores; __session_id__ is dropped", () => {
    expect(sanitizeLabels([{ name: "process.runtime.name", value: "nodejs" }, { name: "__session_id__", value: "abc" }, { name: "a", value: "1" }])).toEqual([
      { name: "a", value: "1" },
      { name: "process_runtime_name", value: "nodejs" },
    ]);
    // service.name beside service_name: one label when they agree, a duplicate (refused later) when not.
    expect(sanitizeLabels([{ name: "service.name", value: "x" }, { name: "service_name", value: "x" }])).toEqual([{ name: "service_name", value: "x" }]);
    expect(sanitizeLabels([{ name: "service.name", value: "x" }, { name: "service_name", value: "y" }]).length).toBe(2);
  });

  test("validation names the problem", async () => {
    const { d } = capture();
    const p = load("cpu.pb.gz");
    const reject = async (labels: { name: string; value: string }[], re: RegExp) => {
      const e = await d.ingest("t", [{ labels, profile: p }]).catch((x) => x);
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).code).toBe("invalid_argument");
      expect((e as ApiError).message).toMatch(re);
    };
    await reject([{ name: "service_name", value: "x" }], /__name__/);
    await reject([{ name: "__name__", value: "process_cpu" }], /service name/);
    await reject([...base, { name: "bad-name", value: "x" }], /invalid label name/);
    await reject([...base, { name: "long", value: "x".repeat(3000) }], /max_label_value_length/);
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `l${i}`, value: "v" }));
    await reject([...base, ...many], /max_label_names_per_series/);
  });

  test("Push: a missing service_name becomes unknown_service; garbage is invalid_argument", async () => {
    const { pushed, d } = capture();
    const raw = new Uint8Array(readFileSync(FIXTURES + "cpu.pb.gz"));
    await d.push("t", { series: [{ labels: [{ name: "__name__", value: "process_cpu" }], samples: [{ rawProfile: raw, ID: "" }], annotations: [] }] } as never);
    expect(pushed[0].labels.find((l) => l.name === "service_name")!.value).toBe("unknown_service");
    const e = await d.push("t", { series: [{ labels: base, samples: [{ rawProfile: new TextEncoder().encode("hello"), ID: "" }], annotations: [] }] } as never).catch((x) => x);
    expect((e as ApiError).code).toBe("invalid_argument");
  });
});

describe("per-tenant limits", () => {
  const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
  const cpu = legacyType("app.cpu").type;
  const stacks = (s: Record<string, number>, timeMs = NOW) =>
    profileFromStacks(Object.entries(s).map(([k, v]) => [k.split(";"), v] as [string[], number]), cpu, 0, timeMs);
  const series = (svc: string) => [
    { name: "__name__", value: "process_cpu" },
    { name: "service_name", value: svc },
  ];

  /** A distributor whose tenants' overrides are `overrides` as it is at each call, like a reloaded file. */
  function setup(overrides: Record<string, Partial<TenantLimits>> = {}) {
    const pushed: { tenant: string; items: IngestItem[] }[] = [];
    const ingester = { push: async (tenant: string, items: IngestItem[]) => void pushed.push({ tenant, items }) } as unknown as Ingester;
    const metrics = createMetrics();
    let now = NOW;
    const d = createDistributor({
      ingester,
      limits: defaultConfig().limits,
      tenantLimits: (t) => ({ ...defaultConfig().limits, ...overrides[t] }),
      metrics,
      now: () => now,
    });
    const discarded = (reason: string, tenant: string) => ({
      profiles: metrics.discardedSamples.get({ reason, tenant }),
      bytes: metrics.discardedBytes.get({ reason, tenant }),
    });
    return { d, pushed, metrics, discarded, overrides, advance: (ms: number) => void (now += ms) };
  }

  async function errorOf(p: Promise<unknown>): Promise<ApiError> {
    const e = await p.then(() => null, (x) => x);
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }

  test("rate limit: 429 naming limit and tenant, counted, other tenants unaffected, reload applies", async () => {
    const { d, pushed, discarded, overrides, advance } = setup({ slow: { ingestionRateMb: 1 / 1024, ingestionBurstSizeMb: 1 / 1024 } });
    // Between half the burst and the burst (with its labels): one fits a full bucket, two do not.
    const p = stacks(Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`main;work_${i}`, i + 1])));
    const size = estimateProfileSize(p) + labelsSize(series("a"));
    expect(size).toBeGreaterThan(512);
    expect(size).toBeLessThan(1024);
    await d.ingest("slow", [{ labels: series("a"), profile: p }]);
    const e = await errorOf(d.ingest("slow", [{ labels: series("a"), profile: p }]));
    expect(e.code).toBe("resource_exhausted");
    expect(e.message).toStartWith(`ingestion rate limit (1 KiB/s, burst 1 KiB) exceeded for tenant "slow" while adding ${size} B`);
    expect(discarded("rate_limited", "slow")).toEqual({ profiles: 1, bytes: size });
    await d.ingest("fast", [{ labels: series("a"), profile: p }]);
    // Time pays the debt back.
    advance(1000);
    await d.ingest("slow", [{ labels: series("a"), profile: p }]);
    await errorOf(d.ingest("slow", [{ labels: series("a"), profile: p }]));
    // The overrides change (file reloaded): the new limit applies on the next request.
    overrides.slow = { ingestionRateMb: 100 };
    for (let i = 0; i < 5; i++) await d.ingest("slow", [{ labels: series("a"), profile: p }]);
    expect(pushed.filter((x) => x.tenant === "slow").length).toBe(7);
    expect(discarded("rate_limited", "slow").profiles).toBe(2);
    expect(discarded("rate_limited", "fast").profiles).toBe(0);
  });

  test("a profile larger than the burst gets in from a full bucket (Pyroscope would refuse it forever)", async () => {
    const { d } = setup({ t: { ingestionRateMb: 1 / 1024, ingestionBurstSizeMb: 1 / 1024 } });
    const big = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`main;function_number_${i}`, i + 1]));
    await d.ingest("t", [{ labels: series("a"), profile: stacks(big) }]);
    const e = await errorOf(d.ingest("t", [{ labels: series("a"), profile: stacks({ a: 1 }) }]));
    expect(e.code).toBe("resource_exhausted");
  });

  test("ingestion window per tenant; refusals are 400 with the window, counted by reason", async () => {
    const { d, pushed, discarded } = setup({ lax: { rejectOlderThan: 0 } });
    const old = stacks({ a: 1 }, NOW - 2 * 3_600_000);
    const e = await errorOf(d.ingest("strict", [{ labels: series("a"), profile: old }]));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("has time 2026-01-15T10:00:00.000Z, outside the ingestion window");
    expect(e.message).toContain("2026-01-15T11:00:00.000Z to 2026-01-15T12:10:00.000Z");
    expect(discarded("not_in_ingestion_window", "strict").profiles).toBe(1);
    await d.ingest("lax", [{ labels: series("a"), profile: old }]);
    expect(pushed.length).toBe(1);
  });

  test("depth and symbol limits truncate what is stored", async () => {
    const { d, pushed } = setup({ t: { maxProfileStacktraceDepth: 3, maxProfileSymbolValueLength: 6 } });
    await d.ingest("t", [{ labels: series("a"), profile: stacks({ "root;mid;deeper;leaf": 4, "root;averyLongName": 1 }) }]);
    expect(Object.fromEntries(collapseProfile(pushed[0]!.items[0]!.profile, 0))).toEqual({ "root;mid;deeper": 4, "root;ngName": 1 });
  });

  test("label limits per tenant", async () => {
    const { d, discarded } = setup({ t: { maxLabelValueLength: 3 } });
    const e = await errorOf(d.ingest("t", [{ labels: series("long"), profile: stacks({ a: 1 }) }]));
    expect(e.message).toContain("max_label_value_length");
    expect(discarded("label_value_too_long", "t").profiles).toBe(1);
    await d.ingest("u", [{ labels: series("long"), profile: stacks({ a: 1 }) }]);
  });

  test("sample count limit refuses, counting every profile of the request", async () => {
    const { d, pushed, discarded } = setup({ t: { maxProfileStacktraceSamples: 2 } });
    const e = await errorOf(
      d.ingest("t", [
        { labels: series("a"), profile: stacks({ a: 1 }) },
        { labels: series("b"), profile: stacks({ a: 1, b: 2, c: 3 }) },
      ]),
    );
    expect(e.message).toContain("max_profile_stacktrace_samples");
    expect(discarded("samples_limit", "t").profiles).toBe(2);
    expect(pushed.length).toBe(0);
  });

  test("Push: size, body and malformed refusals are 400 and counted; received histograms observe", async () => {
    const { d, pushed, metrics, discarded } = setup({ small: { maxProfileSizeBytes: 1000, rejectOlderThan: 0 }, any: { rejectOlderThan: 0 } });
    const gz = new Uint8Array(readFileSync(FIXTURES + "cpu.pb.gz"));
    const rawLen = maybeGunzip(gz, 1 << 20).length;
    const req = (raw: Uint8Array, n = 1) => ({ series: [{ labels: series("p"), samples: Array.from({ length: n }, () => ({ rawProfile: raw, ID: "" })), annotations: [] }] }) as never;

    const big = await errorOf(d.push("small", req(gz)));
    expect(big.code).toBe("invalid_argument");
    expect(big.message).toContain("max_profile_size_bytes");
    expect(discarded("profile_size_limit", "small")).toEqual({ profiles: 1, bytes: 1000 });

    const bad = await errorOf(d.push("any", req(new TextEncoder().encode("hello"), 2)));
    expect(bad.code).toBe("invalid_argument");
    expect(discarded("malformed_profile", "any").profiles).toBe(2);

    await d.push("any", req(gz));
    expect(pushed.length).toBe(1);
    const type = { type: "process_cpu", tenant: "any" };
    expect(metrics.receivedCompressedBytes.get(type)).toEqual({ count: 1, sum: gz.length });
    expect(metrics.receivedDecompressedBytes.get(type)).toEqual({ count: 1, sum: rawLen });
    expect(metrics.receivedSamples.get(type).count).toBe(1);

    const bodyLimited = createDistributor({
      ingester: { push: async () => {} } as unknown as Ingester,
      limits: { ...limits, ingestionBodyLimitBytes: rawLen + 1 },
      metrics,
    });
    const body = await errorOf(bodyLimited.push("b", req(gz, 2)));
    expect(body.message).toContain("ingestion_body_limit_bytes");
    expect(metrics.discardedSamples.get({ reason: "body_size_limit_exceeded", tenant: "b" })).toBe(2);
  });

  test("Push: the profile's time comes from the fixture, checked against the window", async () => {
    const { d } = setup();
    const gz = new Uint8Array(readFileSync(FIXTURES + "cpu.pb.gz"));
    const t = Number(readProfileBytes(gz).timeNanos / 1000000n);
    const e = await errorOf(d.push("t", { series: [{ labels: series("p"), samples: [{ rawProfile: gz, ID: "" }], annotations: [] }] } as never));
    expect(e.message).toContain(`has time ${new Date(t).toISOString()}`);
  });

  test("limitsFor and discarded, for the edges", () => {
    const { d, discarded } = setup({ t: { maxProfileSizeBytes: 5 } });
    expect(d.limitsFor("t").maxProfileSizeBytes).toBe(5);
    expect(d.limitsFor("u").maxProfileSizeBytes).toBe(4 << 20);
    d.discarded("t", "profile_size_limit", 1, 5);
    expect(discarded("profile_size_limit", "t")).toEqual({ profiles: 1, bytes: 5 });
  });
});
