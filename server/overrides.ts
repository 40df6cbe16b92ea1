// Per-tenant overrides of Config's defaults (retention and ingestion limits), read from a YAML
// file that is polled and reloaded when it changes; a bad edit keeps the overrides already in force.

import { readFileSync } from "node:fs";
import { BadValue, ConfigError, duration, limitFields, size, type Config, type Field, type LimitsConfig } from "./config.ts";

/** The limits a tenant may have of its own; in the file under the same names as in config `limits:`. */
export const TENANT_LIMIT_KEYS = [
  "ingestionRateMb",
  "ingestionBurstSizeMb",
  "maxLabelNamesPerSeries",
  "maxLabelNameLength",
  "maxLabelValueLength",
  "maxProfileSizeBytes",
  "maxProfileStacktraceSamples",
  "maxProfileStacktraceSampleLabels",
  "maxProfileStacktraceDepth",
  "maxProfileSymbolValueLength",
  "rejectOlderThan",
  "rejectNewerThan",
] as const satisfies readonly (keyof LimitsConfig)[];

export type TenantLimits = Pick<LimitsConfig, (typeof TENANT_LIMIT_KEYS)[number]>;

/** The settings a tenant may have of its own, as in force for one tenant. */
export interface TenantSettings extends TenantLimits {
  /** Milliseconds of profiles to keep; 0 = forever. */
  retention: number;
  /** Most bytes of blocks kept; 0 = no cap. */
  retentionMaxBytes: number;
}

export type TenantOverrides = Partial<TenantSettings>;

interface OverrideKey<V> {
  yaml: string;
  field: Field<V>;
  fromConfig: (c: Config) => V;
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());

// Limits read exactly as config.ts reads them, under the same YAML names.
const limitKeys = Object.fromEntries(
  TENANT_LIMIT_KEYS.map((k) => [k, { yaml: snake(k), field: limitFields[k], fromConfig: (c: Config) => c.limits[k] }]),
) as { [K in keyof TenantLimits]: OverrideKey<TenantLimits[K]> };

// One row per overridable setting: its YAML name in the file, how its value is read (the same
// parsers as config.ts), and where its default lives in Config. A new limit is one more entry in
// TENANT_LIMIT_KEYS.
const keys: { [K in keyof TenantSettings]-?: OverrideKey<TenantSettings[K]> } = {
  retention: {
    yaml: "retention",
    field: duration("keep this tenant's profiles this long (0 = forever)"),
    fromConfig: (c) => c.retention.period,
  },
  retentionMaxBytes: {
    yaml: "retention_max_bytes",
    field: size("most bytes of blocks kept for this tenant (0 = no cap)"),
    fromConfig: (c) => c.retention.maxBytes,
  },
  ...limitKeys,
};

const keyList = Object.entries(keys) as [keyof TenantSettings, OverrideKey<number>][];
const yamlNames = keyList.map(([, k]) => k.yaml);

/** Every tenant's settings before overrides: the values in Config. */
export function tenantDefaults(config: Config): TenantSettings {
  const out = {} as TenantSettings;
  for (const [name, k] of keyList) out[name] = k.fromConfig(config);
  return out;
}

/** A parsed overrides file: the settings given for each tenant named in it. */
export class Overrides {
  static readonly none = new Overrides(new Map());

  constructor(readonly tenants: ReadonlyMap<string, Readonly<TenantOverrides>>) {}

