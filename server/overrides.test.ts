// Per-tenant overrides: the file format, its error messages, merging over Config, and reloading.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, defaultConfig, loadConfig } from "./config.ts";
import { Overrides, TENANT_LIMIT_KEYS, loadOverrides, openOverrides, tenantDefaults, watchOverrides, type TenantLimits } from "./overrides.ts";
import type { Config } from "./config.ts";

const tenantLimitsOf = (c: Config): TenantLimits => Object.fromEntries(TENANT_LIMIT_KEYS.map((k) => [k, c.limits[k]])) as unknown as TenantLimits;

const DAY = 86_400_000;
const GiB = 1024 ** 3;

const dir = mkdtempSync(join(tmpdir(), "hearth-overrides-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `o${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function errorOf(text: string): string {
  const file = yamlFile(text);
  try {
    loadOverrides(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

/** Waits until check() is true, polling; fails after a few seconds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await Bun.sleep(10);
  }
  throw new Error("timed out waiting");
}

describe("loadOverrides", () => {
  test("retention and retention_max_bytes per tenant", () => {
    const o = loadOverrides(
      yamlFile(
        [
          "overrides:",
          "  team-a:",
          "    retention: 7d",
          "    retention_max_bytes: 10GiB",
          "  team-b:",
          "    retention: 0",
          '  "42":',
          "    retention_max_bytes: 1048576",
        ].join("\n"),
      ),
    );
    expect(Object.fromEntries(o.tenants)).toEqual({
      "team-a": { retention: 7 * DAY, retentionMaxBytes: 10 * GiB },
      "team-b": { retention: 0 },
      "42": { retentionMaxBytes: 1048576 },
    });
  });

  test("empty file, empty section, empty tenant and null values mean the defaults", () => {
    expect(loadOverrides(yamlFile("")).tenants.size).toBe(0);
    expect(loadOverrides(yamlFile("overrides:\n")).tenants.size).toBe(0);
    expect(loadOverrides(yamlFile("overrides:\n  a:\n")).tenants.size).toBe(0);
    expect(loadOverrides(yamlFile("overrides:\n  a: {retention: ~}\n")).tenants.size).toBe(0);
  });

  test("unknown keys are named, with the valid ones", () => {
    expect(errorOf("overrides:\n  a:\n    retension: 7d\n")).toContain(
      'unknown key "retension" at overrides.a; valid keys: retention, retention_max_bytes, ingestion_rate_mb, ingestion_burst_size_mb,',
    );
    expect(errorOf("overrides:\n  a:\n    rejectOlderThan: 1h\n")).toContain("did you mean reject_older_than?");
    expect(errorOf("overrides:\n  a:\n    retentionMaxBytes: 1GiB\n")).toContain("did you mean retention_max_bytes?");
    expect(errorOf("overrides:\n  a:\n    retention-max-bytes: 1GiB\n")).toContain("did you mean retention_max_bytes?");
    expect(errorOf("limits: {}\n")).toContain('unknown key "limits" at the top level; valid keys: overrides');
  });

  test("bad values name the file, tenant, key and value", () => {
    const file = yamlFile("overrides:\n  a:\n    retention: 7\n");
    expect(() => loadOverrides(file)).toThrow(`${file}: overrides.a.retention: invalid value 7:`);
    expect(errorOf("overrides: {a: {retention_max_bytes: lots}}")).toContain(
      'overrides.a.retention_max_bytes: invalid value "lots"',
    );
  });

  test("wrong shapes are refused", () => {
    expect(errorOf("- a\n")).toContain("the top level must be a mapping");
    expect(errorOf("overrides: [a, b]\n")).toContain("overrides must be a mapping of tenant IDs");
    expect(errorOf("overrides: {a: 7d}\n")).toContain("overrides.a must be a mapping with keys retention, retention_max_bytes, ingestion_rate_mb");
    expect(errorOf('overrides: {"": {retention: 1d}}\n')).toContain("empty tenant ID");
  });

  test("a missing or unparsable file is named", () => {
    expect(() => loadOverrides(join(dir, "nope.yaml"))).toThrow('nope.yaml": not found');
    expect(errorOf("overrides: [1\n")).toContain("overrides file");
  });
});

describe("limits per tenant", () => {
  test("every ingestion limit, under Pyroscope's names and read like config limits", () => {
    const o = loadOverrides(
      yamlFile(
        [
          "overrides:",
          "  big:",
          "    ingestion_rate_mb: 8.5",
          "    ingestion_burst_size_mb: 16",
          "    max_label_names_per_series: 40",
          "    max_label_name_length: 200",
          "    max_label_value_length: 4096",
          "    max_profile_size_bytes: 8MiB",
          "    max_profile_stacktrace_samples: 32000",
          "    max_profile_stacktrace_sample_labels: 10",
          "    max_profile_stacktrace_depth: 64",
          "    max_profile_symbol_value_length: 1024",
          "    reject_older_than: 2h",
          "    reject_newer_than: 0",
        ].join("\n"),
      ),
    );
    expect(o.tenants.get("big")).toEqual({
      ingestionRateMb: 8.5,
      ingestionBurstSizeMb: 16,
      maxLabelNamesPerSeries: 40,
      maxLabelNameLength: 200,
      maxLabelValueLength: 4096,
      maxProfileSizeBytes: 8 * 1024 * 1024,
      maxProfileStacktraceSamples: 32000,
      maxProfileStacktraceSampleLabels: 10,
      maxProfileStacktraceDepth: 64,
      maxProfileSymbolValueLength: 1024,
      rejectOlderThan: 2 * 3_600_000,
      rejectNewerThan: 0,
    });
  });

  test("defaults come from config limits; an override changes only its key", () => {
    const config = loadConfig(["--limits.ingestion-rate-mb=1", "--limits.reject-older-than=0"], {});
    const defaults = tenantDefaults(config);
    expect(defaults).toMatchObject({ ingestionRateMb: 1, ingestionBurstSizeMb: 2, rejectOlderThan: 0, maxProfileStacktraceDepth: 1000 });
    const o = new Overrides(new Map([["t", { maxProfileStacktraceDepth: 5 }]]));
    expect(o.overridesFor("t", defaults)).toEqual({ ...defaults, maxProfileStacktraceDepth: 5 });
  });

  test("bad limit values are named", () => {
    expect(errorOf("overrides: {a: {ingestion_rate_mb: fast}}")).toContain('overrides.a.ingestion_rate_mb: invalid value "fast": expected a number >= 0');
    expect(errorOf("overrides: {a: {max_profile_stacktrace_depth: -1}}")).toContain("overrides.a.max_profile_stacktrace_depth: invalid value -1");
    expect(errorOf("overrides: {a: {reject_older_than: 3600}}")).toContain("unit");
  });
});

describe("overridesFor", () => {
  test("a tenant's overrides over Config's defaults, key by key", () => {
    const config = loadConfig(["--retention=30d", "--retention-max-bytes=100GiB"], {});
    const defaults = tenantDefaults(config);
    expect(defaults).toMatchObject({ retention: 30 * DAY, retentionMaxBytes: 100 * GiB });
    const o = new Overrides(new Map([["short", { retention: DAY }]]));
    expect(o.overridesFor("short", defaults)).toEqual({ ...defaults, retention: DAY, retentionMaxBytes: 100 * GiB });
    expect(o.overridesFor("other", defaults)).toEqual(defaults);
    expect(Overrides.none.overridesFor("x", defaults)).toEqual(defaults);
  });
});

describe("watchOverrides", () => {
  test("reloads on change; a bad or missing file keeps the overrides in force and is logged once", async () => {
    const file = yamlFile("overrides: {a: {retention: 1d}}\n");
    const logs: string[] = [];
    const seen: Overrides[] = [];
    const w = watchOverrides(file, (o) => seen.push(o), (m) => logs.push(m), { intervalMs: 10 });
    try {
      await Bun.sleep(50);
      expect(seen).toEqual([]); // nothing changed yet

      writeFileSync(file, "overrides: {a: {retention: 2d}, b: {retention: 3d}}\n");
      await until(() => seen.length === 1);
      expect(seen[0]!.tenants.get("a")).toEqual({ retention: 2 * DAY });
      expect(logs.at(-1)).toContain("reloaded");
      expect(logs.at(-1)).toContain("(2 tenants with overrides)");

      writeFileSync(file, "overrides: {a: {retension: 2d}}\n");
      await until(() => logs.some((m) => m.includes("retension")));
      await Bun.sleep(50);
      expect(seen.length).toBe(1);
      expect(logs.filter((m) => m.includes("retension")).length).toBe(1);
      expect(logs.at(-1)).toContain("keeping the overrides in force");

      rmSync(file);
      await until(() => logs.some((m) => m.includes("not found")));

      // Written elsewhere and renamed over, as editors and config managers do.
      const tmp = file + ".new";
      writeFileSync(tmp, "overrides: {c: {retention_max_bytes: 1GiB}}\n");
      renameSync(tmp, file);
      await until(() => seen.length === 2);
      expect([...seen[1]!.tenants.keys()]).toEqual(["c"]);
    } finally {
      w.close();
    }
  });

  test("an onChange that throws is logged, not fatal", async () => {
    const file = yamlFile("overrides:\n");
    const logs: string[] = [];
    const w = watchOverrides(file, () => { throw new Error("boom"); }, (m) => logs.push(m), { intervalMs: 10 });
    try {
      writeFileSync(file, "overrides: {a: {retention: 1d}}\n");
      await until(() => logs.some((m) => m.includes("boom")));
    } finally {
      w.close();
    }
  });

  test("no calls after close", async () => {
    const file = yamlFile("overrides:\n");
    let calls = 0;
    const w = watchOverrides(file, () => calls++, () => {}, { intervalMs: 10 });
    w.close();
    writeFileSync(file, "overrides: {a: {retention: 1d}}\n");
    await Bun.sleep(60);
    expect(calls).toBe(0);
  });
});

describe("openOverrides", () => {
  test("without a file every tenant gets Config's settings", () => {
    const src = openOverrides(defaultConfig(), () => {});
    expect(src.overridesFor("any")).toEqual({ ...tenantLimitsOf(defaultConfig()), retention: 30 * DAY, retentionMaxBytes: 0 });
    expect(src.current()).toBe(Overrides.none);
    src.close();
  });

  test("follows the file named by the config", async () => {
    const file = yamlFile("overrides: {a: {retention: 7d}}\n");
    const src = openOverrides(loadConfig(["--overrides", file], {}), () => {}, { intervalMs: 10 });
    try {
      expect(src.overridesFor("a")).toMatchObject({ retention: 7 * DAY, retentionMaxBytes: 0 });
      expect(src.overridesFor("b").retention).toBe(30 * DAY);
      writeFileSync(file, "overrides: {a: {retention: 1d, retention_max_bytes: 5GiB}}\n");
      await until(() => src.overridesFor("a").retention === DAY);
      expect(src.overridesFor("a").retentionMaxBytes).toBe(5 * GiB);
    } finally {
      src.close();
    }
  });

  test("a bad file at start-up is a ConfigError, like a bad config", () => {
    const config = loadConfig(["--overrides", yamlFile("overrides: {a: {bogus: 1}}\n")], {});
    expect(() => openOverrides(config, () => {})).toThrow(ConfigError);
    const missing = loadConfig(["--overrides", join(dir, "missing.yaml")], {});
    expect(() => openOverrides(missing, () => {})).toThrow("not found");
  });
});
