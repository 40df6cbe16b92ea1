// The one typed Config: defaults, then a YAML file, then HEARTH_* environment, then flags.
// Every key is declared once in `spec`; YAML names, env names, flags and --help derive from it.

import { readFileSync } from "node:fs";

export type WalFsync = "always" | "none"; // the WAL's own option values
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface ServerConfig {
  host: string;
  port: number;
  /** Separate h2c listener for native gRPC; unset = none. */
  grpcPort?: number;
}

export interface IngesterConfig {
  walFsync: WalFsync;
  walSegmentBytes: number;
  /** Milliseconds. */
  maxBlockDuration: number;
  maxBlockBytes: number;
}

/**
 * Pyroscope's validation limits (same meaning, bytes and ms instead of MB and Go durations, except
 * the ingestion rate, which keeps Pyroscope's MiB names). 0 = off. Most can be set per tenant in the
 * overrides file (server/overrides.ts).
 */
export interface LimitsConfig {
  /** MiB per second of uncompressed profiles (plus their labels) per tenant; 0 = no rate limit. */
  ingestionRateMb: number;
  /** MiB a tenant may send at once before the rate applies; 0 = one second's worth of the rate. */
  ingestionBurstSizeMb: number;
  ingestionBodyLimitBytes: number;
  maxProfileSizeBytes: number;
  maxProfileStacktraceSamples: number;
  maxProfileStacktraceSampleLabels: number;
  maxProfileStacktraceDepth: number;
  maxProfileSymbolValueLength: number;
  maxLabelNameLength: number;
  maxLabelValueLength: number;
  maxLabelNamesPerSeries: number;
  /** Milliseconds. */
  rejectOlderThan: number;
  /** Milliseconds. */
  rejectNewerThan: number;
  /** Milliseconds. */
  maxQueryLookback: number;
  /** Milliseconds. */
  maxQueryLength: number;
  maxFlamegraphNodesDefault: number;
  maxFlamegraphNodesMax: number;
}

/** Per-tenant defaults; an overrides file can change them for single tenants. */
export interface RetentionConfig {
  /** Milliseconds of profiles to keep; 0 = forever. */
  period: number;
  /** Most bytes of blocks kept per tenant, oldest deleted first; 0 = no cap. */
  maxBytes: number;
  /** Delete the oldest blocks (all tenants) while free disk is below this; 0 = off. */
  minFreeDisk: number;
  /** Milliseconds between retention and disk-guard passes. */
  interval: number;
}

export interface CompactorConfig {
  enabled: boolean;
  /** Milliseconds between compaction passes. */
  interval: number;
  /** Time ranges (ms) of the block levels, ascending, each a multiple of the one before. */
  blockRanges: number[];
}

/** Optional object storage for finished blocks; backend "none" keeps everything local. */
export interface StorageConfig {
  backend: "none" | "s3" | "filesystem";
  /** Key prefix inside the bucket (a folder), "" for the bucket's root. */
  prefix: string;
  s3: {
    endpoint: string;
    region: string;
    bucket: string;
    /** false = path-style URLs (MinIO, Garage, s3rver, most self-hosted stores). */
    virtualHostedStyle: boolean;
    /** Usually from the environment (AWS_ACCESS_KEY_ID / S3_ACCESS_KEY_ID …); set here only if you must. */
    accessKeyId?: string;
    secretAccessKey?: string;
  };
  filesystem: { dir: string };
  /** Where blocks read back from the bucket are cached, and how big the cache may grow. */
  cacheDir: string;
  cacheMaxBytes: number;
  /** How often finished blocks are uploaded and the bucket's block list is refreshed. */
  syncInterval: number;
  /** Local copies of uploaded blocks are deleted once older than this (0 = keep them). */
  localRetention: number;
  /** Serve queries from the bucket only: no ingest, no WAL, no uploads. */
  readOnly: boolean;
}

export interface LogConfig {
  level: LogLevel;
}

