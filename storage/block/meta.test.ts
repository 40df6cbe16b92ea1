// meta.json round trip and validation; ULIDs.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockCorruptError, isUlid, newUlid, readMeta, ulidTime, writeMeta, type BlockMeta } from "./meta.ts";

describe("ULID", () => {
  test("26 Crockford base32 characters, time first, random after", () => {
    const t = Date.UTC(2026, 2, 1, 12, 30);
    const a = newUlid(t);
    const b = newUlid(t);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(isUlid(a)).toBe(true);
    expect(ulidTime(a)).toBe(t);
    expect(a.slice(0, 10)).toBe(b.slice(0, 10));
    expect(a).not.toBe(b);
    // Later times sort later, as strings.
    expect(newUlid(t + 1) > a).toBe(true);
    expect(newUlid(0).slice(0, 10)).toBe("0000000000");
    expect(newUlid(2 ** 48 - 1).slice(0, 10)).toBe("7ZZZZZZZZZ");
    expect(() => newUlid(2 ** 48)).toThrow(RangeError);
    expect(isUlid("01ARZ3NDEKTSV4RRFFQ69G5FAV")).toBe(true);
    expect(isUlid("01ARZ3NDEKTSV4RRFFQ69G5FAI")).toBe(false);
    expect(isUlid("01ARZ3NDEKTSV4RRFFQ69G5FA")).toBe(false);
  });
});

describe("meta.json", () => {
  const meta: BlockMeta = {
    ulid: newUlid(),
    minTime: 1000,
    maxTime: 2000,
    stats: { numSeries: 2, numProfiles: 3, numSamples: 40 },
    compaction: { level: 1, sources: [] },
    version: 1,
    files: [{ relPath: "profiles.parquet", sizeBytes: 123 }],
    wal: { throughSegment: 7 },
  };

  test("round trips", () => {
    const dir = mkdtempSync(join(tmpdir(), "hearth-meta-"));
    try {
      writeMeta(dir, meta);
      expect(readMeta(dir)).toEqual(meta);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rejects what is not a valid meta, saying what", () => {
    const dir = mkdtempSync(join(tmpdir(), "hearth-meta-"));
    try {
      const bad = (m: unknown, msg: string) => {
        writeFileSync(join(dir, "meta.json"), JSON.stringify(m));
        expect(() => readMeta(dir)).toThrow(BlockCorruptError);
        expect(() => readMeta(dir)).toThrow(msg);
      };
      bad({ ...meta, version: 2 }, "unsupported version 2");
      bad({ ...meta, ulid: "x" }, "invalid ulid");
      bad({ ...meta, minTime: 3000 }, "invalid time range");
      bad({ ...meta, stats: { numSeries: -1, numProfiles: 0, numSamples: 0 } }, "invalid stats");
      bad({ ...meta, compaction: { level: 0, sources: [] } }, "invalid compaction");
      bad({ ...meta, files: [{ relPath: "../x", sizeBytes: 1 }] }, "invalid file entry");
      bad({ ...meta, wal: { throughSegment: "7" } }, "invalid wal");
      bad([], "not an object");
      rmSync(join(dir, "meta.json"));
      expect(() => readMeta(dir)).toThrow("meta.json: missing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
