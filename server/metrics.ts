// A small Prometheus registry (counters, gauges, histograms; text exposition format 0.0.4)
// and the app's own metrics, made per app by createMetrics() so tests can have their own.

/** Content-Type of registry.render() output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One string value per label name; `{}` for a metric without labels. */
export type LabelValues<L extends string> = { readonly [K in L]: string };

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabelValue = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** Sample values as Prometheus writes them: +Inf, -Inf, NaN, else the shortest round-trip form. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Names, help, label validation and the per-label-set children every metric type shares. */
abstract class Metric<L extends string, Child> {
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  // Keyed by the rendered label string, which is unambiguous because values are escaped.
  protected children = new Map<string, Child>();

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name ${JSON.stringify(opts.name)}`);
    const names = opts.labelNames ?? [];
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || reserved.includes(l)) {
        throw new Error(`metric ${opts.name}: invalid label name ${JSON.stringify(l)}`);
      }
    }
    if (new Set(names).size !== names.length) throw new Error(`metric ${opts.name}: duplicate label names`);
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = names;
  }

  /** `{a="x",b="y"}` (or "" without labels); throws on missing or unexpected labels. */
  protected labelString(labels: LabelValues<L>): string {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length) {
      throw new Error(`metric ${this.name}: expected labels {${this.labelNames.join(",")}}, got {${given.join(",")}}`);
    }
    if (this.labelNames.length === 0) return "";
    let s = "{";
    for (let i = 0; i < this.labelNames.length; i++) {
      const name = this.labelNames[i]!;
      const value = labels[name];
      if (typeof value !== "string") throw new Error(`metric ${this.name}: label ${name} is missing or not a string`);
      s += `${i ? "," : ""}${name}="${escapeLabelValue(value)}"`;
    }
    return s + "}";
  }

  protected child(labels: LabelValues<L>, make: () => Child): Child {
    const key = this.labelString(labels);
    let c = this.children.get(key);
    if (c === undefined) this.children.set(key, (c = make()));
    return c;
  }

  /** Forgets every label set. */
  reset(): void {
    this.children.clear();
  }

  /** Called by the registry just before rendering. */
  collect(): void {}

  protected abstract samples(out: string[]): void;

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    this.samples(out);
  }
}

interface Cell {
  value: number;
}

/** Only goes up (until the process restarts). */
export class Counter<L extends string = never> extends Metric<L, Cell> {
  readonly type = "counter";

  inc(labels: LabelValues<L>, value = 1): void {
    if (!(value >= 0) || value === Infinity) throw new Error(`counter ${this.name}: cannot add ${value}`);
    this.child(labels, () => ({ value: 0 })).value += value;
  }

  get(labels: LabelValues<L>): number {
    return this.children.get(this.labelString(labels))?.value ?? 0;
  }

  protected samples(out: string[]): void {
    // Without labels there is exactly one series, so show it from the start, at 0.
    if (this.labelNames.length === 0 && this.children.size === 0) out.push(`${this.name} 0`);
    for (const [labels, c] of this.children) out.push(`${this.name}${labels} ${formatValue(c.value)}`);
  }
}

export interface GaugeOptions<L extends string> extends MetricOptions<L> {
  /** Fills the gauge at render time; the gauge is emptied first, so label sets not set again vanish. */
  collect?: (gauge: Gauge<L>) => void;
}

/** Goes up and down; either set directly or filled by a collect callback at render time. */
export class Gauge<L extends string = never> extends Metric<L, Cell> {
  readonly type = "gauge";
  private collector: ((gauge: Gauge<L>) => void) | undefined;

  constructor(opts: GaugeOptions<L>) {
    super(opts);
    this.collector = opts.collect;
  }

  /** Registers (or replaces) the render-time callback, for values owned by parts built later. */
  setCollector(collect: ((gauge: Gauge<L>) => void) | undefined): void {
    this.collector = collect;
  }

  set(labels: LabelValues<L>, value: number): void {
    this.child(labels, () => ({ value: 0 })).value = value;
  }

  inc(labels: LabelValues<L>, value = 1): void {
    this.child(labels, () => ({ value: 0 })).value += value;
  }

  dec(labels: LabelValues<L>, value = 1): void {
    this.inc(labels, -value);
  }

  get(labels: LabelValues<L>): number {
    return this.children.get(this.labelString(labels))?.value ?? 0;
  }

  override collect(): void {
    if (!this.collector) return;
    this.reset();
    this.collector(this);
  }

  protected samples(out: string[]): void {
    if (this.labelNames.length === 0 && this.children.size === 0) out.push(`${this.name} 0`);
    for (const [labels, c] of this.children) out.push(`${this.name}${labels} ${formatValue(c.value)}`);
  }
}

/** Prometheus client libraries' default buckets, in seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing; +Inf is implied. */
  buckets?: readonly number[];
}

interface HistogramCell {
  counts: Float64Array; // per bucket, not cumulative; the last slot is +Inf
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets, plus their sum and count. */
export class Histogram<L extends string = never> extends Metric<L, HistogramCell> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions<L>) {
    super(opts, ["le"]);
    const b = (opts.buckets ?? DEFAULT_BUCKETS).filter((x) => x !== Infinity);
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
      throw new Error(`histogram ${opts.name}: buckets must be finite and strictly increasing`);
    }
    this.buckets = b;
  }

  private cell(labels: LabelValues<L>): HistogramCell {
    return this.child(labels, () => ({ counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }));
  }

  observe(labels: LabelValues<L>, value: number): void {
    const c = this.cell(labels);
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]!) i++;
    c.counts[i]!++;
    c.sum += value;
    c.count++;
  }

  /** Starts a clock; the returned function observes the elapsed seconds and returns them. */
  startTimer(labels: LabelValues<L>): () => number {
    const start = performance.now();
    return () => {
      const seconds = (performance.now() - start) / 1000;
      this.observe(labels, seconds);
      return seconds;
    };
  }

  get(labels: LabelValues<L>): { count: number; sum: number } {
    const c = this.children.get(this.labelString(labels));
    return { count: c?.count ?? 0, sum: c?.sum ?? 0 };
  }

  protected samples(out: string[]): void {
    const empty = { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
    const cells: [string, HistogramCell][] =
      this.labelNames.length === 0 && this.children.size === 0 ? [["", empty]] : [...this.children];
    for (const [labels, c] of cells) {
      // `le` goes last inside the braces, after the metric's own labels.
      const prefix = labels ? `${this.name}_bucket${labels.slice(0, -1)},le="` : `${this.name}_bucket{le="`;
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += c.counts[i]!;
        out.push(`${prefix}${formatValue(this.buckets[i]!)}"} ${cumulative}`);
      }
      out.push(`${prefix}+Inf"} ${c.count}`);
      out.push(`${this.name}_sum${labels} ${formatValue(c.sum)}`, `${this.name}_count${labels} ${c.count}`);
    }
  }
}