export interface Config {
  server: ServerConfig;
  dataDir: string;
  multitenancy: boolean;
  /** YAML file of per-tenant overrides, reloaded when it changes; unset = none. */
  overridesFile?: string;
  ingester: IngesterConfig;
  compactor: CompactorConfig;
  retention: RetentionConfig;
  limits: LimitsConfig;
  storage: StorageConfig;
  log: LogConfig;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function defaultConfig(): Config {
  return {
    server: { host: "0.0.0.0", port: 4040, grpcPort: undefined },
    dataDir: "./data",
    multitenancy: false,
    overridesFile: undefined,
    ingester: {
      walFsync: "always",
      walSegmentBytes: 128 * MiB,
      maxBlockDuration: HOUR,
      maxBlockBytes: 32 * MiB,
    },
    compactor: {
      enabled: true,
      // Planning is a look at block metas in memory, so checking often is free and merges follow
      // a cut within a minute, keeping the number of open blocks (and query fan-out) small.
      interval: MINUTE,
      // Prometheus-style levels up to day-sized blocks: 1h heads merge into 2h, 12h, then 1d.
      blockRanges: [2 * HOUR, 12 * HOUR, DAY],
    },
    retention: {
      period: 30 * DAY,
      maxBytes: 0,
      // Pyroscope's 10 GB floor would make a laptop or small VM delete its profiles as soon as it
      // starts; 1 GiB still leaves room for the OS, the WAL and a compaction's output.
      minFreeDisk: GiB,
      // The disk guard must react before ingest fills the disk; a pass costs a statfs and a sort.
      interval: MINUTE,
    },
    limits: {
      ingestionRateMb: 4,
      ingestionBurstSizeMb: 2,
      ingestionBodyLimitBytes: 256 * MiB,
      maxProfileSizeBytes: 4 * MiB,
      maxProfileStacktraceSamples: 16000,
      maxProfileStacktraceSampleLabels: 100,
      maxProfileStacktraceDepth: 1000,
      maxProfileSymbolValueLength: 65535,
      maxLabelNameLength: 1024,
      maxLabelValueLength: 2048,
      maxLabelNamesPerSeries: 30,
      rejectOlderThan: HOUR,
      rejectNewerThan: 10 * MINUTE,
      maxQueryLookback: 7 * DAY,
      maxQueryLength: DAY,
      maxFlamegraphNodesDefault: 8192,
      maxFlamegraphNodesMax: 1048576,
    },
    storage: {
      backend: "none",
      prefix: "",
      s3: { endpoint: "", region: "us-east-1", bucket: "", virtualHostedStyle: false, accessKeyId: undefined, secretAccessKey: undefined },
      filesystem: { dir: "" },
      cacheDir: "",
      cacheMaxBytes: 2 * GiB,
      syncInterval: MINUTE,
      // Pyroscope keeps uploaded blocks locally for 4 h; recent data is what people query most.
      localRetention: 4 * HOUR,
      readOnly: false,
    },
    log: { level: "info" },
  };
}

/** A bad config source; the message names the key, where it came from and the value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Thrown by loadConfig for --help / -h: print `usage` to stdout and exit 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
  constructor(readonly usage: string) {
    super(usage);
  }
}

// ---- values ---------------------------------------------------------------------------------

/** Why a raw value was refused; the caller adds which key and source. */
export class BadValue extends Error {}

const durationUnits: Record<string, number> = {
  ms: 1,
  s: SECOND,
  m: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
  y: 365 * DAY,
};

/** "30s", "1h30m", "1.5h", "7d" or "0" → milliseconds. Bare non-zero numbers are refused: s or ms? */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  if (/^\d+(\.\d+)?$/.test(s)) throw new BadValue("a duration needs a unit (ms, s, m, h, d, w, y), such as 30s or 1h");
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/y;
  let ms = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) throw new BadValue("expected a duration such as 500ms, 30s, 15m, 1h, 1h30m, 7d or 0");
    ms += Number(m[1]) * durationUnits[m[2]!]!;
    pos = part.lastIndex;
  }
  if (pos === 0) throw new BadValue("expected a duration such as 500ms, 30s, 15m, 1h, 1h30m, 7d or 0");
  return Math.round(ms);
}

