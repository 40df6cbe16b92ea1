// Keeps the JS heap near what is live. Under a steady ingest load, JavaScriptCore lets garbage
// pile up to 2–3× the live heap before it collects (measured in the soak: ~60 MB live, 180–230 MB
// of heap), and lets dead ArrayBuffers (decoded Parquet pages, zstd output) reach hundreds of MB
// while compacting; the process's RSS follows both. A full collection once the JS heap or the
// external buffers have grown 16 MiB past what the last one left costs tens of milliseconds and
// keeps RSS bounded by live data plus that margin. Only the paths that make garbage in bulk look
// (ingest, block writes, merges, and block queries after each row group they decode): forced
// collections on a timer tripled the cost of block queries.

export interface HeapUsage {
  /** Bytes in the JS heap. */
  heap: number;
  /** Bytes of ArrayBuffers and other external objects the collector owns. */
  external: number;
}

export interface HeapGovernorOptions {
  /** Collect once the JS heap exceeds what the last collection left by this many bytes (default 16 MiB)… */
  marginBytes?: number;
  /** …or by this fraction of what it left, when that is more (default 0: the soak's peaks grew 100 MB at 0.5). */
  liveFraction?: number;
  /** Collect once external memory exceeds what the last collection left by this many bytes (default 16 MiB). */
  externalMarginBytes?: number;
  /**
   * The margin, for the heap and external memory alike, when a block write or merge looks
   * (pokeStorage; default 8 MiB). Their garbage is large buffers made in bulk, and a merge runs
   * beside ingest; in a merge of four large soak blocks, 8 MiB instead of 16 lowered the
   * high-water mark by ~12 MB at the same speed.
   */
  storageMarginBytes?: number;
  /**
   * Also look at the heap on a timer, every this many ms (default: never). Without it only the
   * paths that make garbage in bulk (ingest, block writes, merges) call poke(); queries are left to
   * the engine, whose own collections cost them a third of what forced full ones did.
   */
  checkEveryMs?: number;
  /** What is in use now; processHeapUsage() by default. */
  usage?: () => HeapUsage;
  /** A full, synchronous collection; Bun.gc(true) by default. */
  collect?: () => void;
}

/**
 * The process's heap and external memory now. Bun's heapUsed is only brought up to date by a
 * collection: between two, it stays put however much is allocated, so a governor reading it never
 * saw the heap grow. heapTotal (the heap's capacity) grows with every allocation and falls back
 * to the live size after a full collection.
 */
export function processHeapUsage(): HeapUsage {
  const m = process.memoryUsage();
  return { heap: Math.max(m.heapUsed, m.heapTotal), external: m.external };
}

export class HeapGovernor {
  private readonly margin: number;
  private readonly liveFraction: number;
  private readonly externalMargin: number;
  private readonly storageMargin: number;
  private readonly usage: () => HeapUsage;
  private readonly collect: () => void;
  private readonly timer: ReturnType<typeof setInterval> | null = null;
  /** What the last collection left (lowered by the engine's own collections). */
  private floor: HeapUsage;
  private lastCheck = 0;
  /** Collections this governor forced (for /metrics). */
  collections = 0;
  /** Milliseconds they took in all. */
  collectMs = 0;

  constructor(opts: HeapGovernorOptions = {}) {
    this.margin = opts.marginBytes ?? 16 * 2 ** 20;
    this.liveFraction = opts.liveFraction ?? 0;
    this.externalMargin = opts.externalMarginBytes ?? 16 * 2 ** 20;
    this.storageMargin = opts.storageMarginBytes ?? 8 * 2 ** 20;
    this.usage = opts.usage ?? processHeapUsage;
    this.collect = opts.collect ?? (() => Bun.gc(true));
    this.floor = this.usage();
    if (opts.checkEveryMs) {
      this.timer = setInterval(() => this.check(), opts.checkEveryMs);
      this.timer.unref?.();
    }
  }

  /** Collects now if the heap or external memory has grown past its floor + margin; returns whether it did. */
  check(margin = this.margin, externalMargin = this.externalMargin): boolean {
    const now = this.usage();
    const f = this.floor;
    f.heap = Math.min(f.heap, now.heap);
    f.external = Math.min(f.external, now.external);
    // With liveFraction, garbage up to that share of the live heap is let be: a full collection
    // costs time in proportion to what is live.
    const heapOver = now.heap >= f.heap + Math.max(margin, f.heap * this.liveFraction);
    const externalOver = now.external >= f.external + externalMargin;
    if (!heapOver && !externalOver) return false;
    this.collectNow();
    return true;
  }

  /** Collects now, whatever the margins: a big job just finished and left its working set behind. */
  collectNow(): void {
    const t0 = performance.now();
    this.collect();
    this.collectMs += performance.now() - t0;
    this.collections++;
    this.floor = this.usage();
  }

  /**
   * For busy paths (each ingest): checks at most every few ms. A process that only ever awaits
   * in-memory work (no I/O between requests) never reaches its timers, so the paths call this too.
   */
  poke(): void {
    this.throttledCheck(this.margin, this.externalMargin);
  }

  /** poke() for block writes and merges (between series and row groups), with the storage margin. */
  pokeStorage(): void {
    this.throttledCheck(this.storageMargin, this.storageMargin);
  }

  /** check(), at most every 20 ms whichever path asks. */
  private throttledCheck(margin: number, externalMargin: number): void {
    const now = performance.now();
    if (now - this.lastCheck < 20) return;
    this.lastCheck = now;
    this.check(margin, externalMargin);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
