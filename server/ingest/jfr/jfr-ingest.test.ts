import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { labelsHash } from "../../../storage/model/labels.ts";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import { selectSamples } from "../../../storage/model/profile.ts";
import { collapse, FIXTURES, readPprof, sortedCollapsed } from "../../../test/helpers/pprof-oracle.ts";
import { ApiError } from "../../errors.ts";
import type { IngestParams } from "../ingest-params.ts";
import { jfrToIngestItems } from "./jfr-ingest.ts";

const DIR = `${FIXTURES}jfr/`;
const NO_LABELS_HASH = "17241709254077376921";

function params(over: Partial<IngestParams> = {}): IngestParams {
  return { tags: new Map([["__name__", "kafka.app"]]), app: "kafka.app", fromMs: 1_700_000_000_000, untilMs: 1_700_000_010_000, sampleRate: 100, spyName: "foo239", ...over };
}

const gunzip = (f: string) => new Uint8Array(gunzipSync(readFileSync(DIR + f)));

describe("the fixtures convert to exactly the expected profiles", () => {
  for (const input of ["dump1", "dump2"]) {
    const items = jfrToIngestItems(gunzip(`${input}.jfr.gz`), gunzip(`${input}.labels.pb.gz`), params());
    const expected = readdirSync(DIR).filter((f) => f.startsWith(`${input}.jfr.gz.`) && f.endsWith(".pb.gz"));
    test(`${input}: ${expected.length} expected files`, () => {
      expect(expected.length).toBeGreaterThan(4);
      for (const file of expected) {
        const [typeId, hash] = file.slice(`${input}.jfr.gz.`.length, -".pb.gz".length).split(".");
        // The item and sample type whose profile type id (':' → '_') names the file.
        const found = items.flatMap((it) =>
          it.profile.sampleTypes.map((st, i) => ({ it, i, id: [it.labels.find((l) => l.name === "__name__")!.value, st.type, st.unit, it.profile.periodType!.type, it.profile.periodType!.unit].join("_") })),
        );
        const hit = found.filter((f) => f.id === typeId);
        expect(hit.length, file).toBe(1);
        const { it, i } = hit[0];
        // The query's extra labels are a thread_name whose Pyroscope label hash is in the name.
        const keep: number[] = [];
        for (let s = 0; s < it.profile.samples.count; s++) {
          const tn = it.profile.samples.labels?.[s].find((l) => l.key === "thread_name");
          if (hash === NO_LABELS_HASH || (tn && labelsHash([{ name: "thread_name", value: tn.str }]).toString() === hash)) keep.push(s);
        }
        expect(keep.length, file).toBeGreaterThan(0);
        const mine = [...collapseProfile(selectSamples(it.profile, keep), i)].map(([k, v]) => `${k} ${v}`).sort();
        expect(mine, file).toEqual(sortedCollapsed(collapse(readPprof(DIR + file), 0)));
      }
    });
  }
});

describe("series labels", () => {
  const jfr = gunzip("dump2.jfr.gz");

  test("tags, spy, delta, jfr_event, metric and the full app name as service_name", () => {
    const items = jfrToIngestItems(jfr, null, params({ tags: new Map([["__name__", "kafka.app"], ["env", "prod"], ["__private", "x"]]) }));
    const metrics = items.map((it) => it.labels.find((l) => l.name === "__name__")!.value).sort();
    expect(metrics).toEqual(["memory", "memory", "process_cpu", "wall"]);
    const cpu = items.find((it) => it.labels.some((l) => l.value === "process_cpu"))!;
    expect(cpu.labels).toEqual([
      { name: "__delta__", value: "false" },
      { name: "__name__", value: "process_cpu" },
      { name: "env", value: "prod" },
      { name: "jfr_event", value: "wall" },
      { name: "pyroscope_spy", value: "foo239" },
      { name: "service_name", value: "kafka.app" },
    ]);
    expect(cpu.profile.timeNanos).toBe(1_700_000_000_000_000_000n);
    expect(cpu.profile.durationNanos).toBe(10_000_000_000);
  });

  test("with a service_name tag the app name becomes app_name", () => {
    const items = jfrToIngestItems(jfr, null, params({ tags: new Map([["__name__", "kafka.app"], ["service_name", "svc"]]) }));
    const ls = Object.fromEntries(items[0].labels.map((l) => [l.name, l.value]));
    expect(ls.service_name).toBe("svc");
    expect(ls.app_name).toBe("kafka.app");
  });

  test("sampleRate sets the cpu period; 0 leaves values at 0 like Pyroscope", () => {
    const total = (sr: number) => {
      const cpu = jfrToIngestItems(jfr, null, params({ sampleRate: sr })).find((it) => it.labels.some((l) => l.value === "process_cpu"))!;
      return cpu.profile.samples.values.reduce((a, b) => a + b, 0);
    };
    expect(total(100) / 1e7).toBe(total(1000) / 1e6);
    expect(total(0)).toBe(0);
  });
});

test("a damaged recording is a 422 that names the problem", () => {
  const jfr = gunzip("dump1.jfr.gz");
  const zeroed = jfr.slice();
  zeroed[0] = 0;
  for (const bad of [zeroed, jfr.subarray(0, jfr.length >> 1), new Uint8Array([1, 2, 3])]) {
    let err: unknown;
    try {
      jfrToIngestItems(bad, null, params());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unprocessable");
    expect((err as ApiError).message).toMatch(/^jfr: (not a JFR chunk|truncated)/);
  }
});