// Kubernetes' convention: K/M/G are decimal, Ki/Mi/Gi binary; the trailing B is optional.
const sizeUnits: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: KiB,
  kib: KiB,
  mi: MiB,
  mib: MiB,
  gi: GiB,
  gib: GiB,
  ti: 1024 * GiB,
  tib: 1024 * GiB,
};

/** "4MiB", "256MB", "1.5GiB", "1024" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? sizeUnits[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new BadValue("expected a size such as 4MiB, 256MB, 512KiB or a number of bytes");
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new BadValue("size is too large");
  return bytes;
}

/** The largest unit that divides ms exactly: 86400000 → "1d". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const u of ["d", "h", "m", "s"]) {
    const n = ms / durationUnits[u]!;
    if (Number.isInteger(n)) return `${n}${u}`;
  }
  return `${ms}ms`;
}

/** The largest binary unit that divides bytes exactly: 4194304 → "4MiB". */
export function formatSize(bytes: number): string {
  if (bytes === 0) return "0";
  for (const [u, n] of [["GiB", GiB], ["MiB", MiB], ["KiB", KiB]] as const) {
    if (bytes % n === 0) return `${bytes / n}${u}`;
  }
  return `${bytes}`;
}

/** One config key: how to read it from YAML/env/flag text, and how to show it in --help. */
export class Field<V> {
  constructor(
    readonly type: string, // placeholder in --help, e.g. N, DURATION
    readonly help: string,
    readonly parse: (raw: unknown) => V,
    readonly format: (v: V) => string = String,
    readonly optional = false,
  ) {}
  get isBool(): boolean {
    return this.type === "BOOL";
  }
}

function str(help: string, type = "STRING"): Field<string> {
  return new Field(type, help, (raw) => {
    if (typeof raw !== "string" || raw === "") throw new BadValue("expected a non-empty string");
    return raw;
  });
}

function bool(help: string): Field<boolean> {
  return new Field("BOOL", help, (raw) => {
    if (typeof raw === "boolean") return raw;
    const s = typeof raw === "string" ? raw.trim().toLowerCase() : "";
    if (["true", "1", "yes", "on"].includes(s)) return true;
    if (["false", "0", "no", "off"].includes(s)) return false;
    throw new BadValue("expected true or false");
  });
}

export function int(help: string, min: number, max = Number.MAX_SAFE_INTEGER, type = "N"): Field<number> {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return new Field(type, help, (raw) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new BadValue(`expected ${expected}`);
    return n;
  });
}

/** A non-negative decimal number such as 4, 0.5 or 1.25 (Pyroscope's float limits). */
export function decimal(help: string, type = "N"): Field<number> {
  return new Field(type, help, (raw) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(n) || n < 0) throw new BadValue("expected a number >= 0, such as 4 or 0.5");
    return n;
  });
}

function port(help: string): Field<number> {
  return int(help, 0, 65535, "PORT");
}

function optional<V>(f: Field<V>): Field<V | undefined> {
  return new Field<V | undefined>(f.type, f.help, f.parse, (v) => (v === undefined ? "unset" : f.format(v)), true);
}

/** A duration value: "30s", "1h30m", "7d" or 0; bare YAML numbers other than 0 are refused. */
function durationValue(raw: unknown, min: number): number {
  // A bare YAML number other than 0 is ambiguous (seconds? ms?), so it must carry a unit.
  const ms = raw === 0 ? 0 : typeof raw === "string" ? parseDuration(raw) : NaN;
  if (Number.isNaN(ms)) throw new BadValue("expected a duration with a unit, such as 30s, 1h or 7d");
  if (ms < min) throw new BadValue(`must be at least ${formatDuration(min)}`);
  return ms;
}

export function duration(help: string, min = 0): Field<number> {
  return new Field("DURATION", help, (raw) => durationValue(raw, min), formatDuration);
}

