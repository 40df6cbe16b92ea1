// Time parameters of the legacy HTTP API (`from`, `until`): unix time in s/ms/µs/ns by digit
// count, YYYYMMDD, or `now-1h`-style offsets, as Pyroscope's attime accepts them.

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  M: 30 * 86_400_000,
  mon: 30 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Returns milliseconds since the epoch; `fallbackMs` when the value is empty or unparseable. */
export function parseAttime(value: string | null | undefined, fallbackMs: number): number {
  if (value == null) return fallbackMs;
  const v = value.replace(/[ _,]/g, "");
  if (v === "") return fallbackMs;
  if (/^\d+$/.test(v)) {
    if (v.length === 8) {
      const t = Date.UTC(+v.slice(0, 4), +v.slice(4, 6) - 1, +v.slice(6, 8));
      return Number.isNaN(t) ? fallbackMs : t;
    }
    const n = Number(v);
    switch (v.length) {
      case 13:
        return n;
      case 16:
        return Math.floor(n / 1e3);
      case 19:
        return Number(BigInt(v) / 1000000n);
      default:
        return n * 1000;
    }
  }
  // now-1h, now+30m, -1h: the reference word is ignored (always now), as Pyroscope does.
  const m = /^(?:[a-z]*)([+-])(\d+)([a-zA-Z]+)$/.exec(v);
  if (m && UNIT_MS[m[3]] !== undefined) {
    const d = Number(m[2]) * UNIT_MS[m[3]];
    return m[1] === "-" ? fallbackMs - d : fallbackMs + d;
  }
  if (/^[a-z]+$/.test(v)) return fallbackMs;
  return fallbackMs;
}
