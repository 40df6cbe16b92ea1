// The registry's exposition text, line for line, and the app's metric set.

import { describe, expect, test } from "bun:test";
import { Counter, Registry, createMetrics, exponentialBucketsRange, formatValue } from "./metrics.ts";

/** Checks every line against the 0.0.4 grammar, so a typo in rendering cannot slip through. */
function expectWellFormed(text: string) {
  expect(text.endsWith("\n")).toBe(true);
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$/;
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    expect(line).toMatch(sample);
  }
}

describe("Registry.render", () => {
  test("counters: HELP, TYPE, one line per label set", () => {
    const r = new Registry();
    const c = r.counter({ name: "jobs_total", help: "Jobs done.", labelNames: ["kind", "outcome"] });
    c.inc({ kind: "a", outcome: "ok" });
    c.inc({ kind: "a", outcome: "ok" }, 2.5);
    c.inc({ outcome: "err", kind: "b" }); // key order does not matter
    expect(r.render()).toBe(
      [
        "# HELP jobs_total Jobs done.",
        "# TYPE jobs_total counter",
        'jobs_total{kind="a",outcome="ok"} 3.5',
        'jobs_total{kind="b",outcome="err"} 1',
        "",
      ].join("\n"),
    );
    expect(c.get({ kind: "a", outcome: "ok" })).toBe(3.5);
    expect(c.get({ kind: "z", outcome: "ok" })).toBe(0);
  });

  test("a metric without labels shows 0 before its first use", () => {
    const r = new Registry();
    r.counter({ name: "a_total", help: "A." });
    r.gauge({ name: "b", help: "B." });
    r.counter({ name: "c_total", help: "C.", labelNames: ["x"] });
    expect(r.render()).toBe(
      "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n" +
        "# HELP b B.\n# TYPE b gauge\nb 0\n" +
        "# HELP c_total C.\n# TYPE c_total counter\n",
    );
  });

  test("escapes label values and help text", () => {
    const r = new Registry();
    const g = r.gauge({ name: "g", help: "back\\slash and\nnewline", labelNames: ["v"] });
    g.set({ v: 'quote " back \\ nl \n end' }, 1);
    const text = r.render();
    expect(text).toContain("# HELP g back\\\\slash and\\nnewline\n");
    expect(text).toContain('g{v="quote \\" back \\\\ nl \\n end"} 1\n');
    expectWellFormed(text);
  });

  test("label values that escape alike stay distinct", () => {
    const r = new Registry();
    const c = r.counter({ name: "x_total", help: "X.", labelNames: ["a", "b"] });
    c.inc({ a: "1,b=2", b: "" });
    c.inc({ a: "1", b: "2" });
    expect(r.render().split("\n").filter((l) => l.startsWith("x_total{"))).toHaveLength(2);
  });

  test("histograms: cumulative buckets, +Inf, _sum and _count, le last", () => {
    const r = new Registry();
    const h = r.histogram({ name: "lat_seconds", help: "Latency.", labelNames: ["m"], buckets: [0.1, 1, 10] });
    for (const v of [0.05, 0.1, 0.5, 3, 100]) h.observe({ m: "q" }, v);
    expect(r.render()).toBe(
      [
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{m="q",le="0.1"} 2', // the bound is inclusive
        'lat_seconds_bucket{m="q",le="1"} 3',
        'lat_seconds_bucket{m="q",le="10"} 4',
        'lat_seconds_bucket{m="q",le="+Inf"} 5',
        'lat_seconds_sum{m="q"} 103.65',
        'lat_seconds_count{m="q"} 5',
        "",
      ].join("\n"),
    );
    expect(h.get({ m: "q" })).toEqual({ count: 5, sum: 103.65 });
  });

  test("a histogram without labels renders its empty buckets", () => {
    const r = new Registry();
    r.histogram({ name: "h", help: "H.", buckets: [1] });
    expect(r.render()).toBe('# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n');
  });

  test("startTimer observes elapsed seconds", async () => {
    const r = new Registry();
    const h = r.histogram({ name: "t", help: "T.", labelNames: ["m"] });
    const stop = h.startTimer({ m: "x" });
    await Bun.sleep(5);
    const s = stop();
    expect(s).toBeGreaterThan(0.003);
    expect(h.get({ m: "x" })).toEqual({ count: 1, sum: s });
  });

  test("gauges: set, inc, dec", () => {
    const r = new Registry();
    const g = r.gauge({ name: "q", help: "Q.", labelNames: ["t"] });
    g.set({ t: "a" }, 5);
    g.inc({ t: "a" });
    g.dec({ t: "a" }, 3);
    g.dec({ t: "b" });
    expect(r.render()).toContain('q{t="a"} 3\nq{t="b"} -1\n');
  });

  test("a gauge collector runs at each render and replaces the previous values", () => {
    const r = new Registry();
    const g = r.gauge({ name: "series", help: "S.", labelNames: ["tenant"] });
    let tenants: Record<string, number> = { a: 1, b: 2 };
    g.setCollector((gauge) => {
      for (const [t, n] of Object.entries(tenants)) gauge.set({ tenant: t }, n);
    });
    expect(r.render()).toContain('series{tenant="a"} 1\nseries{tenant="b"} 2\n');
    tenants = { b: 7 };
    const text = r.render();
    expect(text).toContain('series{tenant="b"} 7\n');
    expect(text).not.toContain('tenant="a"');
  });

  test("special values", () => {
    expect([NaN, Infinity, -Infinity, 0, -0.5, 1e21].map(formatValue)).toEqual(["NaN", "+Inf", "-Inf", "0", "-0.5", "1e+21"]);
  });
});