/**
 * Ascending durations, each a multiple of the one before (so a window of one level is made of
 * whole windows of the level below): a YAML list, or comma-separated text from env and flags.
 */
function durationLevels(help: string): Field<number[]> {
  return new Field(
    "DURATIONS",
    help,
    (raw) => {
      const items = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : null;
      if (!items || items.length === 0 || (typeof raw === "string" && raw.trim() === "")) {
        throw new BadValue("expected a list of durations such as 2h,12h,24h");
      }
      const out = items.map((x) => durationValue(typeof x === "string" ? x.trim() : x, 1));
      for (let i = 1; i < out.length; i++) {
        if (out[i]! <= out[i - 1]! || out[i]! % out[i - 1]! !== 0) {
          const [prev, cur] = [formatDuration(out[i - 1]!), formatDuration(out[i]!)];
          throw new BadValue(`each duration must be a larger multiple of the one before; ${cur} does not follow ${prev}`);
        }
      }
      return out;
    },
    (v) => v.map(formatDuration).join(","),
  );
}

export function size(help: string, min = 0): Field<number> {
  return new Field(
    "SIZE",
    help,
    (raw) => {
      let bytes: number;
      if (typeof raw === "number") {
        if (!Number.isSafeInteger(raw) || raw < 0) throw new BadValue("expected a non-negative whole number of bytes");
        bytes = raw;
      } else if (typeof raw === "string") {
        bytes = parseSize(raw);
      } else {
        throw new BadValue("expected a size such as 4MiB, 256MB or a number of bytes");
      }
      if (bytes < min) throw new BadValue(`must be at least ${formatSize(min)}`);
      return bytes;
    },
    formatSize,
  );
}

function oneOf<const T extends string>(help: string, values: readonly T[]): Field<T> {
  return new Field(values.join("|"), help, (raw) => {
    if (typeof raw !== "string" || !(values as readonly string[]).includes(raw)) {
      throw new BadValue(`expected one of ${values.join(", ")}`);
    }
    return raw as T;
  });
}

// ---- the schema -----------------------------------------------------------------------------

/**
 * Mirrors Config: a Field per leaf (lists are leaves too), a nested Spec per section. The compiler
 * checks it is complete.
 */
type Spec<T> = {
  [K in keyof T]-?: NonNullable<T[K]> extends readonly unknown[]
    ? Field<T[K]>
    : NonNullable<T[K]> extends object
      ? Spec<NonNullable<T[K]>>
      : Field<T[K]>;
};

