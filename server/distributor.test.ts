// The distributor's label rules on decoded profiles: sample-label split, sanitization, validation.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createDistributor, sanitizeLabels } from "./distributor.ts";
import type { IngestItem, Ingester } from "./ingester.ts";
import { maybeGunzip } from "./ingest/gunzip.ts";
import { decodePprof } from "./ingest/pprof-decoder.ts";
import { ApiError } from "./errors.ts";

const FIXTURES = new URL("../../shared/fixtures/pprof/", import.meta.url).pathname;
const load = (f: string) => decodePprof(maybeGunzip(new Uint8Array(readFileSync(FIXTURES + f)), 64 << 20));
const limits = { maxProfileSizeBytes: 4 << 20, ingestionBodyLimitBytes: 256 << 20, maxLabelNamesPerSeries: 30, maxLabelNameLength: 1024, maxLabelValueLength: 2048 };

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
