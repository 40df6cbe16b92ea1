// profiles.parquet stays readable by standard tools: DuckDB reads a written block and its sums,
// counts and time range match the head the block was cut from.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { writeBlock } from "../storage/block/writer.ts";
import { Head } from "../storage/head/head.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-block-duckdb-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("DuckDB sums profiles.parquet to the head's totals", async () => {
  const head = new Head();
  const T0 = Date.UTC(2026, 2, 1);
  for (const [file, name] of [
    ["cpu.pb.gz", "process_cpu"],
    ["profile_java", "process_cpu"],
    ["heap", "memory"],
  ])
    for (let i = 0; i < 4; i++) {
      let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", file));
      if (b[0] === 0x1f) b = gunzipSync(b);
      const p = decodePprof(b);
      p.timeNanos = BigInt(T0 + i * 10_000) * 1000000n;
      head.append([{ name: "__name__", value: name }, { name: "service_name", value: `svc-${i % 2}` }], p);
    }
  let total = 0;
  const perSeries: number[] = [];
  // series_ref numbers the series in label order (see writeBlock).
  for (const s of [...head.series].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    let t = 0;
    for (let r = 0; r < s.timeMs.length; r++) for (const v of s.rowValues(r)) t += v;
    perSeries.push(t);
    total += t;
  }

  // Small row groups, so DuckDB reads several.
  const meta = await writeBlock(head, tmp, { rowGroupSize: 5000 });
  const path = join(tmp, meta.ulid, "profiles.parquet");
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const all = (await conn.runAndReadAll(`SELECT count(*) AS n, sum(value) AS s, min(time_ms) AS lo, max(time_ms) AS hi FROM read_parquet('${path}')`)).getRowObjects();
    expect(Number(all[0].n)).toBe(meta.stats.numSamples);
    expect(Number(all[0].n)).toBe(head.samples);
    expect(Number(all[0].s)).toBe(total);
    expect(Number(all[0].lo)).toBe(meta.minTime);
    expect(Number(all[0].hi)).toBe(meta.maxTime);
    const bySeries = (await conn.runAndReadAll(`SELECT series_ref, sum(value) AS s FROM read_parquet('${path}') GROUP BY series_ref ORDER BY series_ref`)).getRowObjects();
    expect(bySeries.map((r) => Number(r.s))).toEqual(perSeries);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}, 60_000);
