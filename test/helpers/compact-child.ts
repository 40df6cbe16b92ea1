// Run as a child process by test/compaction.test.ts: compacts every block in argv[2] into argv[3]
// and prints one JSON line (time, peak RSS, the new meta), so the RSS measured is compaction's own.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compactBlocks, type CompactStats } from "../../storage/compact.ts";

const [from, to] = process.argv.slice(2);
const dirs = readdirSync(from)
  .sort()
  .map((d) => join(from, d));
const rssBefore = process.memoryUsage().rss;
let stats: CompactStats | null = null;
const t = performance.now();
const meta = await compactBlocks(dirs, to, { onStats: (s) => (stats = s) });
const ms = performance.now() - t;
// The peak of this process, which did nothing else. VmHWM, where there is one: getrusage's maxRSS
// starts at the parent's peak (it survives fork and exec), which says nothing about compaction.
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
const peakRss = (hwm ? Number(hwm) : process.resourceUsage().maxRSS) * 1024;
console.log(JSON.stringify({ ms, rssBefore, peakRss, stats, meta }));