const spec: Spec<Config> = {
  server: {
    host: str("address the HTTP server listens on", "HOST"),
    port: port("HTTP port; 0 picks a free one"),
    grpcPort: optional(port("port of a separate native gRPC (h2c) listener, if any")),
  },
  dataDir: str("directory for WAL, blocks and catalog", "DIR"),
  multitenancy: bool("honour X-Scope-OrgID; when off every request is tenant \"anonymous\""),
  overridesFile: optional(str("YAML file of per-tenant overrides (retention and ingestion limits), reloaded when it changes", "FILE")),
  ingester: {
    walFsync: oneOf("always: fsync the WAL before acknowledging a push; none: leave it to the OS", [
      "always",
      "none",
    ] as const),
    walSegmentBytes: size("WAL segment size before starting a new segment", 64 * KiB),
    maxBlockDuration: duration("cut the head into a block once it spans this long", SECOND),
    maxBlockBytes: size("cut the head into a block once it holds this much in memory", MiB),
  },
  compactor: {
    enabled: bool("merge small blocks into larger ones, level by level"),
    interval: duration("how often to look for blocks to merge", SECOND),
    blockRanges: durationLevels("time span of each compaction level, ascending, each a multiple of the one before"),
  },
  retention: {
    period: duration("delete profiles older than this, per tenant (0 = keep forever)"),
    maxBytes: size("most bytes of blocks kept per tenant, the oldest deleted first (0 = no cap)"),
    minFreeDisk: size("delete the oldest blocks of any tenant while the data directory's disk has less free (0 = off)"),
    interval: duration("how often retention and the free-disk guard run", SECOND),
  },
  limits: {
    ingestionRateMb: decimal("MiB/s of uncompressed profiles (and labels) a tenant may send; over it → 429 (0 = off)", "MB"),
    ingestionBurstSizeMb: decimal("MiB a tenant may send at once above the rate; a single larger profile is let through when the tenant has sent nothing for a while (0 = one second of the rate)", "MB"),
    ingestionBodyLimitBytes: size("largest ingest request body, after decompression (0 = off)"),
    maxProfileSizeBytes: size("largest single profile, uncompressed (0 = off)"),
    maxProfileStacktraceSamples: int("most samples in one profile (0 = off)", 0),
    maxProfileStacktraceSampleLabels: int("most labels on one sample (0 = off)", 0),
    maxProfileStacktraceDepth: int("deeper stacks keep their root-most frames (0 = off)", 0),
    maxProfileSymbolValueLength: int("longer symbol strings keep their suffix (0 = off)", 0),
    maxLabelNameLength: int("longest series label name (0 = off)", 0),
    maxLabelValueLength: int("longest series label value (0 = off)", 0),
    maxLabelNamesPerSeries: int("most labels on one series (0 = off)", 0),
    rejectOlderThan: duration("reject profiles older than now minus this (0 = off)"),
    rejectNewerThan: duration("reject profiles newer than now plus this (0 = off)"),
    maxQueryLookback: duration("clamp query start to now minus this (0 = off)"),
    maxQueryLength: duration("longest query time range (0 = off)"),
    maxFlamegraphNodesDefault: int("flamegraph nodes when a query asks for 0", 1),
    maxFlamegraphNodesMax: int("most flamegraph nodes a query may ask for", 1),
  },
  storage: {
    backend: oneOf("object storage for finished blocks: none, s3 (any S3-compatible store) or filesystem", ["none", "s3", "filesystem"] as const),
    prefix: str("key prefix (folder) inside the bucket", "PREFIX"),
    s3: {
      endpoint: str("S3 endpoint URL, e.g. http://minio:9000", "URL"),
      region: str("S3 region", "REGION"),
      bucket: str("S3 bucket name", "BUCKET"),
      virtualHostedStyle: bool("virtual-hosted-style URLs (AWS); off = path-style (MinIO, Garage, R2, Ceph)"),
      accessKeyId: optional(str("access key id (default: AWS_ACCESS_KEY_ID / S3_ACCESS_KEY_ID from the environment)", "KEY")),
      secretAccessKey: optional(str("secret access key (default: AWS_SECRET_ACCESS_KEY / S3_SECRET_ACCESS_KEY from the environment)", "SECRET")),
    },
    filesystem: {
      dir: str("directory used as the bucket with backend filesystem", "DIR"),
    },
    cacheDir: str("cache of blocks read back from the bucket (default <data-dir>/bucket-cache)", "DIR"),
    cacheMaxBytes: size("largest size of that cache", MiB),
    syncInterval: duration("how often blocks are uploaded and the bucket's block list refreshed", SECOND),
    localRetention: duration("delete local copies of uploaded blocks older than this (0 = keep)"),
    readOnly: bool("serve queries from the bucket only: no ingest, no WAL, no uploads"),
  },
  log: {
    level: oneOf("least severe level logged", ["debug", "info", "warn", "error"] as const),
  },
};

/** How each limit is read and described; the overrides file reads per-tenant limits with them. */
export const limitFields: { readonly [K in keyof LimitsConfig]: Field<LimitsConfig[K]> } = spec.limits;

