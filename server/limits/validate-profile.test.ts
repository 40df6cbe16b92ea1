// Per-profile limits: window, size, sample count, sample labels (refused, with their reasons) and
// stack depth and symbol length (truncated the way Pyroscope truncates).

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { defaultConfig } from "../config.ts";
import { maybeGunzip } from "../ingest/gunzip.ts";
import { decodePprof } from "../ingest/pprof-decoder.ts";
import { legacyType, profileFromStacks } from "../ingest/text-profile.ts";
import { collapseProfile } from "../../storage/model/collapse.ts";
import type { Profile } from "../../storage/model/profile.ts";
import { DiscardError } from "./discard.ts";
import { validateProfile, type ProfileLimits } from "./validate-profile.ts";

const FIXTURES = new URL("../../../shared/fixtures/pprof/", import.meta.url).pathname;
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOUR = 3_600_000;
const base: ProfileLimits = defaultConfig().limits;
const labels = [{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "svc" }];
const ctx = { tenant: "t1", labels, size: 1000, nowMs: NOW };
const cpu = legacyType("app.cpu").type;

const stacks = (s: Record<string, number>, timeMs = NOW): Profile =>
  profileFromStacks(Object.entries(s).map(([k, v]) => [k.split(";"), v] as [string[], number]), cpu, 0, timeMs);

function refusal(f: () => unknown): DiscardError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DiscardError);
    expect((e as DiscardError).code).toBe("invalid_argument");
    return e as DiscardError;
  }
  throw new Error("expected a DiscardError");
}

describe("ingestion window", () => {
  test("(now − reject_older_than, now + reject_newer_than), open at both ends", () => {
    const at = (ms: number) => () => validateProfile(stacks({ a: 1 }, ms), base, ctx);
    expect(() => at(NOW - HOUR + 1)()).not.toThrow();
    expect(() => at(NOW + 10 * 60_000 - 1)()).not.toThrow();
    const old = refusal(at(NOW - HOUR));
    expect(old.reason).toBe("not_in_ingestion_window");
    expect(old.message).toContain("has time 2026-01-15T11:00:00.000Z");
    expect(old.message).toContain("the ingestion window is 2026-01-15T11:00:00.000Z to 2026-01-15T12:10:00.000Z");
    expect(old.message).toContain("reject_older_than 1h, reject_newer_than 10m");
    expect(old.message).toContain('tenant "t1"');
    expect(old.message).toContain('service_name="svc"');
    expect(refusal(at(NOW + 10 * 60_000)).reason).toBe("not_in_ingestion_window");
  });

  test("0 turns either end off", () => {
    const p = stacks({ a: 1 }, NOW - 365 * 24 * HOUR);
    expect(() => validateProfile(p, { ...base, rejectOlderThan: 0 }, ctx)).not.toThrow();
    const future = stacks({ a: 1 }, NOW + 24 * HOUR);
    expect(refusal(() => validateProfile(future, { ...base, rejectOlderThan: 0 }, ctx)).message).toContain("the ingestion window ends at 2026-01-15T12:10:00.000Z");
    expect(() => validateProfile(future, { ...base, rejectNewerThan: 0 }, ctx)).not.toThrow();
  });

  test("time 0 means now", () => {
    const p = stacks({ a: 1 });
    p.timeNanos = 0n;
    expect(validateProfile(p, base, ctx).timeNanos).toBe(BigInt(NOW) * 1000000n);
    expect(p.timeNanos).toBe(0n); // the input is left alone
  });
});

describe("refusals", () => {
  test("no sample types is a malformed profile", () => {
    const p = stacks({ a: 1 });
    expect(refusal(() => validateProfile({ ...p, sampleTypes: [] }, base, ctx)).reason).toBe("malformed_profile");
  });

  test("max_profile_size_bytes", () => {
    const e = refusal(() => validateProfile(stacks({ a: 1 }), { ...base, maxProfileSizeBytes: 999 }, ctx));
    expect(e.reason).toBe("profile_size_limit");
    expect(e.message).toContain("is 1000 bytes uncompressed, more than the limit of 999 (max_profile_size_bytes)");
    expect(() => validateProfile(stacks({ a: 1 }), { ...base, maxProfileSizeBytes: 1000 }, ctx)).not.toThrow();
  });

  test("max_profile_stacktrace_samples", () => {
    const p = stacks({ a: 1, b: 2, c: 3 });
    const e = refusal(() => validateProfile(p, { ...base, maxProfileStacktraceSamples: 2 }, ctx));
    expect(e.reason).toBe("samples_limit");
    expect(e.message).toContain("has 3 samples, more than the limit of 2 (max_profile_stacktrace_samples)");
    expect(() => validateProfile(p, { ...base, maxProfileStacktraceSamples: 3 }, ctx)).not.toThrow();
  });

  test("max_profile_stacktrace_sample_labels, on a real labelled profile", () => {
    const p = decodePprof(maybeGunzip(new Uint8Array(readFileSync(FIXTURES + "go.cpu.labels.pprof")), 1 << 26));
    const most = Math.max(...p.samples.labels!.map((ls) => ls.length));
    expect(most).toBeGreaterThan(1);
    const at = { ...ctx, nowMs: Number(p.timeNanos / 1000000n) };
    const e = refusal(() => validateProfile(p, { ...base, maxProfileStacktraceSampleLabels: most - 1 }, at));
    expect(e.reason).toBe("sample_labels_limit");
    expect(e.message).toContain(`has ${most} labels, more than the limit of ${most - 1}`);
    expect(() => validateProfile(p, { ...base, maxProfileStacktraceSampleLabels: most }, at)).not.toThrow();
  });
});

describe("truncation", () => {
  test("deep stacks keep their root-most frames", () => {
    const p = stacks({ "r;a;b;c;d;leaf": 5, "r;a;x": 2, "r;a;b;c;d;e;f": 1 });
    const out = validateProfile(p, { ...base, maxProfileStacktraceDepth: 4 }, ctx);
    expect(Object.fromEntries(collapseProfile(out, 0))).toEqual({ "r;a;b;c": 6, "r;a;x": 2 });
    expect(Object.fromEntries(collapseProfile(p, 0))).toEqual({ "r;a;b;c;d;leaf": 5, "r;a;x": 2, "r;a;b;c;d;e;f": 1 });
    // Under the limit nothing is copied.
    expect(validateProfile(p, { ...base, maxProfileStacktraceDepth: 7 }, ctx).samples).toBe(p.samples);
  });

  test("long symbols keep their suffix; functions, file names and sample label values", () => {
    const p = stacks({ "main;com.example.very.long.package.Klass.method": 3 });
    p.functions = p.functions.map((f) => ({ ...f, filename: "/src/deep/path/Klass.java" }));
    p.samples.labels = [[{ key: "span_name", str: "GET /a/very/long/route", num: 0, numUnit: "" }]];
    const out = validateProfile(p, { ...base, maxProfileSymbolValueLength: 12 }, ctx);
    expect(Object.fromEntries(collapseProfile(out, 0))).toEqual({ "main;Klass.method": 3 });
    expect(out.functions.map((f) => f.filename)).toEqual(["h/Klass.java", "h/Klass.java"]);
    expect(out.samples.labels![0]![0]!.str).toBe("y/long/route");
    expect(p.functions.map((f) => f.name)).toContain("com.example.very.long.package.Klass.method"); // input untouched
  });
});