/** What the registry needs of a metric; label types do not matter to it. */
interface Registrable {
  readonly name: string;
  collect(): void;
  render(out: string[]): void;
}

/** Holds metrics in registration order and renders them for /metrics. */
export class Registry {
  private metrics = new Map<string, Registrable>();

  register<M extends Registrable>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>(opts));
  }

  gauge<L extends string = never>(opts: GaugeOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }

  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }

  /** Prometheus text format 0.0.4; runs gauge callbacks first. A throwing callback fails the render. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      m.collect();
      m.render(out);
    }
    return out.join("\n") + "\n";
  }
}

/** `count` bounds from `min` to `max`, each the same factor above the one before (rounded). */
export function exponentialBucketsRange(min: number, max: number, count: number): number[] {
  if (!(min > 0) || !(max > min) || count < 2) throw new Error("exponentialBucketsRange: need 0 < min < max and count >= 2");
  const factor = (max / min) ** (1 / (count - 1));
  return Array.from({ length: count }, (_, i) => Math.round(min * factor ** i));
}

// Pyroscope's distributor histograms: bytes per profile from 10 KiB to 15 MiB, samples 100 to 100k.
const PROFILE_BYTES_BUCKETS = exponentialBucketsRange(10 * 1024, 15 * 1024 * 1024, 30);
const PROFILE_SAMPLES_BUCKETS = exponentialBucketsRange(100, 100_000, 30);

// Query latencies of a small appliance: milliseconds for the head, up to tens of seconds for
// long ranges over many blocks.
const QUERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The app's metrics in a fresh registry. Head gauges are filled by a collector the app sets. */
export function createMetrics() {
  const registry = new Registry();
  return {
    registry,
    ingestRequests: registry.counter({
      name: "hearth_ingest_requests_total",
      help: "Ingest requests (HTTP /ingest, push.v1, OTLP) by tenant, route and outcome.",
      labelNames: ["tenant", "route", "outcome"],
    }),
    ingestBytes: registry.counter({
      name: "hearth_ingest_bytes_total",
      help: "Bytes of ingest request bodies as received, by tenant and outcome.",
      labelNames: ["tenant", "outcome"],
    }),
    ingestProfiles: registry.counter({
      name: "hearth_ingest_profiles_total",
      help: "Profiles ingested, by tenant and outcome.",
      labelNames: ["tenant", "outcome"],
    }),
    // Pyroscope's names, so its dashboards and alerts work unchanged. "Samples" are profiles here,
    // as in Pyroscope (its DiscardedProfiles counter).
    discardedSamples: registry.counter({
      name: "pyroscope_discarded_samples_total",
      help: "The total number of samples (profiles) that were discarded, by reason and tenant.",
      labelNames: ["reason", "tenant"],
    }),
    discardedBytes: registry.counter({
      name: "pyroscope_discarded_bytes_total",
      help: "The total number of bytes (uncompressed profiles and their labels) that were discarded, by reason and tenant.",
      labelNames: ["reason", "tenant"],
    }),
    receivedCompressedBytes: registry.histogram({
      name: "pyroscope_distributor_received_compressed_bytes",
      help: "The number of compressed bytes per profile received by the distributor.",
      labelNames: ["type", "tenant"],
      buckets: PROFILE_BYTES_BUCKETS,
    }),
    receivedDecompressedBytes: registry.histogram({
      name: "pyroscope_distributor_received_decompressed_bytes",
      help: "The number of decompressed bytes per profile received by the distributor after limits checks.",
      labelNames: ["type", "tenant"],
      buckets: PROFILE_BYTES_BUCKETS,
    }),
    receivedSamples: registry.histogram({
      name: "pyroscope_distributor_received_samples",
      help: "The number of samples per profile name received by the distributor.",
      labelNames: ["type", "tenant"],
      buckets: PROFILE_SAMPLES_BUCKETS,
    }),
    queryDuration: registry.histogram({
      name: "hearth_query_duration_seconds",
      help: "Time to answer a query, by method.",
      labelNames: ["method"],
      buckets: QUERY_BUCKETS,
    }),
    headSeries: registry.gauge({
      name: "hearth_head_series",
      help: "Series in the in-memory head, by tenant.",
      labelNames: ["tenant"],
    }),
    headBytes: registry.gauge({
      name: "hearth_head_bytes",
      help: "Approximate bytes held by the in-memory head, by tenant.",
      labelNames: ["tenant"],
    }),
    residentMemory: registry.gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      collect: (g) => g.set({}, process.memoryUsage.rss()),
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
