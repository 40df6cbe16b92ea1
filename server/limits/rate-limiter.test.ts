// Token buckets per tenant: burst, refill at the rate, debt for oversized requests, reloads.

import { describe, expect, test } from "bun:test";
import { RateLimiter, formatBytes, rateLimitMessage } from "./rate-limiter.ts";

function clocked() {
  let t = 0;
  return { limiter: new RateLimiter(() => t), advance: (ms: number) => void (t += ms) };
}

const KiB = 1024;
const limit = { bytesPerSecond: 10 * KiB, burstBytes: 20 * KiB };

describe("RateLimiter", () => {
  test("a full bucket takes up to the burst, then refills at the rate", () => {
    const { limiter, advance } = clocked();
    expect(limiter.take("t", 15 * KiB, limit).ok).toBe(true);
    expect(limiter.take("t", 5 * KiB, limit).ok).toBe(true);
    const r = limiter.take("t", 5 * KiB, limit);
    expect(r).toEqual({ ok: false, retryAfterMs: 500 });
    advance(499);
    expect(limiter.take("t", 5 * KiB, limit).ok).toBe(false);
    advance(1);
    expect(limiter.take("t", 5 * KiB, limit).ok).toBe(true);
  });

  test("tenants have their own buckets", () => {
    const { limiter } = clocked();
    expect(limiter.take("a", 20 * KiB, limit).ok).toBe(true);
    expect(limiter.take("a", 1, limit).ok).toBe(false);
    expect(limiter.take("b", 20 * KiB, limit).ok).toBe(true);
  });

  test("refill stops at the burst", () => {
    const { limiter, advance } = clocked();
    limiter.take("t", 1, limit);
    advance(3_600_000);
    expect(limiter.take("t", 20 * KiB, limit).ok).toBe(true);
    expect(limiter.take("t", 1 * KiB, limit).ok).toBe(false);
  });

  test("more than the burst passes only from a full bucket, and the debt is paid back at the rate", () => {
    const { limiter, advance } = clocked();
    expect(limiter.take("t", 50 * KiB, limit).ok).toBe(true); // 30 KiB in debt
    const r = limiter.take("t", 1 * KiB, limit);
    expect(r.ok).toBe(false);
    expect(r.ok ? 0 : r.retryAfterMs).toBe(3100); // 31 KiB at 10 KiB/s
    advance(3100);
    expect(limiter.take("t", 1 * KiB, limit).ok).toBe(true);
    // A partly full bucket refuses an oversized request until it is full again.
    advance(1000);
    const big = limiter.take("t", 50 * KiB, limit);
    expect(big).toEqual({ ok: false, retryAfterMs: 1000 });
    advance(1000);
    expect(limiter.take("t", 50 * KiB, limit).ok).toBe(true);
  });

  test("rate 0 is no limit; burst 0 is one second of the rate", () => {
    const { limiter } = clocked();
    for (let i = 0; i < 100; i++) expect(limiter.take("t", 1 << 30, { bytesPerSecond: 0, burstBytes: 0 }).ok).toBe(true);
    const oneSecond = { bytesPerSecond: 10 * KiB, burstBytes: 0 };
    expect(limiter.take("u", 6 * KiB, oneSecond).ok).toBe(true);
    expect(limiter.take("u", 5 * KiB, oneSecond).ok).toBe(false);
    expect(limiter.take("u", 4 * KiB, oneSecond).ok).toBe(true);
  });

  test("a changed limit (overrides reloaded) applies at once with a full bucket", () => {
    const { limiter } = clocked();
    expect(limiter.take("t", 20 * KiB, limit).ok).toBe(true);
    expect(limiter.take("t", 20 * KiB, limit).ok).toBe(false);
    const raised = { bytesPerSecond: 100 * KiB, burstBytes: 200 * KiB };
    expect(limiter.take("t", 150 * KiB, raised).ok).toBe(true);
  });

  test("a clock stepping back does not drain the bucket", () => {
    const { limiter, advance } = clocked();
    expect(limiter.take("t", 10 * KiB, limit).ok).toBe(true);
    advance(-60_000);
    expect(limiter.take("t", 10 * KiB, limit).ok).toBe(true);
  });
});

describe("messages", () => {
  test("bytes as humanize.IBytes writes them", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(4 * 1024 * 1024)).toBe("4 MiB");
    expect(formatBytes(0.001 * 1024 * 1024)).toBe("1 KiB");
    expect(formatBytes(300 * 1024 * 1024)).toBe("300 MiB");
  });

  test("the 429 names the limit, the tenant, the size and the way out", () => {
    const m = rateLimitMessage("team-a", { bytesPerSecond: 4 << 20, burstBytes: 2 << 20 }, 3 << 20, 250);
    expect(m).toBe(
      'ingestion rate limit (4 MiB/s, burst 2 MiB) exceeded for tenant "team-a" while adding 3 MiB; retry in 0.3 s, ' +
        "or raise ingestion_rate_mb / ingestion_burst_size_mb for the tenant (overrides file or limits config)",
    );
  });
});