// Short spellings for the keys people set most.
const aliases: { flag: string; env?: string; path: string[] }[] = [
  { flag: "--host", env: "HEARTH_HOST", path: ["server", "host"] },
  { flag: "--port", env: "HEARTH_PORT", path: ["server", "port"] },
  { flag: "--grpc-port", env: "HEARTH_GRPC_PORT", path: ["server", "grpcPort"] },
  { flag: "--log-level", path: ["log", "level"] }, // HEARTH_LOG_LEVEL is already the generic name
  { flag: "--retention", env: "HEARTH_RETENTION", path: ["retention", "period"] },
  { flag: "--retention-max-bytes", path: ["retention", "maxBytes"] }, // env: HEARTH_RETENTION_MAX_BYTES already
  { flag: "--min-free-disk", env: "HEARTH_MIN_FREE_DISK", path: ["retention", "minFreeDisk"] },
  { flag: "--overrides", env: "HEARTH_OVERRIDES", path: ["overridesFile"] },
  { flag: "--read-only", path: ["storage", "readOnly"] },
];

// ---- naming and walking ---------------------------------------------------------------------

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
const yamlName = (path: string[]) => path.map(snake).join(".");
const envName = (path: string[]) => "HEARTH_" + path.map((k) => snake(k).toUpperCase()).join("_");
const flagName = (path: string[]) => "--" + path.map(kebab).join(".");

type AnyField = Field<unknown>;
type AnySpec = { [k: string]: AnyField | AnySpec };
const root = spec as unknown as AnySpec;

interface Leaf {
  path: string[];
  field: AnyField;
}

function leaves(s: AnySpec = root, path: string[] = []): Leaf[] {
  return Object.entries(s).flatMap(([k, v]) =>
    v instanceof Field ? [{ path: [...path, k], field: v }] : leaves(v, [...path, k]),
  );
}

const allLeaves = leaves();

function setAt(cfg: Config, path: string[], value: unknown): void {
  let obj = cfg as unknown as Record<string, unknown>;
  for (const k of path.slice(0, -1)) obj = obj[k] as Record<string, unknown>;
  obj[path[path.length - 1]!] = value;
}

function getAt(cfg: Config, path: string[]): unknown {
  let v: unknown = cfg;
  for (const k of path) v = (v as Record<string, unknown>)[k];
  return v;
}

const show = (raw: unknown) => JSON.stringify(raw) ?? String(raw);

/** Parses raw for field; `where` says which key in which source, for the error. */
function parseValue(field: AnyField, raw: unknown, where: string): unknown {
  if (raw === null || raw === undefined) {
    if (field.optional) return undefined;
    throw new ConfigError(`${where}: missing value; ${field.help}`);
  }
  try {
    return field.parse(raw);
  } catch (e) {
    if (e instanceof BadValue) throw new ConfigError(`${where}: invalid value ${show(raw)}: ${e.message}`);
    throw e;
  }
}

// ---- sources --------------------------------------------------------------------------------

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function applyYaml(cfg: Config, s: AnySpec, raw: unknown, path: string[], file: string): void {
  const valid = Object.keys(s).map(snake);
  const at = path.length ? yamlName(path) : "the top level";
  if (raw === null || raw === undefined) return; // empty file or empty section: nothing to change
  if (!isMapping(raw)) throw new ConfigError(`${file}: ${at} must be a mapping with keys ${valid.join(", ")}`);
  for (const [key, value] of Object.entries(raw)) {
    const name = Object.keys(s).find((k) => snake(k) === key);
    if (name === undefined) {
      const guess = snake(key).replace(/-/g, "_");
      const hint = valid.includes(guess) ? ` (did you mean ${guess}?)` : "";
      throw new ConfigError(`${file}: unknown key "${key}" at ${at}${hint}; valid keys: ${valid.join(", ")}`);
    }
    const sub = s[name]!;
    if (sub instanceof Field) {
      setAt(cfg, [...path, name], parseValue(sub, value, `${file}: ${yamlName([...path, name])}`));
    } else {
      applyYaml(cfg, sub, value, [...path, name], file);
    }
  }
}

