// End to end: speedscope, trie and tree bodies through the real /ingest, read back through the
// query API. Expected trees and profile types come from Pyroscope's tests and the reference
// (§11.3 trees, §2.7 types and sample rates, §2.4 period = 1e9 / sampleRate ns), not from our code.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { collapse, FIXTURES } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const START = Date.now() - 3600_000;
const END = Date.now() + 3600_000;
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const WALL = "wall:wall:nanoseconds:cpu:nanoseconds";
/** speedscope_test.go's tree for all four fixtures, before the period conversion. */
const TREE = { "a;b": 500, "a;b;c": 500, "a;b;d": 400 };
const scaled = (t: Record<string, number>, k: number) => Object.fromEntries(Object.entries(t).map(([s, v]) => [s, v * k]));

let s: RunningServer;

async function ingest(tenant: string, query: string, body: Uint8Array | string, ctype = "application/octet-stream") {
  // A copy typed with a plain ArrayBuffer, which fetch accepts.
  const payload = typeof body === "string" ? body : new Uint8Array(body);
  const r = await fetch(`${s.url}/ingest?${query}`, { method: "POST", headers: { "content-type": ctype, "x-scope-orgid": tenant }, body: payload });
  return { status: r.status, text: await r.text() };
}

async function rpc(tenant: string, method: string, body: unknown) {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-scope-orgid": tenant },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function profileTypes(tenant: string): Promise<string[]> {
  return ((await rpc(tenant, "ProfileTypes", { start: START, end: END })).profileTypes ?? []).map((p: { ID: string }) => p.ID).sort();
}

/** Each series' labels (except the derived __ ones) as an object, sorted for comparison. */
async function series(tenant: string, names: string[]) {
  const r = await rpc(tenant, "Series", { matchers: ["{}"], labelNames: names, start: START, end: END });
  return (r.labelsSet ?? [])
    .map((ls: { labels: { name: string; value: string }[] }) => Object.fromEntries(ls.labels.map((l) => [l.name, l.value])))
    .sort((a: object, b: object) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function merged(tenant: string, typeId: string, selector: string): Promise<Record<string, number>> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto", "x-scope-orgid": tenant },
    body: toBinary(SelectMergeProfileRequestSchema, create(SelectMergeProfileRequestSchema, { profileTypeID: typeId, labelSelector: selector, start: BigInt(START), end: BigInt(END) })),
  });
  expect(r.status).toBe(200);
  return Object.fromEntries(collapse(fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer())), 0));
}

const fixture = (name: string) => readFileSync(`${FIXTURES}speedscope/${name}.speedscope.json`);

beforeAll(async () => {
  // Small limits so that the tree limit checks can be shown to answer 422.
  s = await startServer({ args: ["--multitenancy", "--limits.max-profile-symbol-value-length", "8", "--limits.max-profile-stacktrace-samples", "50"] });
});
afterAll(async () => {
  await s?.stop();
  removeDir(s.dataDir);
});

describe("speedscope fixtures", () => {
  test("simple as foo → foo{profile_name=simple.txt}, process_cpu, sample rate 10000", async () => {
    const r = await ingest("ss-simple", "name=foo&format=speedscope", fixture("simple"), "application/json");
    expect(r.status, r.text).toBe(200);
    expect(await profileTypes("ss-simple")).toEqual([CPU]);
    expect(await series("ss-simple", ["service_name", "profile_name"])).toEqual([{ service_name: "foo", profile_name: "simple.txt" }]);
    // Unit none: sample rate 10000 → period 100000 ns.
    expect(await merged("ss-simple", CPU, '{service_name="foo"}')).toEqual(scaled(TREE, 100_000));
  });

  test("two-sampled as foo{x=y} → foo.seconds{profile_name=one|two,x=y}, wall, sample rate 100", async () => {
    const r = await ingest("ss-two", "name=foo{x=y}&format=speedscope", fixture("two-sampled"));
    expect(r.status, r.text).toBe(200);
    expect(await profileTypes("ss-two")).toEqual([WALL]);
    expect(await series("ss-two", ["service_name", "profile_name", "x"])).toEqual([
      { service_name: "foo", profile_name: "one", x: "y" },
      { service_name: "foo", profile_name: "two", x: "y" },
    ]);
    for (const name of ["one", "two"]) expect(await merged("ss-two", WALL, `{service_name="foo",profile_name="${name}"}`)).toEqual(scaled(TREE, 10_000_000));
  });

  test("two-sampled-bytes → memory:samples:bytes::, the weights unscaled", async () => {
    const r = await ingest("ss-bytes", "name=foo&format=speedscope", fixture("two-sampled-bytes"));
    expect(r.status, r.text).toBe(200);
    expect(await profileTypes("ss-bytes")).toEqual(["memory:samples:bytes::"]);
    // Bytes have precision multiplier 1 (not 100) and no period.
    for (const name of ["one", "two"]) expect(await merged("ss-bytes", "memory:samples:bytes::", `{profile_name="${name}"}`)).toEqual(scaled(TREE, 1 / 100));
  });

  test("duplicates as foo{x=y} → one series foo{profile_name=one,x=y} with the sum", async () => {
    const r = await ingest("ss-dup", "name=foo{x=y}&format=speedscope", fixture("duplicates"));
    expect(r.status, r.text).toBe(200);
    expect(await profileTypes("ss-dup")).toEqual([CPU]);
    expect(await series("ss-dup", ["service_name", "profile_name", "x"])).toEqual([{ service_name: "foo", profile_name: "one", x: "y" }]);
    // a;b 1500, a;b;c 1500, a;b;d 1200 at sample rate 100 (unit seconds) → period 1e7 ns.
    expect(await merged("ss-dup", CPU, '{service_name="foo"}')).toEqual({ "a;b": 1500e7, "a;b;c": 1500e7, "a;b;d": 1200e7 });
  });

  test("invalid JSON, a wrong $schema, an unknown unit → 422", async () => {
    for (const body of ["{", JSON.stringify({ $schema: "nope" }), readFileSync(`${FIXTURES}speedscope/simple.speedscope.json`, "utf8").replace('"unit": "none"', '"unit": "parsecs"')]) {
      const r = await ingest("ss-bad", "name=foo&format=speedscope", body);
      expect(r.status, r.text).toBe(422);
      expect(JSON.parse(r.text).message).toStartWith("speedscope: ");
    }
    expect(await profileTypes("ss-bad")).toEqual([]);
  });
});

