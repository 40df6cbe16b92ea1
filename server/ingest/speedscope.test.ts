import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { collapseProfile } from "../../storage/model/collapse.ts";
import { FIXTURES } from "../../test/helpers/pprof-oracle.ts";
import { ApiError } from "../errors.ts";
import type { IngestItem } from "../ingester.ts";
import { parseIngestParams } from "./ingest-params.ts";
import { speedscopeToIngestItems } from "./speedscope.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(`${FIXTURES}speedscope/${name}.speedscope.json`));
const params = (query: string) => parseIngestParams(new URL(`http://h/ingest?${query}`), 1_700_000_000_000);
const SCHEMA = "https://www.speedscope.app/file-format-schema.json";
const json = (doc: unknown) => new TextEncoder().encode(JSON.stringify(doc));

const labelsOf = (it: IngestItem) => Object.fromEntries(it.labels.map((l) => [l.name, l.value]));
const tree = (it: IngestItem) => Object.fromEntries(collapseProfile(it.profile, 0));
const typeOf = (it: IngestItem) => {
  const p = it.profile;
  return [labelsOf(it).__name__, p.sampleTypes[0].type, p.sampleTypes[0].unit, p.periodType?.type ?? "", p.periodType?.unit ?? ""].join(":");
};

/** speedscope_test.go's expected tree (a;b 500, a;b;c 500, a;b;d 400) scaled by the period. */
const expected = (scale: number, times = 1) => ({ "a;b": 500 * times * scale, "a;b;c": 500 * times * scale, "a;b;d": 400 * times * scale });

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

