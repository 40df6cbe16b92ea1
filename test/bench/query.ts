// Query: one hour of 10 s profiles of one service, then SelectMergeStacktraces over the hour, from
// the head and from the flushed block, against a typed-array sum over the same (stack, value) rows.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flush, ingest, openApp, pool, selectMergeTotal } from "./app-client.ts";
import { partMain } from "./child.ts";
import { loadFixture, PprofTemplate, sumRows } from "./pprof-template.ts";
import { fmt, ms, timeIt, type Table } from "./table.ts";

const PROFILES = 360;

async function queryBench(t: Table, fixture: string, typeId: string, valueIndex: number): Promise<void> {
  const tp = PprofTemplate.from(loadFixture(fixture), { durationNanos: 10e9 });
  const dir = mkdtempSync(join(tmpdir(), "hearth-bench-q-"));
  // The whole hour in one head (360 heap profiles pass the default 32 MiB cut), so "from the head" is.
  const app = await openApp(dir, "none", (c) => (c.ingester.maxBlockBytes = 2 ** 30));
  try {
    const t0 = Date.UTC(2026, 0, 1);
    const values = Array.from({ length: PROFILES }, (_, p) => tp.values(p));
    const bodies = values.map((v, p) => tp.body(v, t0 + p * 10_000));
    const ingestStart = performance.now();
    await pool(bodies.length, 4, (i) => ingest(app, "bench-query", bodies[i]));
    const ingestSec = (performance.now() - ingestStart) / 1000;
    // The floor: the rows a store keeps (one per distinct stack of each profile), summed by stack.
    const rows = values.map((v) => tp.rows(v, valueIndex));
    const floor = await timeIt(() => sumRows(rows, tp.stacks));
    const expect = rows.reduce((a, r) => a + r.vals.reduce((x, y) => x + y, 0), 0);
    const call = () => selectMergeTotal(app, typeId, '{service_name="bench-query"}', t0, t0 + 3600_000);
    const input = `${fixture}: ${PROFILES} × ${Math.round(rows.reduce((n, r) => n + r.ids.length, 0) / PROFILES)} stacks`;
    for (const where of ["head", "block"] as const) {
      if (where === "block") await flush(app);
      // The answer must be the real one, or the timing means nothing.
      const got = await call();
      if (got !== expect) throw new Error(`query (${where}): total ${got}, expected ${expect}`);
      const q = await timeIt(call);
      t.row(`SelectMergeStacktraces 1 h, from the ${where}`, input, ms(q), `${ms(floor)} typed-array sum`, fmt(q / floor, 1));
    }
    t.row("  ingest of those profiles (no fsync, 4 in flight)", "", `${fmt(PROFILES / ingestSec, 0)} profiles/s`);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function queryBenches(t: Table): Promise<void> {
  await queryBench(t, "profile_java", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 0);
  await queryBench(t, "heap", "memory:inuse_space:bytes:space:bytes", 3);
}

if (import.meta.main) await partMain(queryBenches);