  /** The tenant's settings: its overrides over `defaults`. */
  overridesFor(tenant: string, defaults: TenantSettings): TenantSettings {
    return { ...defaults, ...this.tenants.get(tenant) };
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads `overrides: { <tenant>: { retention: 7d, ingestion_rate_mb: 8, … } }`. An empty file,
 * an empty tenant or a key set to null means "the default". Throws ConfigError naming the file,
 * the place and, for unknown keys, the valid ones.
 */
export function parseOverrides(raw: unknown, file: string): Overrides {
  if (raw === null || raw === undefined) return Overrides.none;
  if (!isMapping(raw)) throw new ConfigError(`${file}: the top level must be a mapping with the key overrides`);
  for (const key of Object.keys(raw)) {
    if (key !== "overrides") throw new ConfigError(`${file}: unknown key "${key}" at the top level; valid keys: overrides`);
  }
  const section = raw.overrides;
  if (section === null || section === undefined) return Overrides.none;
  if (!isMapping(section)) throw new ConfigError(`${file}: overrides must be a mapping of tenant IDs to their settings`);
  const tenants = new Map<string, TenantOverrides>();
  for (const [tenant, settings] of Object.entries(section)) {
    const at = `overrides.${tenant}`;
    if (tenant === "") throw new ConfigError(`${file}: overrides has an empty tenant ID`);
    if (settings === null || settings === undefined) continue;
    if (!isMapping(settings)) throw new ConfigError(`${file}: ${at} must be a mapping with keys ${yamlNames.join(", ")}`);
    const o: TenantOverrides = {};
    for (const [key, value] of Object.entries(settings)) {
      const entry = keyList.find(([, k]) => k.yaml === key);
      if (!entry) {
        const guess = key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase()).replace(/-/g, "_");
        const hint = yamlNames.includes(guess) ? ` (did you mean ${guess}?)` : "";
        throw new ConfigError(`${file}: unknown key "${key}" at ${at}${hint}; valid keys: ${yamlNames.join(", ")}`);
      }
      if (value === null || value === undefined) continue;
      const [name, k] = entry;
      try {
        o[name] = k.field.parse(value);
      } catch (e) {
        if (!(e instanceof BadValue)) throw e;
        throw new ConfigError(`${file}: ${at}.${key}: invalid value ${JSON.stringify(value)}: ${e.message}`);
      }
    }
    if (Object.keys(o).length > 0) tenants.set(tenant, o);
  }
  return new Overrides(tenants);
}

function readOverridesText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`overrides file ${JSON.stringify(file)}: ${code === "ENOENT" ? "not found" : String(e)}`);
  }
}

function parseOverridesText(text: string, file: string): Overrides {
  let raw: unknown;
  try {
    raw = Bun.YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`overrides file ${JSON.stringify(file)}: ${(e as Error).message}`);
  }
  return parseOverrides(raw, file);
}

/** Reads and checks an overrides file; throws ConfigError saying what is wrong. */
export function loadOverrides(file: string): Overrides {
  return parseOverridesText(readOverridesText(file), file);
}

export interface WatchOptions {
  /** How often to look at the file; default 5 s. */
  intervalMs?: number;
}

/**
 * Polls `file` and calls onChange with the new overrides whenever its content changes and parses.
 * Polling, not fs.watch: editors that write a new file and rename it, and Kubernetes' ConfigMap
 * symlink swaps, both slip past inotify on the old inode, and reading a small file every few
 * seconds costs nothing. A file that is bad or gone is logged once and changes nothing.
 */
export function watchOverrides(
  file: string,
  onChange: (o: Overrides) => void,
  log: (msg: string) => void,
  opts: WatchOptions = {},
): { close(): void } {
  // What was last seen: the text, or the error reading it, so each change is handled once.
  const read = (): { seen: string; text?: string; error?: string } => {
    try {
      const text = readOverridesText(file);
      return { seen: text, text };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      return { seen: `\0${error}`, error };
    }
  };
  let last = read().seen;
  const poll = () => {
    const { seen, text, error } = read();
    if (seen === last) return;
    last = seen;
    if (text === undefined) {
      log(`${error}; keeping the overrides in force`);
      return;
    }
    let o: Overrides;
    try {
      o = parseOverridesText(text, file);
    } catch (e) {
      log(`${e instanceof Error ? e.message : e}; keeping the overrides in force`);
      return;
    }
    log(`overrides: reloaded ${file} (${o.tenants.size} tenant${o.tenants.size === 1 ? "" : "s"} with overrides)`);
    try {
      onChange(o);
    } catch (e) {
      // Thrown from a timer it would be uncaught and end the process.
      log(`overrides: applying ${file} failed: ${e instanceof Error ? e.message : e}`);
    }
  };
  const timer = setInterval(poll, opts.intervalMs ?? 5000);
  timer.unref(); // the watcher alone must not keep the process alive
  return { close: () => clearInterval(timer) };
}

/** What the roles hold: every tenant's settings in force, following the file as it changes. */
export interface TenantSettingsSource {
  overridesFor(tenant: string): TenantSettings;
  /** The overrides in force (for /metrics or a status page). */
  current(): Overrides;
  close(): void;
}

/**
 * Loads `config.overridesFile` (if set) and keeps following it. A bad file at start-up throws
 * ConfigError, like a bad config file; later bad edits are logged and ignored.
 */
export function openOverrides(config: Config, log: (msg: string) => void, opts: WatchOptions = {}): TenantSettingsSource {
  const defaults = tenantDefaults(config);
  const file = config.overridesFile;
  let current = file ? loadOverrides(file) : Overrides.none;
  const watcher = file ? watchOverrides(file, (o) => (current = o), log, opts) : null;
  return {
    overridesFor: (tenant) => current.overridesFor(tenant, defaults),
    current: () => current,
    close: () => watcher?.close(),
  };
}
