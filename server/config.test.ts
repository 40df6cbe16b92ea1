// Config sources and their precedence, value parsing, and the error messages people will read.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  HelpRequested,
  defaultConfig,
  formatDuration,
  formatSize,
  loadConfig,
  parseDuration,
  parseSize,
  usage,
} from "./config.ts";

const dir = mkdtempSync(join(tmpdir(), "hearth-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError message loadConfig throws, or fails the test. */
function errorOf(argv: string[], env: Record<string, string | undefined> = {}): string {
  try {
    loadConfig(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("defaults", () => {
  test("no flags, no env, no file gives the defaults", () => {
    expect(loadConfig([], {})).toEqual(defaultConfig());
  });

  test("the defaults are Pyroscope's where it has one", () => {
    const c = defaultConfig();
    expect(c.server).toEqual({ host: "0.0.0.0", port: 4040, grpcPort: undefined });
    expect(c.dataDir).toBe("./data");
    expect(c.multitenancy).toBe(false);
    expect(c.ingester.walFsync).toBe("always");
    expect(c.ingester.maxBlockDuration).toBe(3_600_000);
    expect(c.limits.ingestionBodyLimitBytes).toBe(256 * 1024 * 1024);
    expect(c.limits.maxProfileSizeBytes).toBe(4 * 1024 * 1024);
    expect(c.limits.maxFlamegraphNodesDefault).toBe(8192);
    expect(c.limits.maxFlamegraphNodesMax).toBe(1048576);
    expect(c.limits.maxQueryLength).toBe(24 * 3_600_000);
    expect(c.log.level).toBe("info");
  });

  test("ingestion limits default to Pyroscope's §6 values", () => {
    const l = defaultConfig().limits;
    expect(l.ingestionRateMb).toBe(4);
    expect(l.ingestionBurstSizeMb).toBe(2);
    expect(l.maxLabelNamesPerSeries).toBe(30);
    expect(l.maxLabelNameLength).toBe(1024);
    expect(l.maxLabelValueLength).toBe(2048);
    expect(l.maxProfileStacktraceSamples).toBe(16000);
    expect(l.maxProfileStacktraceSampleLabels).toBe(100);
    expect(l.maxProfileStacktraceDepth).toBe(1000);
    expect(l.maxProfileSymbolValueLength).toBe(65535);
    expect(l.rejectOlderThan).toBe(3_600_000);
    expect(l.rejectNewerThan).toBe(600_000);
  });

  test("storage upkeep defaults", () => {
    const c = defaultConfig();
    expect(c.retention).toEqual({ period: 30 * 86_400_000, maxBytes: 0, minFreeDisk: 1024 ** 3, interval: 60_000 });
    expect(c.compactor).toEqual({ enabled: true, interval: 60_000, blockRanges: [2, 12, 24].map((h) => h * 3_600_000) });
    expect(c.overridesFile).toBeUndefined();
  });

  test("each call returns a fresh object", () => {
    const a = defaultConfig();
    a.server.port = 1;
    expect(defaultConfig().server.port).toBe(4040);
  });
});

describe("flags", () => {
  test("the short flags", () => {
    const c = loadConfig(["--port", "8080", "--host=127.0.0.1", "--data-dir", "/var/lib/hearth", "--multitenancy"], {});
    expect(c.server.port).toBe(8080);
    expect(c.server.host).toBe("127.0.0.1");
    expect(c.dataDir).toBe("/var/lib/hearth");
    expect(c.multitenancy).toBe(true);
  });

  test("booleans: bare, =false, =true, --no-", () => {
    expect(loadConfig(["--multitenancy=false"], { HEARTH_MULTITENANCY: "true" }).multitenancy).toBe(false);
    expect(loadConfig(["--multitenancy=true"], {}).multitenancy).toBe(true);
    expect(loadConfig(["--multitenancy", "--no-multitenancy"], {}).multitenancy).toBe(false);
  });

  test("a boolean does not swallow the next word", () => {
    expect(errorOf(["--multitenancy", "false"])).toContain('unexpected argument "false"');
  });

  test("generic section flags, durations and sizes", () => {
    const c = loadConfig(
      [
        "--server.port=0",
        "--ingester.max-block-duration=30m",
        "--limits.max-profile-size-bytes",
        "8MiB",
        "--limits.max-query-length=30d",
        "--grpc-port=9095",
        "--log-level=debug",
      ],
      {},
    );
    expect(c.server.port).toBe(0);
    expect(c.ingester.maxBlockDuration).toBe(30 * 60_000);
    expect(c.limits.maxProfileSizeBytes).toBe(8 * 1024 * 1024);
    expect(c.limits.maxQueryLength).toBe(30 * 86_400_000);
    expect(c.server.grpcPort).toBe(9095);
    expect(c.log.level).toBe("debug");
  });

  test("ingestion rate flags take decimal MiB; window flags take durations, 0 = off", () => {
    const c = loadConfig(["--limits.ingestion-rate-mb=0.5", "--limits.ingestion-burst-size-mb", "16", "--limits.reject-older-than", "0"], {});
    expect(c.limits.ingestionRateMb).toBe(0.5);
    expect(c.limits.ingestionBurstSizeMb).toBe(16);
    expect(c.limits.rejectOlderThan).toBe(0);
    expect(loadConfig([], { HEARTH_LIMITS_INGESTION_RATE_MB: "12" }).limits.ingestionRateMb).toBe(12);
    expect(errorOf(["--limits.ingestion-rate-mb=-1"])).toContain('--limits.ingestion-rate-mb: invalid value "-1": expected a number >= 0');
    expect(errorOf(["--limits.ingestion-rate-mb=4MB"])).toContain("expected a number");
    expect(usage()).toContain("--limits.ingestion-rate-mb MB    [env HEARTH_LIMITS_INGESTION_RATE_MB; yaml limits.ingestion_rate_mb]");
  });

  test("the last of repeated flags wins", () => {
    expect(loadConfig(["--port=1", "--server.port=2", "--port", "3"], {}).server.port).toBe(3);
  });

  test("unknown flags name themselves and list the valid ones", () => {
    const top = errorOf(["--prot", "4040"]);
    expect(top).toContain("unknown flag --prot");
    expect(top).toContain("--port");
    expect(top).toContain("--data-dir");
    expect(top).toContain("--multitenancy");
    const inSection = errorOf(["--limits.max-nodes=5"]);
    expect(inSection).toContain("unknown flag --limits.max-nodes");
    expect(inSection).toContain("--limits.max-flamegraph-nodes-max");
    expect(inSection).not.toContain("--port");
    expect(errorOf(["--no-port"])).toContain("unknown flag --no-port");
  });

  test("bad values name the flag and the value", () => {
    const msg = errorOf(["--port", "abc"]);
    expect(msg).toContain("--port");
    expect(msg).toContain('"abc"');
    expect(errorOf(["--port=70000"])).toContain("0 to 65535");
    expect(errorOf(["--port=-1"])).toContain('"-1"');
    expect(errorOf(["--limits.max-profile-size-bytes=-4MiB"])).toContain('--limits.max-profile-size-bytes: invalid value "-4MiB"');
    expect(errorOf(["--ingester.wal-fsync=sometimes"])).toContain("always, none");
    expect(errorOf(["--multitenancy=maybe"])).toContain("true or false");
    expect(errorOf(["--limits.max-query-length=3600"])).toContain("unit");
  });

  test("a missing value is named", () => {
    expect(errorOf(["--port"])).toBe("flag --port needs a value");
    expect(errorOf(["--port", "--multitenancy"])).toBe("flag --port needs a value");
    expect(errorOf(["--data-dir="])).toBe("flag --data-dir needs a value");
    expect(errorOf(["--config"])).toBe("flag --config needs a value");
  });

  test("--help and -h throw HelpRequested with the usage, even beside mistakes", () => {
    for (const argv of [["--help"], ["-h"], ["--bogus", "--help"]]) {
      let err: unknown;
      try {
        loadConfig(argv, {});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HelpRequested);
      expect((err as HelpRequested).usage).toBe(usage());
    }
  });

  test("usage lists every flag, env name and YAML key with its default", () => {
    const u = usage();
    for (const s of ["--port", "--host", "--data-dir", "--multitenancy", "--config", "--help", "HEARTH_PORT"]) {
      expect(u).toContain(s);
    }
    expect(u).toContain("HEARTH_LIMITS_MAX_PROFILE_SIZE_BYTES; yaml limits.max_profile_size_bytes");
    expect(u).toContain("default 4MiB");
    expect(u).toContain("default 1h");
  });
});

describe("environment", () => {
  test("short and generic names", () => {
    const c = loadConfig([], {
      HEARTH_PORT: "5050",
      HEARTH_DATA_DIR: "/tmp/h",
      HEARTH_MULTITENANCY: "1",
      HEARTH_LIMITS_MAX_QUERY_LENGTH: "48h",
      HEARTH_INGESTER_WAL_SEGMENT_BYTES: "64MB",
      HEARTH_LOG_LEVEL: "warn",
    });
    expect(c.server.port).toBe(5050);
    expect(c.dataDir).toBe("/tmp/h");
    expect(c.multitenancy).toBe(true);
    expect(c.limits.maxQueryLength).toBe(48 * 3_600_000);
    expect(c.ingester.walSegmentBytes).toBe(64_000_000);
    expect(c.log.level).toBe("warn");
  });

  test("the short name wins over the generic one; empty means unset", () => {
    expect(loadConfig([], { HEARTH_SERVER_PORT: "1", HEARTH_PORT: "2" }).server.port).toBe(2);
    expect(loadConfig([], { HEARTH_PORT: "" }).server.port).toBe(4040);
  });

  test("flags win over the environment", () => {
    expect(loadConfig(["--port=7"], { HEARTH_PORT: "8" }).server.port).toBe(7);
  });

  test("bad values name the variable and the value", () => {
    expect(errorOf([], { HEARTH_PORT: "abc" })).toBe(
      'HEARTH_PORT: invalid value "abc": expected an integer from 0 to 65535',
    );
  });

  test("unrelated and unknown HEARTH_ variables are ignored", () => {
    expect(loadConfig([], { PATH: "/bin", HEARTH_SOMETHING_ELSE: "x" })).toEqual(defaultConfig());
  });
});

describe("YAML file", () => {
  test("snake_case keys, sections, durations and sizes", () => {
    const file = yamlFile(
      [
        "server:",
        "  host: 127.0.0.1",
        "  port: 9000",
        "  grpc_port: 9095",
        "data_dir: /srv/hearth",
        "multitenancy: true",
        "ingester:",
        "  wal_fsync: none",
        "  max_block_duration: 2h",
        "limits:",
        "  ingestion_body_limit_bytes: 64MiB",
        "  max_profile_size_bytes: 1048576",
        "  max_query_length: 0",
        "  reject_older_than: 1h30m",
        "  ingestion_rate_mb: 0.25",
        "log:",
        "  level: error",
      ].join("\n"),
    );
    const c = loadConfig(["--config", file], {});
    expect(c.server).toEqual({ host: "127.0.0.1", port: 9000, grpcPort: 9095 });
    expect(c.dataDir).toBe("/srv/hearth");
    expect(c.multitenancy).toBe(true);
    expect(c.ingester.walFsync).toBe("none");
    expect(c.ingester.maxBlockDuration).toBe(2 * 3_600_000);
    expect(c.limits.ingestionBodyLimitBytes).toBe(64 * 1024 * 1024);
    expect(c.limits.maxProfileSizeBytes).toBe(1048576);
    expect(c.limits.maxQueryLength).toBe(0);
    expect(c.limits.rejectOlderThan).toBe(90 * 60_000);
    expect(c.limits.ingestionRateMb).toBe(0.25);
    expect(c.log.level).toBe("error");
    // Untouched keys keep their defaults.
    expect(c.limits.maxFlamegraphNodesMax).toBe(1048576);
  });

  test("precedence: defaults < file < env < flags", () => {
    const file = yamlFile("server:\n  port: 1\n  host: filehost\ndata_dir: /from/file\nmultitenancy: true\n");
    const c = loadConfig(["--port=3", "--config", file], { HEARTH_PORT: "2", HEARTH_DATA_DIR: "/from/env" });
    expect(c.server.port).toBe(3);
    expect(c.server.host).toBe("filehost");
    expect(c.dataDir).toBe("/from/env");
    expect(c.multitenancy).toBe(true);
  });

  test("HEARTH_CONFIG names the file; --config overrides it", () => {
    const a = yamlFile("server: {port: 1111}\n");
    const b = yamlFile("server: {port: 2222}\n");
    expect(loadConfig([], { HEARTH_CONFIG: a }).server.port).toBe(1111);
    expect(loadConfig([`--config=${b}`], { HEARTH_CONFIG: a }).server.port).toBe(2222);
  });

  test("empty files and sections change nothing; null unsets an optional key", () => {
    expect(loadConfig(["--config", yamlFile("")], {})).toEqual(defaultConfig());
    expect(loadConfig(["--config", yamlFile("limits:\n")], {})).toEqual(defaultConfig());
    expect(loadConfig(["--config", yamlFile("server: {grpc_port: ~}")], {}).server.grpcPort).toBeUndefined();
  });

  test("unknown keys name the key and list the valid ones at that level", () => {
    const top = errorOf(["--config", yamlFile("data_dri: x\n")]);
    expect(top).toContain('unknown key "data_dri" at the top level');
    expect(top).toContain(
      "valid keys: server, data_dir, multitenancy, overrides_file, ingester, compactor, retention, limits, storage, log",
    );
    const nested = errorOf(["--config", yamlFile("server:\n  prot: 1\n")]);
    expect(nested).toContain('unknown key "prot" at server; valid keys: host, port, grpc_port');
    expect(errorOf(["--config", yamlFile("dataDir: x\n")])).toContain("did you mean data_dir?");
    expect(errorOf(["--config", yamlFile("data-dir: x\n")])).toContain("did you mean data_dir?");
  });

  test("bad values name the file, key and value", () => {
    const file = yamlFile("server:\n  port: abc\n");
    expect(errorOf(["--config", file])).toBe(
      `${file}: server.port: invalid value "abc": expected an integer from 0 to 65535`,
    );
    expect(errorOf(["--config", yamlFile("limits: {max_profile_size_bytes: -1}")])).toContain(
      "limits.max_profile_size_bytes: invalid value -1",
    );
    expect(errorOf(["--config", yamlFile("limits: {max_query_length: 3600}")])).toContain("unit");
    expect(errorOf(["--config", yamlFile("server: {port: }")])).toContain("server.port: missing value");
  });

  test("wrong shapes are refused", () => {
    expect(errorOf(["--config", yamlFile("server: 4040\n")])).toContain("server must be a mapping with keys host, port, grpc_port");
    expect(errorOf(["--config", yamlFile("- a\n- b\n")])).toContain("the top level must be a mapping");
  });

  test("a missing or unparsable file is named", () => {
    expect(errorOf(["--config", join(dir, "nope.yaml")])).toContain("nope.yaml\" (from --config): not found");
    expect(errorOf([], { HEARTH_CONFIG: join(dir, "nope.yaml") })).toContain("(from HEARTH_CONFIG)");
    expect(errorOf(["--config", yamlFile("server: [1\n")])).toContain("config file");
  });
});

describe("rules across keys", () => {
  test("default flamegraph nodes may not exceed the max", () => {
    expect(errorOf(["--limits.max-flamegraph-nodes-max=100"])).toContain(
      "limits.max_flamegraph_nodes_default (8192) must not exceed limits.max_flamegraph_nodes_max (100)",
    );
  });

  test("gRPC and HTTP need different ports", () => {
    expect(errorOf(["--grpc-port=4040"])).toContain("different ports");
    expect(loadConfig(["--grpc-port=0", "--port=0"], {}).server.grpcPort).toBe(0);
  });
});

describe("retention and compaction", () => {
  test("--retention and --retention-max-bytes, and their long forms", () => {
    const c = loadConfig(["--retention", "7d", "--retention-max-bytes=10GiB", "--min-free-disk", "5GB"], {});
    expect(c.retention.period).toBe(7 * 86_400_000);
    expect(c.retention.maxBytes).toBe(10 * 1024 ** 3);
    expect(c.retention.minFreeDisk).toBe(5e9);
    const d = loadConfig(["--retention.period=0", "--retention.max-bytes=1MiB", "--retention.min-free-disk=0"], {});
    expect(d.retention).toMatchObject({ period: 0, maxBytes: 1024 ** 2, minFreeDisk: 0 });
  });

  test("environment, short and generic", () => {
    const c = loadConfig([], {
      HEARTH_RETENTION: "14d",
      HEARTH_RETENTION_MAX_BYTES: "2GiB",
      HEARTH_MIN_FREE_DISK: "512MiB",
      HEARTH_RETENTION_INTERVAL: "5m",
      HEARTH_COMPACTOR_ENABLED: "false",
      HEARTH_COMPACTOR_BLOCK_RANGES: "1h, 4h,1d",
      HEARTH_OVERRIDES: "/etc/hearth/overrides.yaml",
    });
    expect(c.retention).toEqual({
      period: 14 * 86_400_000,
      maxBytes: 2 * 1024 ** 3,
      minFreeDisk: 512 * 1024 ** 2,
      interval: 300_000,
    });
    expect(c.compactor.enabled).toBe(false);
    expect(c.compactor.blockRanges).toEqual([1, 4, 24].map((h) => h * 3_600_000));
    expect(c.overridesFile).toBe("/etc/hearth/overrides.yaml");
    expect(loadConfig([], { HEARTH_RETENTION_PERIOD: "1d", HEARTH_RETENTION: "2d" }).retention.period).toBe(2 * 86_400_000);
    expect(loadConfig([], { HEARTH_OVERRIDES_FILE: "/o.yaml" }).overridesFile).toBe("/o.yaml");
  });

  test("YAML sections; block ranges as a list or as text", () => {
    const file = yamlFile(
      [
        "overrides_file: ./overrides.yaml",
        "compactor:",
        "  enabled: false",
        "  interval: 30s",
        "  block_ranges: [1h, 2h, 8h]",
        "retention:",
        "  period: 90d",
        "  max_bytes: 20GiB",
        "  min_free_disk: 0",
      ].join("\n"),
    );
    const c = loadConfig(["--config", file], {});
    expect(c.overridesFile).toBe("./overrides.yaml");
    expect(c.compactor).toEqual({ enabled: false, interval: 30_000, blockRanges: [1, 2, 8].map((h) => h * 3_600_000) });
    expect(c.retention).toMatchObject({ period: 90 * 86_400_000, maxBytes: 20 * 1024 ** 3, minFreeDisk: 0 });
    const text = loadConfig(["--config", yamlFile("compactor:\n  block_ranges: 2h,4h\n")], {});
    expect(text.compactor.blockRanges).toEqual([2 * 3_600_000, 4 * 3_600_000]);
    const one = loadConfig(["--compactor.block-ranges=3h"], {});
    expect(one.compactor.blockRanges).toEqual([3 * 3_600_000]);
  });

  test("bad block ranges say what is wrong", () => {
    expect(errorOf(["--compactor.block-ranges=2h,12h,10h"])).toContain("10h does not follow 12h");
    expect(errorOf(["--compactor.block-ranges=2h,3h"])).toContain("3h does not follow 2h");
    expect(errorOf(["--compactor.block-ranges=2h,2h"])).toContain("does not follow");
    expect(errorOf(["--compactor.block-ranges=2h,,4h"])).toContain("--compactor.block-ranges: invalid value");
    expect(errorOf(["--compactor.block-ranges=0,2h"])).toContain("at least");
    expect(errorOf(["--compactor.block-ranges", " "])).toContain("expected a list of durations");
    expect(errorOf(["--config", yamlFile("compactor: {block_ranges: []}")])).toContain("expected a list of durations");
    expect(errorOf(["--config", yamlFile("compactor: {block_ranges: [7200]}")])).toContain("unit");
    expect(errorOf(["--config", yamlFile("compactor: {block_ranges: {a: 1h}}")])).toContain("expected a list");
  });

  test("the first level must be a whole number of head spans, unless the compactor is off", () => {
    expect(errorOf(["--ingester.max-block-duration=45m"])).toBe(
      "compactor.block_ranges starts with 2h, which is not a multiple of ingester.max_block_duration (45m)",
    );
    expect(loadConfig(["--ingester.max-block-duration=45m", "--compactor.enabled=false"], {}).compactor.enabled).toBe(false);
    expect(loadConfig(["--ingester.max-block-duration=30m"], {}).compactor.blockRanges[0]).toBe(2 * 3_600_000);
  });

  test("bad retention values name the flag", () => {
    expect(errorOf(["--retention=30"])).toContain("--retention: invalid value \"30\"");
    expect(errorOf(["--retention-max-bytes=lots"])).toContain("--retention-max-bytes: invalid value");
    expect(errorOf(["--retention.interval=0"])).toContain("at least 1s");
    expect(errorOf(["--compactor.interval=0"])).toContain("at least 1s");
  });

  test("usage shows the new keys, lists and defaults", () => {
    const u = usage();
    expect(u).toContain(
      "--retention, --retention.period DURATION    [env HEARTH_RETENTION, HEARTH_RETENTION_PERIOD; yaml retention.period]",
    );
    expect(u).toContain("--retention-max-bytes, --retention.max-bytes SIZE");
    expect(u).toContain("--min-free-disk, --retention.min-free-disk SIZE");
    expect(u).toContain("--overrides, --overrides-file FILE");
    expect(u).toContain("default 2h,12h,1d");
    expect(u).toContain("default 30d");
    expect(u).toContain("default 1GiB");
  });
});

describe("durations and sizes", () => {
  test("parseDuration", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("30d")).toBe(30 * 86_400_000);
    expect(parseDuration("2w")).toBe(14 * 86_400_000);
    for (const bad of ["", "1", "h", "-1h", "1x", "1h 30m", "1hh"]) expect(() => parseDuration(bad)).toThrow();
  });

  test("parseSize", () => {
    expect(parseSize("0")).toBe(0);
    expect(parseSize("1024")).toBe(1024);
    expect(parseSize("4MiB")).toBe(4 * 1024 * 1024);
    expect(parseSize("256MB")).toBe(256_000_000);
    expect(parseSize("512 KiB")).toBe(512 * 1024);
    expect(parseSize("1.5GiB")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("2gi")).toBe(2 * 1024 ** 3);
    expect(parseSize("10k")).toBe(10_000);
    for (const bad of ["", "MiB", "-1", "4 XB", "1e9"]) expect(() => parseSize(bad)).toThrow();
  });

  test("format picks the largest exact unit", () => {
    expect(formatDuration(3_600_000)).toBe("1h");
    expect(formatDuration(90_000)).toBe("90s");
    expect(formatDuration(1500)).toBe("1500ms");
    expect(formatSize(4 * 1024 * 1024)).toBe("4MiB");
    expect(formatSize(1000)).toBe("1000");
  });
});
