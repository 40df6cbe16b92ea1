// decodePprof against protobuf-es on every pprof fixture, plus malformed input: bad UTF-8,
// dangling references, truncations and bit flips must all end in an ApiError, never a crash.

import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ApiError } from "../errors.ts";
import { ProfileSchema, SampleSchema, type Profile as PprofMessage } from "../api/gen/google/v1/profile_pb.ts";
import type { Profile } from "../../storage/model/profile.ts";
import { decodePprof } from "./pprof-decoder.ts";

const dir = new URL("../../../shared/fixtures/pprof", import.meta.url).pathname;
const fixtures = readdirSync(dir).filter((f) => !f.endsWith(".json") && f !== "invalid_utf8.pb.gz");

/** Fixture bytes, inflated when they are gzip (sniffed: names do not say, e.g. cpu.pprof). */
function load(name: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(`${dir}/${name}`));
  return raw[0] === 0x1f && raw[1] === 0x8b ? new Uint8Array(gunzipSync(raw)) : raw;
}

/** One sample as text: its values and its stack as function names, leaf first. */
function sampleText(p: Profile, i: number): string {
  const s = p.samples;
  const k = p.sampleTypes.length;
  const frames: string[] = [];
  for (let j = s.locStart[i]; j < s.locStart[i + 1]; j++) {
    for (const line of p.locations[s.locs[j]].lines) frames.push(`${p.functions[line.fn].name}:${line.line}`);
  }
  const values = Array.from(s.values.subarray(i * k, i * k + k));
  const labels = (s.labels?.[i] ?? []).map((l) => `${l.key}=${l.str}|${l.num}${l.numUnit}`);
  return `${values.join(",")} ${labels.join(";")} ${frames.join(";")}`;
}

/** The same texts from the generated message, with the ids resolved the slow, obvious way. */
function messageSampleTexts(m: PprofMessage): string[] {
  const st = m.stringTable;
  const locs = new Map(m.location.map((l) => [l.id, l]));
  // The .NET profiler's functions all have id 0; the decoder maps them like Pyroscope does.
  const dotnet = m.function.length > 0 && m.function.every((f) => f.id === 0n) && m.function.length === m.location.length;
  const fns = new Map(m.function.map((f, j) => [dotnet ? m.location[j].id : f.id, f]));
  return m.sample.map((s) => {
    const frames: string[] = [];
    for (const id of s.locationId) {
      for (const line of locs.get(id)!.line) frames.push(`${st[Number(fns.get(line.functionId)!.name)]}:${line.line}`);
    }
    const labels = s.label.map((l) => `${st[Number(l.key)]}=${st[Number(l.str)]}|${l.num}${st[Number(l.numUnit)]}`);
    return `${s.value.join(",")} ${labels.join(";")} ${frames.join(";")}`;
  });
}

describe("decodePprof on every fixture", () => {
  test.each(fixtures)("%s", (name) => {
    const bytes = load(name);
    const p = decodePprof(bytes);
    const m = fromBinary(ProfileSchema, bytes);
    const st = m.stringTable;

    expect(p.sampleTypes).toEqual(m.sampleType.map((v) => ({ type: st[Number(v.type)], unit: st[Number(v.unit)] })));
    expect(p.periodType).toEqual(m.periodType ? { type: st[Number(m.periodType.type)], unit: st[Number(m.periodType.unit)] } : null);
    expect(p.period).toBe(Number(m.period));
    expect(p.timeNanos).toBe(m.timeNanos);
    expect(p.durationNanos).toBe(Number(m.durationNanos));
    expect(p.defaultSampleType).toBe(st[Number(m.defaultSampleType)]);
    expect(p.comments).toEqual(m.comment.map((c) => st[Number(c)]));
    expect(p.dropFrames).toBe(st[Number(m.dropFrames)]);
    expect(p.keepFrames).toBe(st[Number(m.keepFrames)]);

    expect(p.mappings.length).toBe(m.mapping.length);
    p.mappings.forEach((mp, i) => {
      const g = m.mapping[i];
      expect(mp).toEqual({
        memoryStart: g.memoryStart,
        memoryLimit: g.memoryLimit,
        fileOffset: g.fileOffset,
        filename: st[Number(g.filename)],
        buildId: st[Number(g.buildId)],
        hasFunctions: g.hasFunctions,
        hasFilenames: g.hasFilenames,
        hasLineNumbers: g.hasLineNumbers,
        hasInlineFrames: g.hasInlineFrames,
      });
    });
    expect(p.functions.length).toBe(m.function.length);
    p.functions.forEach((f, i) => {
      const g = m.function[i];
      expect(f).toEqual({
        name: st[Number(g.name)],
        systemName: st[Number(g.systemName)],
        filename: st[Number(g.filename)],
        startLine: Number(g.startLine),
      });
    });
    expect(p.locations.length).toBe(m.location.length);
    const mapIndex = new Map(m.mapping.map((g, i) => [g.id, i]));
    p.locations.forEach((l, i) => {
      const g = m.location[i];
      expect(l.address).toBe(g.address);
      expect(l.isFolded).toBe(g.isFolded);
      expect(l.mapping).toBe(g.mappingId === 0n ? -1 : mapIndex.get(g.mappingId)!);
      expect(l.lines.map((x) => x.line)).toEqual(g.line.map((x) => Number(x.line)));
    });

    const s = p.samples;
    expect(s.count).toBe(m.sample.length);
    expect(s.locStart.length).toBe(s.count + 1);
    expect(s.locs.length).toBe(s.locStart[s.count]);
    expect(s.values.length).toBe(s.count * p.sampleTypes.length);
    expect(s.labels === null).toBe(m.sample.every((x) => x.label.length === 0));
    const texts: string[] = [];
    for (let i = 0; i < s.count; i++) texts.push(sampleText(p, i));
    expect(texts).toEqual(messageSampleTexts(m));
  });
});