describe("mistakes are refused", () => {
  test("names", () => {
    const r = new Registry();
    expect(() => r.counter({ name: "bad-name", help: "" })).toThrow("invalid metric name");
    expect(() => r.counter({ name: "x", help: "", labelNames: ["__x"] })).toThrow("invalid label name");
    expect(() => r.counter({ name: "x", help: "", labelNames: ["a-b"] })).toThrow("invalid label name");
    expect(() => r.counter({ name: "x", help: "", labelNames: ["a", "a"] })).toThrow("duplicate");
    expect(() => r.histogram({ name: "x", help: "", labelNames: ["le"] })).toThrow("invalid label name");
    r.counter({ name: "dup", help: "" });
    expect(() => r.gauge({ name: "dup", help: "" })).toThrow("already registered");
  });

  test("labels that do not match the declared names", () => {
    const c = new Counter<"a">({ name: "c", help: "", labelNames: ["a"] });
    expect(() => c.inc({} as { a: string })).toThrow("expected labels {a}");
    expect(() => c.inc({ a: "x", b: "y" } as { a: string })).toThrow("expected labels {a}");
    expect(() => c.inc({ b: "y" } as unknown as { a: string })).toThrow("label a is missing");
  });

  test("counters only go up", () => {
    const c = new Counter({ name: "c", help: "" });
    expect(() => c.inc({}, -1)).toThrow("cannot add");
    expect(() => c.inc({}, NaN)).toThrow("cannot add");
  });

  test("histogram buckets", () => {
    const r = new Registry();
    expect(() => r.histogram({ name: "a", help: "", buckets: [1, 1] })).toThrow("strictly increasing");
    expect(() => r.histogram({ name: "b", help: "", buckets: [2, 1] })).toThrow("strictly increasing");
    expect(() => r.histogram({ name: "c", help: "", buckets: [] })).toThrow("strictly increasing");
    // An explicit +Inf is allowed and not doubled.
    r.histogram({ name: "d", help: "", buckets: [1, Infinity] });
    expect(r.render().match(/le="\+Inf"/g)).toHaveLength(1);
  });
});