describe("speedscope fixtures (Pyroscope's speedscope_test.go, reference §11.3 / §2.7)", () => {
  test("simple (evented, unit none) as foo: foo{profile_name=simple.txt}, sample rate 10000", () => {
    const items = speedscopeToIngestItems(fixture("simple"), params("name=foo"));
    expect(items.length).toBe(1);
    const [it] = items;
    expect(labelsOf(it)).toEqual({ __delta__: "false", __name__: "process_cpu", profile_name: "simple.txt", pyroscope_spy: "unknown", service_name: "foo" });
    expect(typeOf(it)).toBe("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    // Sample rate 10000 → period 1e9/10000 ns, every value × period.
    expect(it.profile.period).toBe(1e9 / 10000);
    expect(tree(it)).toEqual(expected(1e9 / 10000));
    expect(it.profile.timeNanos).toBe(1_700_000_000_000n * 1_000_000n);
  });

  test("two-sampled (unit seconds) as foo{x=y}: foo.seconds{profile_name=one|two,x=y}, sample rate 100", () => {
    const items = speedscopeToIngestItems(fixture("two-sampled"), params("name=foo{x=y}"));
    expect(items.map((it) => labelsOf(it).profile_name)).toEqual(["one", "two"]);
    for (const it of items) {
      expect(labelsOf(it)).toMatchObject({ __name__: "wall", service_name: "foo", x: "y" });
      expect(typeOf(it)).toBe("wall:wall:nanoseconds:cpu:nanoseconds");
      expect(it.profile.period).toBe(1e9 / 100);
      expect(tree(it)).toEqual(expected(1e9 / 100));
    }
  });

  test("two-sampled-bytes: memory:samples:bytes:: with the weights as they are", () => {
    const items = speedscopeToIngestItems(fixture("two-sampled-bytes"), params("name=foo"));
    expect(items.length).toBe(2);
    for (const it of items) {
      expect(typeOf(it)).toBe("memory:samples:bytes::");
      expect(labelsOf(it).service_name).toBe("foo");
      // Bytes have precision multiplier 1 and sample rate 0: weights 1+1+3 (c), 4 (d), 5 (b).
      expect(tree(it)).toEqual({ "a;b": 5, "a;b;c": 5, "a;b;d": 4 });
    }
  });

  test("duplicates: three equal-keyed profiles merge into foo{profile_name=one,x=y}", () => {
    const items = speedscopeToIngestItems(fixture("duplicates"), params("name=foo{x=y}"));
    expect(items.length).toBe(1);
    expect(labelsOf(items[0])).toMatchObject({ __name__: "process_cpu", service_name: "foo", profile_name: "one", x: "y" });
    expect(tree(items[0])).toEqual(expected(1e9 / 100, 3));
  });
});

describe("sample rate and units", () => {
  test("a sampleRate other than 100 is kept (the precision multiplier still applies)", () => {
    const [it] = speedscopeToIngestItems(fixture("simple"), params("name=foo&sampleRate=1000"));
    expect(it.profile.period).toBe(1e6);
    expect(tree(it)).toEqual(expected(1e6));
    const [zero] = speedscopeToIngestItems(fixture("two-sampled"), params("name=foo&sampleRate=0"));
    expect(typeOf(zero)).toBe("wall:samples:count::");
    expect(tree(zero)).toEqual(expected(1));
  });

  const oneUnit = (unit: string, weights: number[]) =>
    json({
      $schema: SCHEMA,
      shared: { frames: [{ name: "a" }, { name: "b" }] },
      profiles: [{ type: "sampled", name: "p", unit, startValue: 0, endValue: 1, samples: weights.map(() => [0, 1]), weights }],
    });

  test("time units become nanoseconds: ms, µs and s exactly, as in Pyroscope", () => {
    for (const [unit, ns] of [["seconds", 1e9], ["milliseconds", 1e6], ["microseconds", 1e3]] as const) {
      const [it] = speedscopeToIngestItems(oneUnit(unit, [7]), params("name=svc"));
      expect(tree(it), unit).toEqual({ "a;b": 7 * ns });
    }
  });

  test("nanoseconds keep their value (Pyroscope's uint32 overflow would zero them)", () => {
    const [it] = speedscopeToIngestItems(oneUnit("nanoseconds", [1234, 5.9]), params("name=svc"));
    expect(typeOf(it)).toBe("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    expect(it.profile.period).toBe(1);
    expect(tree(it)).toEqual({ "a;b": 1239 });
  });

  test("weights are truncated before scaling, as Pyroscope does", () => {
    const [it] = speedscopeToIngestItems(oneUnit("seconds", [1.9, 0.5]), params("name=svc&sampleRate=0"));
    expect(tree(it)).toEqual({ "a;b": 100 });
  });
});

describe("evented profiles", () => {
  const evented = (events: [string, number, number][], unit = "seconds") =>
    json({
      $schema: SCHEMA,
      shared: { frames: [{ name: "a" }, { name: "b" }] },
      profiles: [{ type: "evented", name: "ev", unit, startValue: 0, endValue: 10, events: events.map(([type, frame, at]) => ({ type, frame, at })) }],
    });

  test("time before a child opens is credited without the precision multiplier (Pyroscope's asymmetry)", () => {
    const body = evented([["O", 0, 0], ["O", 1, 3], ["C", 1, 5], ["C", 0, 10]]);
    const [it] = speedscopeToIngestItems(body, params("name=svc&sampleRate=0"));
    // a: 3 on open (×1) + 5 on close (×100); a;b: 2 on close (×100).
    expect(tree(it)).toEqual({ a: 3 + 500, "a;b": 200 });
  });

  test("malformed event streams are 422 with the event named", () => {
    const cases: [[string, number, number][], string][] = [
      [[["O", 0, 5], ["C", 0, 4]], "event 1 is out of order (at 4 < 5)"],
      [[["C", 0, 1]], "event 0 closes frame 0 at 1 but no frame is open"],
      [[["O", 0, 0], ["O", 1, 1], ["C", 0, 2]], "event 2 closes frame 0, which is not the innermost open frame (1)"],
      [[["X", 0, 0]], 'event 0 has unknown type "X"'],
      [[["O", 2, 0]], "event 0: frame 2 is not an index into shared.frames (2 frames)"],
    ];
    for (const [events, msg] of cases) {
      const e = apiError(() => speedscopeToIngestItems(evented(events), params("name=svc")));
      expect(e.code).toBe("unprocessable");
      expect(e.message).toContain(msg);
    }
  });
});

describe("files Pyroscope rejects", () => {
  const base = { $schema: SCHEMA, shared: { frames: [{ name: "main" }] } };
  const reject = (body: Uint8Array, q = "name=foo") => apiError(() => speedscopeToIngestItems(body, params(q)));

  test("invalid JSON, a missing or wrong $schema → 422", () => {
    expect(reject(new TextEncoder().encode("{not json"))).toMatchObject({ code: "unprocessable" });
    expect(reject(new TextEncoder().encode("{not json")).message).toStartWith("speedscope: invalid JSON");
    expect(reject(json({ profiles: [] })).message).toContain('unknown schema ""');
    expect(reject(json({ $schema: "https://example.com/x.json" })).message).toContain("unknown schema");
  });

  test("unknown unit and unknown profile type → 422 (Pyroscope's unknown-unit test payloads)", () => {
    const sampled = json({ ...base, profiles: [{ type: "sampled", unit: "TRIGGER_PANIC_UNKNOWN_UNIT", name: "poc", startValue: 0, endValue: 1, samples: [[0]], weights: [1] }] });
    const e = reject(sampled);
    expect(e.code).toBe("unprocessable");
    expect(e.message).toBe('speedscope: profile "poc" has unknown unit "TRIGGER_PANIC_UNKNOWN_UNIT" (expected one of none, nanoseconds, microseconds, milliseconds, seconds, bytes)');
    const evented = json({ ...base, profiles: [{ type: "evented", unit: "TRIGGER_PANIC_UNKNOWN_UNIT", name: "poc", events: [{ type: "O", frame: 0, at: 0 }, { type: "C", frame: 0, at: 1 }] }] });
    expect(reject(evented).code).toBe("unprocessable");
    const proto = json({ ...base, profiles: [{ type: "sampled", unit: "constructor", name: "poc", samples: [[0]], weights: [1] }] });
    expect(reject(proto).message).toContain('unknown unit "constructor"');
    const badType = json({ ...base, profiles: [{ type: "flat", unit: "seconds", name: "poc" }] });
    expect(reject(badType).message).toContain('unsupported type "flat"');
  });

  test("sample/weight mismatches, negative weights, bad frames and wrong JSON types → 422", () => {
    const p = { type: "sampled", unit: "seconds", name: "p" };
    expect(reject(json({ ...base, profiles: [{ ...p, samples: [[0]], weights: [] }] })).message).toContain("1 samples but 0 weights");
    expect(reject(json({ ...base, profiles: [{ ...p, samples: [[0]], weights: [-1] }] })).message).toContain("weight 0 is negative");
    expect(reject(json({ ...base, profiles: [{ ...p, samples: [[1]], weights: [1] }] })).message).toContain("frame 1 is not an index");
    expect(reject(json({ ...base, profiles: { x: 1 } })).message).toBe("speedscope: profiles must be an array");
    expect(reject(json({ ...base, profiles: [{ ...p, weights: ["1"] }] })).message).toBe('speedscope: profiles[0].weights[0] must be a number, got "1"');
  });

  test("several profiles with unit none: 'none' is no profile type → 422", () => {
    const p = { type: "sampled", unit: "none", samples: [[0]], weights: [1] };
    const e = reject(json({ ...base, profiles: [{ ...p, name: "x" }, { ...p, name: "y" }] }));
    expect(e.code).toBe("unprocessable");
    expect(e.message).toContain("unknown profile type: none");
  });
});

describe("labels and merging", () => {
  test("profile_name from the file wins over a profile_name tag; service_name tag moves the app to app_name", () => {
    const items = speedscopeToIngestItems(fixture("simple"), params("name=foo{profile_name=mine,service_name=svc}"));
    expect(labelsOf(items[0])).toMatchObject({ profile_name: "simple.txt", service_name: "svc", app_name: "foo" });
  });

  test("profiles are ordered by startValue; keys differing in startValue stay apart", () => {
    const prof = (name: string, startValue: number, unit = "seconds") => ({ type: "sampled", name, unit, startValue, samples: [[0]], weights: [startValue + 1] });
    const body = json({ $schema: SCHEMA, shared: { frames: [{ name: "m" }] }, profiles: [prof("late", 5), prof("early", 1), prof("late", 5), prof("late", 2, "bytes")] });
    const items = speedscopeToIngestItems(body, params("name=app&sampleRate=0"));
    expect(items.map((it) => [labelsOf(it).profile_name, typeOf(it), tree(it).m])).toEqual([
      ["early", "wall:samples:count::", 200],
      ["late", "memory:samples:bytes::", 3],
      ["late", "wall:samples:count::", 1200],
    ]);
  });

  test("field names match case-insensitively, as Go's encoding/json does", () => {
    const body = json({ $SCHEMA: SCHEMA, Shared: { Frames: [{ Name: "a" }] }, Profiles: [{ Type: "sampled", Name: "n", Unit: "bytes", Samples: [[0]], Weights: [4] }] });
    expect(tree(speedscopeToIngestItems(body, params("name=x"))[0])).toEqual({ a: 4 });
  });

  test("an empty file stores nothing", () => {
    expect(speedscopeToIngestItems(json({ $schema: SCHEMA }), params("name=x"))).toEqual([]);
  });
});