// Bodies written by hand from the format (uvarint name length, name, value, child count, pre-order).
const bytes = (...parts: (number | string)[]) => Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? [...p].map((c) => c.charCodeAt(0)) : [p])));
// trie: "" → "foo;ba" → { "r" 3, "z" 4 }: keys foo;bar 3 and foo;baz 4.
const TRIE = bytes(0, 0, 1, 6, "foo;ba", 0, 2, 1, "r", 3, 0, 1, "z", 4, 0);
// Pyroscope's serialize_nodict_test.go example: a;b 1, a;c 2.
const TREE_BODY = bytes(0, 0, 1, 1, "a", 0, 2, 1, "b", 1, 0, 1, "c", 2, 0);

describe("trie and tree bodies", () => {
  test("format=trie, cpu at the default sample rate 100 → values × 1e7 ns", async () => {
    const r = await ingest("bin", "name=trieapp&format=trie", TRIE);
    expect(r.status, r.text).toBe(200);
    expect(await merged("bin", CPU, '{service_name="trieapp"}')).toEqual({ "foo;bar": 3e7, "foo;baz": 4e7 });
  });

  test("Content-Type binary/octet-stream+trie, .alloc_space → memory, values as sent", async () => {
    const r = await ingest("bin", "name=trieapp.alloc_space", TRIE, "binary/octet-stream+trie");
    expect(r.status, r.text).toBe(200);
    expect(await merged("bin", "memory:alloc_space:bytes::", '{service_name="trieapp"}')).toEqual({ "foo;bar": 3, "foo;baz": 4 });
  });

  test("format=tree, .wall at sampleRate 1000 → values × 1e6 ns", async () => {
    const r = await ingest("bin", "name=treeapp.wall&format=tree&sampleRate=1000", TREE_BODY);
    expect(r.status, r.text).toBe(200);
    expect(await merged("bin", WALL, '{service_name="treeapp"}')).toEqual({ "a;b": 1e6, "a;c": 2e6 });
  });

  test("Content-Type binary/octet-stream+tree, .goroutines → goroutine:goroutines:count::", async () => {
    const r = await ingest("bin", "name=treeapp.goroutines", TREE_BODY, "binary/octet-stream+tree");
    expect(r.status, r.text).toBe(200);
    expect(await merged("bin", "goroutine:goroutines:count::", '{service_name="treeapp"}')).toEqual({ "a;b": 1, "a;c": 2 });
  });

  test("truncated trie and tree bodies, a named root and tree limits → 422 naming the byte", async () => {
    const bad: [string, Uint8Array, RegExp][] = [
      ["format=trie", TRIE.subarray(0, TRIE.length - 1), /^trie: malformed body at byte 19: /],
      ["format=tree", TREE_BODY.subarray(0, 13), /^tree: malformed body at byte 13: the body ends \(13 bytes\) inside a self value/],
      ["format=tree", bytes(1, "r", 0, 0), /byte 0: the root node is named "r"/],
      // The server runs with max_profile_symbol_value_length 8 and max_profile_stacktrace_samples 50.
      ["format=tree", bytes(0, 0, 1, 9, "abcdefghi", 1, 0), /byte 3: name length 9 exceeds the limit of 8 bytes/],
      ["format=tree", bytes(0, 0, 51, ...Array.from({ length: 51 }, () => [1, "x", 1, 0]).flat()), /byte 2: child count 51 exceeds the limit of 50/],
    ];
    for (const [q, body, msg] of bad) {
      const r = await ingest("bin-bad", `name=x&${q}`, body);
      expect(r.status, r.text).toBe(422);
      expect(JSON.parse(r.text).message).toMatch(msg);
    }
    expect(await profileTypes("bin-bad")).toEqual([]);
  });
});
