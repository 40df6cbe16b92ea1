// Round trip: every pprof fixture decoded, encoded and decoded again gives the same model.

import { describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../ingest/pprof-decoder.ts";
import { ProfileSchema } from "./gen/google/v1/profile_pb.ts";
import { encodePprof, toPprofMessage } from "./pprof-encode.ts";

const dir = new URL("../../../shared/fixtures/pprof", import.meta.url).pathname;
const fixtures = readdirSync(dir).filter((f) => !f.endsWith(".json") && f !== "invalid_utf8.pb.gz");

function load(name: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(`${dir}/${name}`));
  return raw[0] === 0x1f && raw[1] === 0x8b ? new Uint8Array(gunzipSync(raw)) : raw;
}

describe("encodePprof", () => {
  test.each(fixtures)("%s round-trips", (name) => {
    const p = decodePprof(load(name));
    const bytes = encodePprof(p);
    expect(decodePprof(bytes)).toEqual(p);
    // protobuf-es reads it too, with a deduplicated string table that starts with "".
    const m = fromBinary(ProfileSchema, bytes);
    expect(m.stringTable[0]).toBe("");
    expect(new Set(m.stringTable).size).toBe(m.stringTable.length);
    expect(m.sample.length).toBe(p.samples.count);
  });

  test("ids are index + 1; a location without mapping gets mapping id 0", () => {
    const p = decodePprof(load("heap-js.pprof")); // Node.js heap: locations carry no mapping
    const m = toPprofMessage(p);
    expect(m.location.map((l) => l.id)).toEqual(p.locations.map((_, i) => BigInt(i + 1)));
    expect(m.function.map((f) => f.id)).toEqual(p.functions.map((_, i) => BigInt(i + 1)));
    expect(m.location.every((l) => l.mappingId === 0n)).toBe(true);
  });

  test("fractional, huge and non-finite values become valid int64", () => {
    const p = decodePprof(load("heap.pb"));
    const k = p.sampleTypes.length;
    p.samples.values[0] = 2.6;
    p.samples.values[1] = 1e300;
    p.samples.values[k] = Number.NaN;
    const m = fromBinary(ProfileSchema, encodePprof(p));
    expect(m.sample[0].value[0]).toBe(3n);
    expect(m.sample[0].value[1]).toBe(2n ** 63n - 1n);
    expect(m.sample[1].value[0]).toBe(0n);
  });
});
