// Every pprof fixture Pyroscope's own ingest tests use, through /ingest as its SDKs send it
// (multipart with `profile` and `sample_type_config`, and raw with format=pprof): the profile type
// IDs and statuses of reference §11.2, the labels of TestIngestPPROFFixtures, and lossless totals.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { createApp, type App } from "../server/app.ts";
import { defaultConfig } from "../server/config.ts";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { tempDir } from "./helpers/server.ts";

const CPU = ["process_cpu:samples:count:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"];
const HEAP = ["memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes", "memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"];

// fixture → [sample_type_config file or null, expected profile type IDs by value index, expected __name__]
const CASES: [string, string | null, string[], string][] = [
  ["heap", null, HEAP, "memory"],
  ["heap_delta", null, HEAP, "memory"],
  ["heap.pb", null, HEAP, "memory"],
  ["heap.pb.gz", null, HEAP, "memory"],
  ["profile_java", null, ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"], "process_cpu"],
  ["go.cpu.labels.pprof", null, CPU, "process_cpu"],
  ["cpu.pprof", null, CPU, "process_cpu"],
  ["cpu.pb.gz", null, CPU, "process_cpu"],
  ["cpu-exemplars.pb.gz", null, CPU, "process_cpu"],
  ["cpu-js.pb.gz", null, ["wall:sample:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"], "wall"],
  ["heap-js.pprof", null, ["memory:objects:count:space:bytes", "memory:space:bytes:space:bytes"], "memory"],
  ["nodejs-heap.pb.gz", null, ["memory:inuse_objects:count:inuse_space:bytes", "memory:inuse_space:bytes:inuse_space:bytes"], "memory"],
  ["nodejs-wall.pb.gz", null, ["wall:samples:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"], "wall"],
  ["req_2.pprof", "req_2.st.json", ["goroutines:goroutine:count:goroutine:count"], "goroutines"],
  ["req_3.pprof", "req_3.st.json", ["block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"], "block"],
  ["req_4.pprof", "req_4.st.json", ["mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"], "mutex"],
  ["req_5.pprof", "req_5.st.json", ["memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes"], "memory"],
];

let app: App;
let dir: string;
beforeAll(async () => {
  dir = tempDir();
  const cfg = defaultConfig();
  cfg.dataDir = dir;
  // The fixtures keep their years-old timestamps and arrive back to back.
  cfg.limits.rejectOlderThan = 0;
  cfg.limits.ingestionRateMb = 0;
  app = await createApp(cfg, () => {});
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

function multipart(profile: Uint8Array, config: string | null, extra: Record<string, Uint8Array> = {}): FormData {
  const form = new FormData();
  form.append("profile", new Blob([profile as Uint8Array<ArrayBuffer>]), "profile.pprof");
  if (config) form.append("sample_type_config", new Blob([config]), "sample_type_config.json");
  for (const [k, v] of Object.entries(extra)) form.append(k, new Blob([v as Uint8Array<ArrayBuffer>]), k);
  return form;
}

async function ingest(query: string, body: BodyInit, headers: Record<string, string> = {}) {
  return app.http.fetch(new Request(`http://hearth/ingest?${query}`, { method: "POST", body, headers }));
}

async function rpc(method: string, body: unknown) {
  const r = await app.http.fetch(
    new Request(`http://hearth/querier.v1.QuerierService/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  );
  expect(r.status).toBe(200);
  return r.json();
}

describe("pprof fixtures through /ingest multipart", () => {
  for (const [file, stc, types, metric] of CASES) {
    test(file, async () => {
      const app_ = `fx-${file.replace(/[^a-z0-9]/gi, "-")}`;
      const config = stc ? readFileSync(FIXTURES + "pprof/" + stc, "utf8") : null;
      const r = await ingest(`name=${encodeURIComponent(`${app_}{qwe=asd}`)}&spyName=foo239`, multipart(readFileSync(FIXTURES + "pprof/" + file), config));
      expect(r.status, await r.clone().text()).toBe(200);

      const series = await rpc("Series", { matchers: [`{service_name="${app_}"}`], start: 1, end: Date.now() + 3600_000 });
      const got = series.labelsSet.map((ls: { labels: { name: string; value: string }[] }) => Object.fromEntries(ls.labels.map((l) => [l.name, l.value])));
      // Sample labels split a profile into several series, so types repeat: compare the set.
      expect([...new Set(got.map((l: Record<string, string>) => l.__profile_type__))].sort()).toEqual([...types].sort());
      for (const l of got) {
        expect(l.service_name).toBe(app_);
        expect(l.qwe).toBe("asd");
        expect(l.pyroscope_spy).toBe("foo239");
        expect(l.__name__).toBe(metric);
        expect(l.__delta__).toBeUndefined(); // steers ingestion, never stored
      }
      // Nothing lost: each type's total equals its column sum in the fixture.
      const p = readPprof(FIXTURES + "pprof/" + file);
      for (const [i, t] of types.entries()) {
        const fg = await rpc("SelectMergeStacktraces", { profileTypeID: t, labelSelector: `{service_name="${app_}"}`, start: 1, end: Date.now() + 3600_000 });
        expect(Number(fg.flamegraph.total), t).toBe(sumColumn(p, i));
      }
    });
  }
});

describe("statuses", () => {
  test("invalid UTF-8 in the string table is 422 and names the problem", async () => {
    const r = await ingest("name=bad&format=pprof", readFileSync(FIXTURES + "pprof/invalid_utf8.pb.gz"));
    expect(r.status).toBe(422);
    expect((await r.json()).message).toMatch(/UTF-8/i);
  });

  test("prev_profile (the old two-profile delta upload) is 422", async () => {
    const cpu = readFileSync(FIXTURES + "pprof/cpu.pprof");
    const r = await ingest("name=old-go", multipart(cpu, null, { prev_profile: cpu }));
    expect(r.status).toBe(422);
    expect((await r.json()).message).toMatch(/unsupported client version/);
  });

  test("text sent as pprof is 422 with a hint", async () => {
    const r = await ingest("name=txt&format=pprof", "foo;bar 10\nfoo;baz 20\n");
    expect(r.status).toBe(422);
    expect((await r.json()).message).toMatch(/text/);
  });

  test("a missing or malformed name is 400", async () => {
    expect((await ingest("format=folded", "a;b 1")).status).toBe(400);
    const r = await ingest(`name=${encodeURIComponent("bad app{")}`, "a;b 1");
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(/service name/);
  });

  test("an empty multipart form stores nothing and answers 200", async () => {
    const form = new FormData();
    form.append("other", "x");
    expect((await ingest("name=empty-form", form)).status).toBe(200);
    const s = await rpc("Series", { matchers: ['{service_name="empty-form"}'] });
    expect(s.labelsSet ?? []).toEqual([]);
  });
});

describe("text formats", () => {
  test("folded with .suffix types, sampleRate turning counts into nanoseconds", async () => {
    const r = await ingest(`name=${encodeURIComponent("txt-app.cpu{env=dev}")}&sampleRate=100&from=now-10s`, "foo;bar 10\nfoo;baz 20\n");
    expect(r.status).toBe(200);
    const fg = await rpc("SelectMergeStacktraces", {
      profileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
      labelSelector: '{service_name="txt-app", env="dev"}',
      start: Date.now() - 3600_000,
      end: Date.now() + 60_000,
    });
    expect(fg.flamegraph.names).toEqual(["total", "foo", "baz", "bar"]);
    expect(Number(fg.flamegraph.total)).toBe(30 * 1e7);
  });

  test("lines: each line counts one", async () => {
    const r = await ingest(`name=lines-app.alloc_objects&format=lines&from=now-10s`, "foo;bar\nfoo;baz\nfoo;bar\n");
    expect(r.status).toBe(200);
    const fg = await rpc("SelectMergeStacktraces", {
      profileTypeID: "memory:alloc_objects:count::",
      labelSelector: '{service_name="lines-app"}',
      start: Date.now() - 3600_000,
      end: Date.now() + 60_000,
    });
    expect(Number(fg.flamegraph.total)).toBe(3);
  });

  test("an unknown .suffix is 400 naming it", async () => {
    const r = await ingest(`name=com.example.app`, "a;b 1");
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(/unknown profile type: app/);
  });
});