/** A minimal valid profile message, built with protobuf-es, for the error cases to bend. */
function message(edit: (m: PprofMessage) => void = () => {}): Uint8Array {
  const m = create(ProfileSchema, {
    sampleType: [{ type: 1n, unit: 2n }],
    sample: [{ locationId: [1n, 2n], value: [5n] }],
    location: [
      { id: 1n, line: [{ functionId: 1n, line: 3n }] },
      { id: 2n, line: [{ functionId: 1n, line: 4n }] },
    ],
    function: [{ id: 1n, name: 3n }],
    stringTable: ["", "cpu", "nanoseconds", "main"],
  });
  edit(m);
  return toBinary(ProfileSchema, m);
}

function errorOf(bytes: Uint8Array): string {
  try {
    decodePprof(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unprocessable");
    return (err as ApiError).message;
  }
  throw new Error("expected decodePprof to throw");
}

describe("decodePprof rejects bad input with a message naming the problem", () => {
  test("invalid UTF-8 in the string table (Pyroscope's fixture)", () => {
    expect(errorOf(load("invalid_utf8.pb.gz"))).toContain("invalid UTF-8 in string table");
  });

  test("the minimal message itself decodes", () => {
    const p = decodePprof(message());
    expect(p.samples.count).toBe(1);
    expect(Array.from(p.samples.locs)).toEqual([0, 1]);
    expect(p.functions[0].name).toBe("main");
  });

  test("dangling and zero references", () => {
    expect(errorOf(message((m) => (m.sample[0].locationId = [1n, 99n])))).toBe(
      "pprof: sample 0 references location id 99 that does not exist",
    );
    expect(errorOf(message((m) => (m.sample[0].locationId = [0n])))).toBe(
      "pprof: sample 0 references location id 0 that does not exist",
    );
    expect(errorOf(message((m) => (m.location[1].line[0].functionId = 7n))))
      .toBe("pprof: location id 2 references function id 7 that does not exist");
    expect(errorOf(message((m) => (m.location[1].line[0].functionId = 0n))))
      .toBe("pprof: location id 2 references function id 0 that does not exist");
    expect(errorOf(message((m) => (m.location[0].mappingId = 3n))))
      .toBe("pprof: location id 1 references mapping id 3 that does not exist");
    expect(errorOf(message((m) => (m.location[0].id = 0n)))).toBe("pprof: location 0 has id 0");
  });

  test("string table problems", () => {
    expect(errorOf(message((m) => (m.function[0].name = 40n)))).toBe(
      "pprof: string index 40 out of range (table has 4) in function name",
    );
    expect(errorOf(message((m) => (m.stringTable[0] = "x")))).toBe("pprof: string_table[0] must be empty");
  });

  test("value count disagreeing with sample types", () => {
    expect(errorOf(message((m) => (m.sample[0].value = [1n, 2n, 3n])))).toBe(
      "pprof: sample 0 has 3 values but profile has 1 sample types",
    );
    expect(errorOf(message((m) => m.sample.push(create(SampleSchema, { locationId: [1n] }))))).toBe(
      "pprof: sample 1 has 0 values but profile has 1 sample types",
    );
  });

  test("truncation, overlong varints, text", () => {
    const ok = message();
    expect(errorOf(ok.subarray(0, ok.length - 3))).toMatch(/^pprof: truncated message at byte \d+$/);
    expect(errorOf(new Uint8Array([0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toMatch(
      /varint longer than 10 bytes/,
    );
    expect(errorOf(new TextEncoder().encode("foo;bar;baz 10\nfoo;qux 5\n"))).toContain("the body looks like text, not pprof");
    expect(errorOf(new TextEncoder().encode('{"flamebearer": {}}'))).toContain("looks like text");
  });

  test("an empty body is an empty profile", () => {
    const p = decodePprof(new Uint8Array(0));
    expect(p.samples.count).toBe(0);
    expect(p.sampleTypes).toEqual([]);
  });
});

describe("decodePprof handles unusual but valid encodings", () => {
  test("unpacked repeated fields, fields out of order, sparse ids", () => {
    // Hand-encoded: string table last, sample before its locations, unpacked ids and values,
    // location ids 10 and 20, a function id 7, and an unknown field (15) to skip.
    const bytes = new Uint8Array([
      ...[0x7a, 0x02, 0x68, 0x69], // field 15 (unknown), "hi"
      ...[0x12, 0x08, 0x08, 0x0a, 0x08, 0x14, 0x10, 0x03, 0x10, 0x04], // sample: loc 10, loc 20, values 3, 4
      ...[0x0a, 0x04, 0x08, 0x01, 0x10, 0x02], // sample_type a/b
      ...[0x0a, 0x04, 0x08, 0x01, 0x10, 0x02], // sample_type a/b
      ...[0x22, 0x06, 0x08, 0x0a, 0x22, 0x02, 0x08, 0x07], // location 10 → fn 7
      ...[0x22, 0x06, 0x08, 0x14, 0x22, 0x02, 0x08, 0x07], // location 20 → fn 7
      ...[0x2a, 0x04, 0x08, 0x07, 0x10, 0x03], // function 7 named "f"
      ...[0x32, 0x00, 0x32, 0x01, 0x61, 0x32, 0x01, 0x62, 0x32, 0x01, 0x66], // "", a, b, f
    ]);
    const p = decodePprof(bytes);
    expect(p.sampleTypes).toEqual([
      { type: "a", unit: "b" },
      { type: "a", unit: "b" },
    ]);
    expect(Array.from(p.samples.locs)).toEqual([0, 1]);
    expect(Array.from(p.samples.values)).toEqual([3, 4]);
    expect(p.functions[p.locations[1].lines[0].fn].name).toBe("f");
  });

  test("negative and wide int64 values survive", () => {
    const bytes = message((m) => {
      m.sample[0].value = [-5n];
      m.timeNanos = 1700000000123456789n;
      m.durationNanos = -1n;
      m.location[0].address = 0xffffffff_fffff000n;
    });
    const p = decodePprof(bytes);
    expect(p.samples.values[0]).toBe(-5);
    expect(p.timeNanos).toBe(1700000000123456789n);
    expect(p.durationNanos).toBe(-1);
    expect(p.locations[0].address).toBe(0xffffffff_fffff000n);
  });

  test("location ids of 2^32 and more", () => {
    const bytes = message((m) => {
      m.location[1].id = 1n << 40n;
      m.sample[0].locationId = [1n << 40n, 1n];
    });
    expect(Array.from(decodePprof(bytes).samples.locs)).toEqual([1, 0]);
  });
});

describe("decodePprof on damaged fixtures", () => {
  // A cheap deterministic generator, so a failure names a reproducible case.
  function rng(seed: number) {
    return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  }

  test("truncations and bit flips decode or throw ApiError, never anything else", () => {
    const rand = rng(42);
    const sources = ["heap.pb", "go.cpu.labels.pprof", "profile_java", "dotnet.labels.pprof", "cpu-js.pb.gz"].map(load);
    let decoded = 0;
    let rejected = 0;
    const started = performance.now();
    for (let round = 0; round < 1500; round++) {
      const src = sources[round % sources.length];
      let bytes: Uint8Array;
      if (round % 3 === 0) bytes = src.subarray(0, Math.floor(rand() * src.length));
      else {
        bytes = src.slice();
        const flips = 1 + Math.floor(rand() * 8);
        for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8);
      }
      try {
        decodePprof(bytes);
        decoded++;
      } catch (err) {
        if (!(err instanceof ApiError)) throw new Error(`round ${round}: ${String(err)}`);
        rejected++;
      }
    }
    expect(decoded + rejected).toBe(1500);
    expect(rejected).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(30_000);
  });

  test("after damaged input the decoder still decodes good input", () => {
    const good = load("heap.pb");
    expect(() => decodePprof(good.subarray(0, 1000))).toThrow(ApiError);
    expect(decodePprof(good).samples.count).toBe(fromBinary(ProfileSchema, good).sample.length);
  });
});