function readYaml(file: string, from: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`config file ${show(file)} (from ${from}): ${code === "ENOENT" ? "not found" : String(e)}`);
  }
  try {
    return Bun.YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${show(file)}: ${(e as Error).message}`);
  }
}

function applyEnv(cfg: Config, env: Record<string, string | undefined>): void {
  // Aliases last, so HEARTH_PORT wins over HEARTH_SERVER_PORT. Empty variables count as unset,
  // the way compose files commonly leave them. Unknown HEARTH_* variables are ignored: the
  // environment is shared with other tools, unlike a file or flags written for Hearth.
  const sources = [
    ...allLeaves.map((l) => ({ env: envName(l.path), path: l.path })),
    ...aliases.flatMap((a) => (a.env ? [{ env: a.env, path: a.path }] : [])),
  ];
  for (const { env: name, path } of sources) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    setAt(cfg, path, parseValue(fieldAt(path), raw, name));
  }
}

function fieldAt(path: string[]): AnyField {
  return allLeaves.find((l) => l.path.join(".") === path.join("."))!.field;
}

interface FlagDef {
  flag: string;
  path: string[];
  field: AnyField;
}

const flagDefs: FlagDef[] = [
  ...allLeaves.map((l) => ({ flag: flagName(l.path), path: l.path, field: l.field })),
  ...aliases.map((a) => ({ flag: a.flag, path: a.path, field: fieldAt(a.path) })),
];

interface ParsedFlag {
  name: string;
  value: string | undefined; // undefined: a bare boolean flag
}

function tokenize(argv: string[]): ParsedFlag[] {
  const out: ParsedFlag[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      out.push({ name: "--help", value: undefined });
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new ConfigError(`unexpected argument ${show(arg)}; flags start with -- (see --help)`);
    }
    const eq = arg.indexOf("=");
    if (eq >= 0) {
      out.push({ name: arg.slice(0, eq), value: arg.slice(eq + 1) });
      continue;
    }
    // Booleans take their value only as --flag=false, so "--multitenancy false" is not ambiguous.
    const def = flagDefs.find((d) => d.flag === arg);
    if (arg === "--help" || def?.field.isBool || (arg.startsWith("--no-") && !def)) {
      out.push({ name: arg, value: undefined });
      continue;
    }
    if (!def && arg !== "--config") throw unknownFlag(arg);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) throw new ConfigError(`flag ${arg} needs a value`);
    out.push({ name: arg, value: next });
    i++;
  }
  return out;
}

function unknownFlag(name: string): ConfigError {
  const dot = name.indexOf(".");
  const section = dot > 0 ? name.slice(0, dot + 1) : "";
  const inSection = flagDefs.filter((d) => section && d.flag.startsWith(section)).map((d) => d.flag);
  if (inSection.length) {
    return new ConfigError(`unknown flag ${name}; valid flags under ${section}: ${inSection.join(", ")}`);
  }
  const top = ["--config", "--help", ...flagDefs.filter((d) => !d.flag.includes(".")).map((d) => d.flag)];
  const sections = Object.keys(root).filter((k) => !(root[k] instanceof Field)).map(kebab);
  return new ConfigError(
    `unknown flag ${name}; valid flags: ${top.join(", ")}, and --<section>.<key> for sections ` +
      `${sections.join(", ")} (see --help)`,
  );
}

function applyFlags(cfg: Config, flags: ParsedFlag[]): void {
  for (const { name, value } of flags) {
    if (name === "--config") continue; // already read
    let def = flagDefs.find((d) => d.flag === name);
    let raw: unknown = value;
    if (!def && name.startsWith("--no-")) {
      const positive = flagDefs.find((d) => d.flag === "--" + name.slice(5));
      if (positive?.field.isBool && value === undefined) [def, raw] = [positive, false];
    }
    if (!def) throw unknownFlag(name);
    if (raw === undefined) raw = true; // bare boolean flag
    if (raw === "") throw new ConfigError(`flag ${name} needs a value`);
    setAt(cfg, def.path, parseValue(def.field, raw, name));
  }
}

/** Rules across keys; messages use the YAML names. */
function validate(cfg: Config): void {
  const l = cfg.limits;
  if (l.maxFlamegraphNodesDefault > l.maxFlamegraphNodesMax) {
    throw new ConfigError(
      `limits.max_flamegraph_nodes_default (${l.maxFlamegraphNodesDefault}) must not exceed ` +
        `limits.max_flamegraph_nodes_max (${l.maxFlamegraphNodesMax})`,
    );
  }
  const c = cfg.compactor;
  const first = c.blockRanges[0]!;
  if (c.enabled && first % cfg.ingester.maxBlockDuration !== 0) {
    // Heads are cut every max_block_duration; a first level that is not a whole number of them
    // would leave blocks straddling its windows, unmergeable.
    throw new ConfigError(
      `compactor.block_ranges starts with ${formatDuration(first)}, which is not a multiple of ` +
        `ingester.max_block_duration (${formatDuration(cfg.ingester.maxBlockDuration)})`,
    );
  }
  const s = cfg.server;
  if (s.grpcPort !== undefined && s.grpcPort !== 0 && s.grpcPort === s.port) {
    throw new ConfigError(`server.grpc_port and server.port are both ${s.port}; they need different ports`);
  }
}

/**
 * Builds the Config from argv (flags only, without the runtime and script paths) and env.
 * Precedence: defaults < YAML file (--config or HEARTH_CONFIG) < environment < flags.
 * Throws ConfigError for any bad input, HelpRequested for --help / -h.
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): Config {
  // Help wins over everything else on the line, even over mistakes.
  if (argv.some((a) => a === "-h" || a === "--help" || a.startsWith("--help="))) throw new HelpRequested(usage());
  const flags = tokenize(argv);

  const cfg = defaultConfig();
  const fileFlag = flags.findLast((f) => f.name === "--config");
  if (fileFlag && !fileFlag.value) throw new ConfigError("flag --config needs a value");
  const file = fileFlag?.value ?? (env.HEARTH_CONFIG || undefined);
  if (file) applyYaml(cfg, root, readYaml(file, fileFlag ? "--config" : "HEARTH_CONFIG"), [], file);
  applyEnv(cfg, env);
  applyFlags(cfg, flags);
  validate(cfg);
  return cfg;
}

/** The --help text, generated from the schema so it cannot drift from it. */
export function usage(): string {
  const defaults = defaultConfig();
  const lines = [
    "Usage: hearth [flags]",
    "",
    "Hearth, a continuous-profiling server compatible with Grafana Pyroscope.",
    "",
    "Settings come from, lowest to highest precedence: defaults, a YAML file (--config FILE or",
    "HEARTH_CONFIG; keys in snake_case, e.g. data_dir, server: {port}), the environment, then flags.",
    "Booleans as flags: --multitenancy, --multitenancy=false or --no-multitenancy.",
    "Durations: 500ms, 30s, 15m, 1h, 1h30m, 7d. Sizes: 4MiB, 256MB, 512KiB or plain bytes.",
    "Lists: comma-separated in flags and env (2h,12h,24h), a YAML list in the file.",
    "",
    "  --config FILE    [env HEARTH_CONFIG]",
    "      YAML config file",
    "  --help, -h",
    "      print this help",
  ];
  let section = "";
  // Top-level keys first, so they do not read as part of the section above them.
  const ordered = [...allLeaves.filter((l) => l.path.length === 1), ...allLeaves.filter((l) => l.path.length > 1)];
  for (const { path, field } of ordered) {
    if (path.length > 1 && path[0] !== section) {
      section = path[0]!;
      lines.push("", `${snake(section)}:`);
    }
    const alias = aliases.find((a) => a.path.join(".") === path.join("."));
    const flags = [alias?.flag, flagName(path)].filter(Boolean).join(", ");
    const envs = [alias?.env, envName(path)].filter(Boolean).join(", ");
    const value = field.isBool ? "" : ` ${field.type}`;
    lines.push(
      `  ${flags}${value}    [env ${envs}; yaml ${yamlName(path)}]`,
      `      ${field.help}; default ${field.format(getAt(defaults, path))}`,
    );
  }
  return lines.join("\n") + "\n";
}
