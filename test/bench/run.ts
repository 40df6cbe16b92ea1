// `npm run bench`: speed as ratios against a floor measured in the same run (DESIGN §6), and the
// bounded-resources checks of issue 3. Each part runs in a Bun process of its own (child.ts), so
// its RSS and its start-up are its own; the rows of all parts are printed as one table.
//
//   ingest.ts             /ingest per fixture vs gunzip + protobuf wire walk
//   ingest-formats.ts     every ingest format (pprof, JFR, text, trie/tree, speedscope, OTLP, Push) vs its floor
//   query.ts              SelectMergeStacktraces over 1 h, head and block, vs a typed-array sum
//   bytes-per-profile.ts  bytes on disk per profile vs gzipped pprof received (goal ≤ 0.25)
//   startup.ts            createApp with 1,000 blocks vs reading their meta.json (goal < 1 s)
//   wal-replay.ts         WAL replay MB/s vs readFileSync of the segments
//   soak.ts               50 services × 4 types every 10 s, time compressed: RSS per hour (goal < 256 MB)
//
// `bun test/bench/<part>.ts` runs one part alone; `HEARTH_BENCH_PARTS=soak,startup` picks parts.

import { availableParallelism } from "node:os";
import { runChild } from "./child.ts";
import { printTable, type Row } from "./table.ts";

const PARTS = ["ingest", "ingest-formats", "query", "bytes-per-profile", "startup", "wal-replay", "soak"];
const chosen = process.env.HEARTH_BENCH_PARTS?.split(",").map((s) => s.trim()) ?? PARTS;

const t0 = performance.now();
const rows: Row[] = [];
const took: string[] = [];
for (const part of PARTS.filter((p) => chosen.includes(p))) {
  const t = performance.now();
  process.stderr.write(`bench: ${part}…\n`);
  rows.push(...(await runChild<Row[]>(`${part}.ts`)));
  took.push(`${part} ${((performance.now() - t) / 1000).toFixed(0)} s`);
}

printTable(rows);
const rev = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: import.meta.dir }).stdout.toString().trim();
console.log(`\nbun ${Bun.version}, ${availableParallelism()} cores, commit ${rev || "?"}; ${((performance.now() - t0) / 1000).toFixed(0)} s in all (${took.join(", ")})`);
