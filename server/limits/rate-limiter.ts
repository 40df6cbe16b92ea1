// Per-tenant token buckets over ingested bytes (Pyroscope's ingestion_rate_mb and
// ingestion_burst_size_mb). One process is one distributor, so the tenant's whole rate applies here.

export interface RateLimit {
  /** Bytes per second; 0 = unlimited. */
  bytesPerSecond: number;
  /** Bucket size in bytes; 0 = one second of the rate. */
  burstBytes: number;
}

export type Take = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  rate: number;
  burst: number;
  tokens: number;
  at: number;
}

/**
 * Unlike Pyroscope, whose limiter refuses any single profile larger than the burst forever (a
 * big Java or .NET profile would never get in), a request larger than the burst is let through
 * when the bucket is full and leaves the tenant in debt: later requests wait until the debt is
 * paid back at the rate, so the long-run rate still holds.
 */
export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Takes `bytes` from the tenant's bucket, or says how long until they would fit. */
  take(tenant: string, bytes: number, limit: RateLimit): Take {
    const rate = limit.bytesPerSecond;
    if (!(rate > 0)) return { ok: true };
    const burst = limit.burstBytes > 0 ? limit.burstBytes : rate;
    const now = this.clock();
    let b = this.buckets.get(tenant);
    // A changed limit (overrides reloaded) starts a fresh, full bucket, so a raised limit helps at once.
    if (!b || b.rate !== rate || b.burst !== burst) {
      b = { rate, burst, tokens: burst, at: now };
      this.buckets.set(tenant, b);
    }
    // max(0, …): a wall clock stepping back must not drain the bucket.
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate);
    b.at = now;
    if (bytes <= b.tokens || b.tokens >= burst) {
      b.tokens -= bytes;
      return { ok: true };
    }
    const need = Math.min(bytes, burst) - b.tokens;
    return { ok: false, retryAfterMs: Math.ceil((need / rate) * 1000) };
  }
}

/** Bytes the way Go's humanize.IBytes writes them: 512 B, 1.5 KiB, 4 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n;
  let unit = 0;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  while (v >= 1024 && unit < units.length - 1) {
    v /= 1024;
    unit++;
  }
  const text = v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[unit]}`;
}

/** The 429 message: which limit, whose, how much was refused, and what to do about it. */
export function rateLimitMessage(tenant: string, limit: RateLimit, bytes: number, retryAfterMs: number): string {
  const burst = limit.burstBytes > 0 ? limit.burstBytes : limit.bytesPerSecond;
  return (
    `ingestion rate limit (${formatBytes(limit.bytesPerSecond)}/s, burst ${formatBytes(burst)}) exceeded for tenant ` +
    `${JSON.stringify(tenant)} while adding ${formatBytes(bytes)}; retry in ${(retryAfterMs / 1000).toFixed(1)} s, or raise ` +
    `ingestion_rate_mb / ingestion_burst_size_mb for the tenant (overrides file or limits config)`
  );
}
