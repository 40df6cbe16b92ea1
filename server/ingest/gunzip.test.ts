// maybeGunzip: plain bytes pass through, gzip inflates, bombs and corrupt gzip are refused.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { ApiError } from "../errors.ts";
import { maybeGunzip } from "./gunzip.ts";

const MiB = 1024 * 1024;
const dir = new URL("../../../shared/fixtures/pprof", import.meta.url).pathname;

function thrown(f: () => unknown): ApiError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error("expected a throw");
}

describe("maybeGunzip", () => {
  test("plain bytes pass through untouched", () => {
    const plain = new Uint8Array([0x0a, 0x04, 0x08, 0x01]);
    expect(maybeGunzip(plain, 10)).toBe(plain);
    expect(maybeGunzip(new Uint8Array(0), 10).length).toBe(0);
    expect(maybeGunzip(new Uint8Array([0x1f]), 10).length).toBe(1);
  });

  test("inflates a gzipped fixture", () => {
    const gz = new Uint8Array(readFileSync(`${dir}/heap.pb.gz`));
    const raw = new Uint8Array(readFileSync(`${dir}/heap.pb`));
    expect(maybeGunzip(gz, 4 * MiB)).toEqual(raw);
  });

  test("a limit of 0 is no limit (the limits' 0 = off)", () => {
    const gz = new Uint8Array(readFileSync(`${dir}/heap.pb.gz`));
    expect(maybeGunzip(gz, 0).length).toBe(gunzipSync(gz).length);
  });

  test("output of exactly the limit is allowed, one byte more is not", () => {
    const gz = gzipSync(new Uint8Array(1000).fill(7));
    expect(maybeGunzip(gz, 1000).length).toBe(1000);
    const e = thrown(() => maybeGunzip(gz, 999));
    expect(e.code).toBe("payload_too_large");
    expect(e.message).toBe("uncompressed profile payload size exceeds limit of 999 bytes");
  });

  test("concatenated gzip members inflate as one stream, as Go's reader does", () => {
    const a = gzipSync(new TextEncoder().encode("hello "));
    const b = gzipSync(new TextEncoder().encode("world"));
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    expect(new TextDecoder().decode(maybeGunzip(both, 100))).toBe("hello world");
  });

  test("a gzip bomb is refused quickly, without inflating it whole", () => {
    const bomb = gzipSync(new Uint8Array(50 * MiB)); // ~50 KB of gzip
    expect(bomb.length).toBeLessThan(100_000);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const e = thrown(() => maybeGunzip(bomb, 4 * MiB));
    const elapsed = performance.now() - started;
    expect(e.code).toBe("payload_too_large");
    expect(e.message).toBe(`uncompressed profile payload size exceeds limit of ${4 * MiB} bytes`);
    expect(elapsed).toBeLessThan(1000);
    // Inflating it whole would add 50 MiB; stopping at the limit adds a few MiB at most.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(30 * MiB);
  });

  test("corrupt gzip is unprocessable and says gzip", () => {
    const gz = gzipSync(new Uint8Array(1000).fill(7));
    const truncated = thrown(() => maybeGunzip(gz.subarray(0, 12), 10_000));
    expect(truncated.code).toBe("unprocessable");
    expect(truncated.message).toContain("gzip");
    const flipped = gz.slice();
    flipped[flipped.length - 6] ^= 1; // CRC
    expect(thrown(() => maybeGunzip(flipped, 10_000)).message).toContain("gzip");
    expect(thrown(() => maybeGunzip(new Uint8Array([0x1f, 0x8b, 0, 0]), 10_000)).code).toBe("unprocessable");
  });
});
