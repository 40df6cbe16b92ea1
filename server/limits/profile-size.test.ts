// The size estimate for profiles without pprof bytes, checked against real pprof fixtures'
// actual uncompressed sizes.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { maybeGunzip } from "../ingest/gunzip.ts";
import { decodePprof } from "../ingest/pprof-decoder.ts";
import { estimateProfileSize, labelsSize, varintSize } from "./profile-size.ts";

const FIXTURES = new URL("../../../shared/fixtures/pprof/", import.meta.url).pathname;
const NAMES = ["cpu.pb.gz", "go.cpu.labels.pprof", "heap", "profile_java", "profile_ruby", "dotnet-pprof-73.pb.gz", "nodejs-wall.pb.gz", "heap_delta"];

describe("estimateProfileSize", () => {
  test.each(NAMES)("%s: within 10%% of its pprof size", (name) => {
    const raw = maybeGunzip(new Uint8Array(readFileSync(FIXTURES + name)), 1 << 28);
    const est = estimateProfileSize(decodePprof(raw));
    expect(est / raw.length).toBeGreaterThan(0.9);
    expect(est / raw.length).toBeLessThan(1.1);
  });
});

describe("helpers", () => {
  test("varint sizes at each boundary", () => {
    expect([0, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 35 - 1, 2 ** 35, 2 ** 49, 2 ** 53].map(varintSize)).toEqual([
      1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 8, 8,
    ]);
    expect(varintSize(-1)).toBe(10);
  });

  test("labels count as the bytes of names and values, as Pyroscope counts them", () => {
    expect(labelsSize([{ name: "service_name", value: "api" }, { name: "__name__", value: "process_cpu" }])).toBe(12 + 3 + 8 + 11);
  });
});
