// End to end: JFR recordings (async-profiler, with their LabelsSnapshot) go in through /ingest the
// way Pyroscope's integration test sends them, and every expected SelectMergeProfile answer in the
// fixtures comes back, stack for stack.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ProfileSchema } from "../server/api/gen/google/v1/profile_pb.ts";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { labelsHash } from "../storage/model/labels.ts";
import { collapse, FIXTURES, readPprof, sortedCollapsed } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, type RunningServer } from "./helpers/server.ts";

const DIR = `${FIXTURES}jfr/`;
const START = 1000; // ms
const END = Date.now() + 3600_000;
// Reference §11.1: the profile types the fixtures' expected files name, and the empty-set hash.
const TYPE_IDS = [
  "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
  "wall:wall:nanoseconds:wall:nanoseconds",
  "memory:alloc_in_new_tlab_objects:count:space:bytes",
  "memory:alloc_in_new_tlab_bytes:bytes:space:bytes",
  "memory:live:count:objects:count",
];
const NO_LABELS_HASH = "17241709254077376921";
// The hash in a file name is Pyroscope's hash of the query's extra labels: one of the worker threads.
const THREAD_BY_HASH = new Map<string, string>();
for (let n = 1; n <= 8; n++) THREAD_BY_HASH.set(labelsHash([{ name: "thread_name", value: `pool-2-thread-${n}` }]).toString(), `pool-2-thread-${n}`);

async function ingestMultipart(s: RunningServer, app: string, input: string) {
  const form = new FormData();
  form.append("jfr", new Blob([readFileSync(`${DIR}${input}.jfr.gz`)]), "jfr");
  form.append("labels", new Blob([readFileSync(`${DIR}${input}.labels.pb.gz`)]), "labels");
  return fetch(`${s.url}/ingest?name=${encodeURIComponent(app)}&spyName=foo239&format=jfr`, { method: "POST", body: form });
}

async function mergeCollapsed(s: RunningServer, typeId: string, selector: string): Promise<string[]> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
    method: "POST",
    headers: { "content-type": "application/proto" },
    body: toBinary(SelectMergeProfileRequestSchema, create(SelectMergeProfileRequestSchema, { profileTypeID: typeId, labelSelector: selector, start: BigInt(START), end: BigInt(END) })),
  });
  expect(r.status, `${typeId} ${selector}`).toBe(200);
  return sortedCollapsed(collapse(fromBinary(ProfileSchema, new Uint8Array(await r.arrayBuffer())), 0));
}

describe("JFR through /ingest", () => {
  let s: RunningServer;

  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.stop();
    if (s) removeDir(s.dataDir);
  });

  for (const input of ["dump1", "dump2"]) {
    test(`${input}: every expected SelectMergeProfile answer`, async () => {
      const app = `jfr-e2e-${input}`;
      const r = await ingestMultipart(s, app, input);
      expect(r.status, await r.text()).toBe(200);
      const files = readdirSync(DIR).filter((f) => f.startsWith(`${input}.jfr.gz.`) && f.endsWith(".pb.gz"));
      expect(files.length).toBeGreaterThan(4);
      for (const file of files) {
        const [typePart, hash] = file.slice(`${input}.jfr.gz.`.length, -".pb.gz".length).split(".");
        const typeId = TYPE_IDS.find((t) => t.replaceAll(":", "_") === typePart);
        expect(typeId, `${file}: profile type`).toBeDefined();
        let selector = `{service_name="${app}"}`;
        if (hash !== NO_LABELS_HASH) {
          const thread = THREAD_BY_HASH.get(hash);
          expect(thread, `${file}: label hash`).toBeDefined();
          selector = `{service_name="${app}", thread_name="${thread}"}`;
        }
        const got = await mergeCollapsed(s, typeId!, selector);
        expect(got.length, file).toBeGreaterThan(0);
        expect(got, file).toEqual(sortedCollapsed(collapse(readPprof(DIR + file), 0)));
      }
    });
  }

  test("a raw (non-multipart) JFR body is accepted", async () => {
    const app = "jfr-e2e-raw";
    const raw = gunzipSync(readFileSync(`${DIR}dump1.jfr.gz`));
    const r = await fetch(`${s.url}/ingest?name=${app}&spyName=foo239&format=jfr`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: raw });
    expect(r.status, await r.text()).toBe(200);
    // Without a labels part there are no thread names; the whole profile matches the unfiltered answer.
    const got = await mergeCollapsed(s, TYPE_IDS[0], `{service_name="${app}"}`);
    expect(got).toEqual(sortedCollapsed(collapse(readPprof(`${DIR}dump1.jfr.gz.process_cpu_cpu_nanoseconds_cpu_nanoseconds.${NO_LABELS_HASH}.pb.gz`), 0)));
  });

  test("a recording whose from is months before until (a duration of months) still flushes into a block", async () => {
    const app = "jfr-e2e-long";
    const raw = gunzipSync(readFileSync(`${DIR}dump1.jfr.gz`));
    const r = await fetch(`${s.url}/ingest?name=${app}&spyName=foo239&format=jfr&from=now-90d&until=now`, { method: "POST", body: raw });
    expect(r.status, await r.text()).toBe(200);
    const flush = await fetch(`${s.url}/ingester/flush`, { method: "POST" });
    expect(flush.status, await flush.text()).toBe(200);
    const got = await mergeCollapsed(s, TYPE_IDS[0], `{service_name="${app}"}`);
    expect(got).toEqual(sortedCollapsed(collapse(readPprof(`${DIR}dump1.jfr.gz.process_cpu_cpu_nanoseconds_cpu_nanoseconds.${NO_LABELS_HASH}.pb.gz`), 0)));
  });

  test("a corrupted recording (byte 0 zeroed) is a 422 naming the problem", async () => {
    const jfr = gunzipSync(readFileSync(`${DIR}dump1.jfr.gz`));
    jfr[0] = 0;
    const form = new FormData();
    form.append("jfr", new Blob([jfr]), "jfr");
    const r = await fetch(`${s.url}/ingest?name=jfr-e2e-corrupt&spyName=foo239&format=jfr`, { method: "POST", body: form });
    expect(r.status).toBe(422);
    expect(await r.text()).toContain("not a JFR chunk");
    // nothing was stored for it
    const got = await mergeCollapsed(s, TYPE_IDS[0], `{service_name="jfr-e2e-corrupt"}`);
    expect(got).toEqual([]);
  });
});
