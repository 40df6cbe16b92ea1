// Every real pprof fixture, decoded by the ingest decoder, survives the WAL record encoding exactly.

import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { decodeRecords, encodeRecords } from "../storage/head/record.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";

const files = readdirSync(FIXTURES + "pprof").filter((f) => !f.endsWith(".json") && f !== "invalid_utf8.pb.gz");

test("the fixture folder is there", () => {
  expect(files.length).toBeGreaterThan(20);
});

test.each(files)("%s round-trips through a WAL record", (f) => {
  let b: Uint8Array = readFileSync(FIXTURES + "pprof/" + f);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  const profile = decodePprof(b);
  const labels = [{ name: "service_name", value: f }];
  const [out] = decodeRecords(encodeRecords([{ tenant: "anonymous", labels, profile }]));
  expect(out.tenant).toBe("anonymous");
  expect(out.labels).toEqual(labels);
  expect(out.profile).toEqual(profile);
});
