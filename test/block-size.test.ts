// Bytes on disk per ingested profile, as a ratio to the gzipped pprof received: the Go CPU and
// Java fixtures, each repeated 360 times 10 s apart with varying values, in one block. Goal ≤ 0.25.
// Also prints write time and query time of the block next to the head's.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../server/ingest/pprof-decoder.ts";
import { BlockReader } from "../storage/block/reader.ts";
import { writeBlock } from "../storage/block/writer.ts";
import { Head } from "../storage/head/head.ts";
import { HeadReader, type ProfileReader, type SelectQuery } from "../storage/head/read.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";

const PROFILES = 360;
const T0 = Date.UTC(2026, 2, 1);
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const tmp = mkdtempSync(join(tmpdir(), "hearth-block-size-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function fastest(run: () => Promise<unknown>, rounds = 40): Promise<number> {
  for (let i = 0; i < 10; i++) await run();
  let best = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await run();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

for (const file of ["cpu.pb.gz", "profile_java"]) {
  test(`${file} ×${PROFILES}: block bytes per profile ≤ 0.25 of the gzipped pprof`, async () => {
    const received = readFileSync(join(FIXTURES, "pprof", file));
    const raw = received[0] === 0x1f && received[1] === 0x8b ? gunzipSync(received) : received;
    const gzipped = raw === received ? Bun.gzipSync(raw).length : received.length;
    const head = new Head();
    for (let i = 0; i < PROFILES; i++) {
      const p = decodePprof(raw);
      const v = p.samples.values;
      for (let j = 0; j < v.length; j++) v[j] = v[j] * (1 + ((i + j) % 7));
      p.timeNanos = BigInt(T0 + i * 10_000) * 1000000n;
      head.append([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "svc" }], p);
    }

    const dir = mkdtempSync(join(tmp, "blocks-"));
    const t = performance.now();
    const meta = await writeBlock(head, dir);
    const writeMs = performance.now() - t;
    const blockDir = join(dir, meta.ulid);
    const sizes = Object.fromEntries(readdirSync(blockDir).map((f) => [f, statSync(join(blockDir, f)).size]));
    const bytes = Object.values(sizes).reduce((a, b) => a + b, 0);
    const ratio = bytes / (PROFILES * gzipped);

    const h: ProfileReader = new HeadReader(head);
    const b = await BlockReader.open(blockDir);
    const cold = performance.now();
    await b.selectMergeTree({ profileTypeId: CPU, matchers: [], start: 0, end: 0 });
    const coldMs = performance.now() - cold;
    const times: string[] = [];
    for (const [name, range] of [
      ["1 h", { start: T0, end: T0 + PROFILES * 10_000 }],
      ["last 5 min", { start: T0 + (PROFILES - 30) * 10_000, end: T0 + PROFILES * 10_000 }],
    ] as const) {
      const q: SelectQuery = { profileTypeId: CPU, matchers: [], ...range };
      const s = { ...q, groupBy: [], stepMs: 60_000, aggregation: "sum" as const };
      const [ht, bt] = [await fastest(() => h.selectMergeTree(q)), await fastest(() => b.selectMergeTree(q))];
      const [hs, bs] = [await fastest(() => h.selectSeries(s)), await fastest(() => b.selectSeries(s))];
      times.push(`${name}: selectMergeTree head ${ht.toFixed(2)} ms, block ${bt.toFixed(2)} ms; selectSeries head ${hs.toFixed(2)} ms, block ${bs.toFixed(2)} ms`);
    }
    b.close();
    console.log(
      `${file}: ${gzipped} B gzipped per profile, ${head.samples} samples in ${head.rows} rows; block ${bytes} B ${JSON.stringify(sizes)}\n` +
        `  ${(bytes / PROFILES).toFixed(1)} B per profile, ratio ${ratio.toFixed(4)}; write ${writeMs.toFixed(0)} ms; first query ${coldMs.toFixed(1)} ms\n  ` +
        times.join("\n  "),
    );
    expect(ratio).toBeLessThanOrEqual(0.25);
  }, 60_000);
}
