// Keeps the JS heap near what is live. Under a steady ingest load, JavaScriptCore lets garbage
// pile up to 2–3× the live heap before it collects (measured in the soak: ~60 MB live, 180–230 MB
// of heap), and lets dead ArrayBuffers (decoded Parquet pages, zstd output) reach hundreds of MB
// while compacting; the process's RSS follows both. A full collection once the
// heap has grown a fixed margin past what the last one left costs tens of milliseconds and keeps
// RSS bounded by live data plus that margin.

export interface HeapGovernorOptions {
  /** Collect once the heap exceeds what the last collection left by this many bytes (default 16 MiB). */
  marginBytes?: number;
  /** How often the heap size is looked at, in ms (default 250). */
  checkEveryMs?: number;
  /**
   * Bytes the collector can free now: the JS heap plus the memory of ArrayBuffers and other
   * external objects it owns (decoded Parquet pages and zstd output are mostly that).
   */
  heapUsed?: () => number;
  /** A full, synchronous collection; Bun.gc(true) by default. */
  collect?: () => void;
}

export class HeapGovernor {
  private readonly margin: number;
  private readonly heapUsed: () => number;
  private readonly collect: () => void;
  private readonly timer: ReturnType<typeof setInterval>;
  /** Heap bytes right after the last collection. */
  private floor: number;
  private lastCheck = 0;
  /** Collections this governor forced (for /metrics). */
  collections = 0;
  /** Milliseconds they took in all. */
  collectMs = 0;

  constructor(opts: HeapGovernorOptions = {}) {
    this.margin = opts.marginBytes ?? 16 * 2 ** 20;
    this.heapUsed =
      opts.heapUsed ??
      (() => {
        const m = process.memoryUsage();
        return m.heapUsed + m.external;
      });
    this.collect = opts.collect ?? (() => Bun.gc(true));
    this.floor = this.heapUsed();
    this.timer = setInterval(() => this.check(), opts.checkEveryMs ?? 250);
    this.timer.unref?.();
  }

  /** Collects now if the heap has grown past the floor + margin; returns whether it did. */
  check(): boolean {
    const used = this.heapUsed();
    // The engine's own collections lower the floor too.
    this.floor = Math.min(this.floor, used);
    if (used < this.floor + this.margin) return false;
    const t0 = performance.now();
    this.collect();
    this.collectMs += performance.now() - t0;
    this.collections++;
    this.floor = this.heapUsed();
    return true;
  }

  /**
   * For busy paths (each ingest): checks at most every few ms. A process that only ever awaits
   * in-memory work (no I/O between requests) never reaches its timers, so the paths call this too.
   */
  poke(): void {
    const now = performance.now();
    if (now - this.lastCheck < 20) return;
    this.lastCheck = now;
    this.check();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