describe("createMetrics", () => {
  test("declares the app's metrics with their types", () => {
    const m = createMetrics();
    m.ingestRequests.inc({ tenant: "anonymous", route: "/ingest", outcome: "ok" });
    m.ingestBytes.inc({ tenant: "anonymous", outcome: "ok" }, 1234);
    m.ingestProfiles.inc({ tenant: "anonymous", outcome: "ok" }, 2);
    m.queryDuration.observe({ method: "SelectMergeStacktraces" }, 0.02);
    m.headSeries.setCollector((g) => g.set({ tenant: "anonymous" }, 3));
    m.headBytes.setCollector((g) => g.set({ tenant: "anonymous" }, 4096));
    const text = m.registry.render();
    expectWellFormed(text);
    for (const [name, type] of [
      ["hearth_ingest_requests_total", "counter"],
      ["hearth_ingest_bytes_total", "counter"],
      ["hearth_ingest_profiles_total", "counter"],
      ["hearth_query_duration_seconds", "histogram"],
      ["hearth_head_series", "gauge"],
      ["hearth_head_bytes", "gauge"],
      ["process_resident_memory_bytes", "gauge"],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
    expect(text).toContain('hearth_ingest_requests_total{tenant="anonymous",route="/ingest",outcome="ok"} 1\n');
    expect(text).toContain('hearth_ingest_bytes_total{tenant="anonymous",outcome="ok"} 1234\n');
    expect(text).toContain('hearth_query_duration_seconds_count{method="SelectMergeStacktraces"} 1\n');
    expect(text).toContain('hearth_head_series{tenant="anonymous"} 3\n');
    expect(text).toContain('hearth_head_bytes{tenant="anonymous"} 4096\n');
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    expect(rss).toBeGreaterThan(1024 * 1024);
  });

  test("each call has its own registry", () => {
    const a = createMetrics();
    const b = createMetrics();
    a.ingestProfiles.inc({ tenant: "t", outcome: "ok" });
    expect(b.ingestProfiles.get({ tenant: "t", outcome: "ok" })).toBe(0);
    expect(b.registry.render()).not.toContain('hearth_ingest_profiles_total{tenant="t"');
  });

  test("Pyroscope's discard counters and distributor histograms, by its label names", () => {
    const m = createMetrics();
    m.discardedSamples.inc({ reason: "rate_limited", tenant: "t1" });
    m.discardedBytes.inc({ reason: "rate_limited", tenant: "t1" }, 2048);
    m.receivedCompressedBytes.observe({ type: "process_cpu", tenant: "t1" }, 5000);
    m.receivedDecompressedBytes.observe({ type: "process_cpu", tenant: "t1" }, 20000);
    m.receivedSamples.observe({ type: "process_cpu", tenant: "t1" }, 150);
    const text = m.registry.render();
    expectWellFormed(text);
    expect(text).toContain("# TYPE pyroscope_discarded_samples_total counter\n");
    expect(text).toContain("# TYPE pyroscope_discarded_bytes_total counter\n");
    expect(text).toContain('pyroscope_discarded_samples_total{reason="rate_limited",tenant="t1"} 1\n');
    expect(text).toContain('pyroscope_discarded_bytes_total{reason="rate_limited",tenant="t1"} 2048\n');
    for (const h of ["pyroscope_distributor_received_compressed_bytes", "pyroscope_distributor_received_decompressed_bytes", "pyroscope_distributor_received_samples"]) {
      expect(text).toContain(`# TYPE ${h} histogram\n`);
      expect(text).toContain(`${h}_count{type="process_cpu",tenant="t1"} 1\n`);
    }
    // 5000 bytes is below the first bucket (10 KiB), so every bucket counts it.
    expect(text).toContain('pyroscope_distributor_received_compressed_bytes_bucket{type="process_cpu",tenant="t1",le="10240"} 1\n');
    expect(text).toContain('pyroscope_distributor_received_samples_bucket{type="process_cpu",tenant="t1",le="100"} 0\n');
  });
});

describe("exponentialBucketsRange", () => {
  test("spans min to max with a constant factor, like Prometheus' ExponentialBucketsRange", () => {
    expect(exponentialBucketsRange(1, 1000, 4)).toEqual([1, 10, 100, 1000]);
    const b = exponentialBucketsRange(10 * 1024, 15 * 1024 * 1024, 30);
    expect(b.length).toBe(30);
    expect(b[0]).toBe(10240);
    expect(b[29]).toBe(15728640);
    for (let i = 1; i < b.length; i++) expect(b[i]! / b[i - 1]!).toBeCloseTo(1.2879, 2);
    expect(() => exponentialBucketsRange(0, 10, 3)).toThrow();
  });
});
