// End to end with blocks: flush cuts heads into blocks and truncates the WAL; answers are the
// same before and after, across restarts, and after SIGKILL at each dangerous point of a cut;
// a corrupt block is quarantined while the rest keeps serving.

import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const HEAP = "memory:alloc_space:bytes:space:bytes";
const FILES: [string, string, number][] = [
  ["cpu.pb.gz", CPU, 1],
  ["profile_java", CPU, 0],
  ["heap", HEAP, 1],
];
const svc = (f: string, round: number) => `blk-${f.replace(/[^a-z0-9]/gi, "-")}-${round}`;

async function ingest(s: RunningServer, round: number) {
  for (const [f] of FILES) {
    const r = await fetch(`${s.url}/ingest?format=pprof&name=${svc(f, round)}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) });
    expect(r.status).toBe(200);
  }
}

async function total(s: RunningServer, service: string, type: string): Promise<number> {
  const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeStacktraces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ profileTypeID: type, labelSelector: `{service_name="${service}"}`, start: 1000, end: Date.now() + 3600_000 }),
  });
  expect(r.status).toBe(200);
  return Number((await r.json()).flamegraph?.total ?? 0);
}

/** Every ingested round answers exactly its fixtures' totals: nothing lost, nothing doubled. */
async function expectRounds(s: RunningServer, rounds: number[]) {
  for (const round of rounds)
    for (const [f, type, idx] of FILES) expect(await total(s, svc(f, round), type), `${f} round ${round}`).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + f), idx));
}

const blocksOf = (dataDir: string) => readdirSync(join(dataDir, "anonymous", "blocks"));
const walSegments = (dataDir: string) => readdirSync(join(dataDir, "anonymous", "wal"));

describe("blocks", () => {
  test("flush writes a block, truncates the WAL, and answers stay identical across restart", async () => {
    const dataDir = tempDir();
    try {
      let s = await startServer({ dataDir });
      await ingest(s, 1);
      await expectRounds(s, [1]);
      const r = await fetch(`${s.url}/ingester/flush`, { method: "POST" });
      expect(r.status).toBe(200);
      const blocks = blocksOf(dataDir);
      expect(blocks.length).toBe(1);
      expect(existsSync(join(dataDir, "anonymous", "blocks", blocks[0], "meta.json"))).toBe(true);
      expect(walSegments(dataDir).length).toBe(1); // only the fresh, empty segment is left
      await expectRounds(s, [1]);
      await ingest(s, 2); // these stay in the head + WAL
      await s.kill9();
      s = await startServer({ dataDir });
      await expectRounds(s, [1, 2]);
      await s.stop(); // SIGTERM flushes the second round into a second block
      expect(blocksOf(dataDir).length).toBe(2);
      s = await startServer({ dataDir });
      await expectRounds(s, [1, 2]);
      await s.stop();
    } finally {
      removeDir(dataDir);
    }
  });

  for (const point of ["block-before-rename", "block-before-wal-truncate"]) {
    test(`SIGKILL at ${point}: nothing lost, nothing counted twice, no garbage left`, async () => {
      const dataDir = tempDir();
      try {
        let s = await startServer({ dataDir, env: { HEARTH_FAILPOINT: point } });
        await ingest(s, 1);
        await fetch(`${s.url}/ingester/flush`, { method: "POST" }).catch(() => null);
        await s.proc.exited;
        expect(s.proc.signalCode).toBe("SIGKILL");
        s = await startServer({ dataDir });
        await expectRounds(s, [1]);
        expect(blocksOf(dataDir).filter((b) => b.endsWith(".tmp"))).toEqual([]);
        // After a clean flush the data lives in exactly one block and the WAL is empty again.
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        await expectRounds(s, [1]);
        await s.kill9();
        s = await startServer({ dataDir });
        await expectRounds(s, [1]);
        await s.stop();
      } finally {
        removeDir(dataDir);
      }
    });
  }

  test("a corrupt block is quarantined with a log line; the rest keeps serving", async () => {
    const dataDir = tempDir();
    try {
      let s = await startServer({ dataDir });
      await ingest(s, 1);
      await fetch(`${s.url}/ingester/flush`, { method: "POST" });
      await ingest(s, 2);
      await fetch(`${s.url}/ingester/flush`, { method: "POST" });
      await s.stop();
      const [first] = blocksOf(dataDir).sort();
      const parquet = join(dataDir, "anonymous", "blocks", first, "profiles.parquet");
      const bytes = readFileSync(parquet);
      bytes.fill(0x5a, 0, bytes.length); // garbage, same size
      writeFileSync(parquet, bytes);
      s = await startServer({ dataDir });
      // Round 1 lived in the corrupt block: it answers 0 rather than failing the query.
      expect(await total(s, svc("cpu.pb.gz", 1), CPU)).toBe(0);
      await expectRounds(s, [2]);
      expect(s.output()).toContain("quarantined");
      expect(blocksOf(dataDir)).toContain(`${first}.corrupt`);
      await s.stop();
    } finally {
      removeDir(dataDir);
    }
  });
});

describe("retention", () => {
  test("blocks older than --retention are deleted and free the disk; newer ones stay", async () => {
    const dataDir = tempDir();
    try {
      const s = await startServer({ dataDir, args: ["--retention", "1h", "--retention.interval", "1s"] });
      try {
        await ingest(s, 1); // the fixtures' own timestamps: years old
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        const [old] = blocksOf(dataDir);
        const r = await fetch(`${s.url}/ingest?name=${encodeURIComponent("fresh-app.cpu")}&from=now-1m`, { method: "POST", body: "main;work 42\n" });
        expect(r.status).toBe(200);
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        // The fresh block is there (the old one may already be gone: retention runs every second).
        expect(blocksOf(dataDir).some((b) => b !== old)).toBe(true);
        const deadline = Date.now() + 10_000;
        while (blocksOf(dataDir).includes(old) && Date.now() < deadline) await Bun.sleep(100);
        expect(blocksOf(dataDir)).not.toContain(old);
        expect(blocksOf(dataDir).length).toBe(1);
        expect(s.output()).toContain(`deleting block ${old} (retention: age)`);
        expect(await total(s, svc("cpu.pb.gz", 1), CPU)).toBe(0);
        expect(await total(s, "fresh-app", "process_cpu:cpu:nanoseconds:cpu:nanoseconds")).toBe(42 * 1e7);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });

  test("--retention-max-bytes keeps the newest blocks under the cap", async () => {
    const dataDir = tempDir();
    try {
      const s = await startServer({ dataDir, args: ["--retention-max-bytes", "1", "--retention.interval", "1s"] });
      try {
        await ingest(s, 1);
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        const deadline = Date.now() + 10_000;
        while (blocksOf(dataDir).length > 0 && Date.now() < deadline) await Bun.sleep(100);
        expect(blocksOf(dataDir)).toEqual([]);
        expect(s.output()).toContain("(retention: size)");
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});

describe("compaction", () => {
  const blocks = (dataDir: string) => blocksOf(dataDir).filter((b) => !b.includes("."));
  // One fixture per round: each block then covers one instant, and all fall in one window (the
  // three fixtures' timestamps are years apart, so a block of all three fits no window).
  const [cpu] = FILES;
  const ingestCpu = async (s: RunningServer, round: number) => {
    const r = await fetch(`${s.url}/ingest?format=pprof&name=${svc(cpu[0], round)}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + cpu[0]) });
    expect(r.status).toBe(200);
  };
  const expectCpuRounds = async (s: RunningServer, rounds: number[]) => {
    for (const round of rounds) expect(await total(s, svc(cpu[0], round), cpu[1]), `round ${round}`).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + cpu[0]), cpu[2]));
  };

  test("small blocks of one window are merged into one; answers stay identical", async () => {
    const dataDir = tempDir();
    try {
      const s = await startServer({ dataDir, args: ["--compactor.interval", "1s"] });
      try {
        for (const round of [1, 2, 3]) {
          await ingestCpu(s, round);
          await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        }
        const deadline = Date.now() + 20_000;
        while (blocks(dataDir).length > 1 && Date.now() < deadline) await Bun.sleep(100);
        expect(blocks(dataDir).length).toBe(1);
        const meta = JSON.parse(readFileSync(join(dataDir, "anonymous", "blocks", blocks(dataDir)[0], "meta.json"), "utf8"));
        expect(meta.compaction.level).toBeGreaterThan(1);
        expect(meta.compaction.sources.length).toBeGreaterThanOrEqual(3);
        await expectCpuRounds(s, [1, 2, 3]);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });

  test("SIGKILL between the merged block's rename and the swap: sources are dropped at start-up, nothing counted twice", async () => {
    const dataDir = tempDir();
    try {
      let s = await startServer({ dataDir, args: ["--compactor.interval", "1s"], env: { HEARTH_FAILPOINT: "compaction-before-swap" } });
      for (const round of [1, 2]) {
        await ingestCpu(s, round);
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
      }
      await s.proc.exited;
      expect(s.proc.signalCode).toBe("SIGKILL");
      expect(blocks(dataDir).length).toBe(3); // two sources and the merged block
      s = await startServer({ dataDir, args: ["--compactor.enabled=false"] });
      try {
        expect(blocks(dataDir).length).toBe(1);
        expect(s.output()).toContain("a compacted block already holds its profiles");
        await expectCpuRounds(s, [1, 2]);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});

describe("deleting series", () => {
  test("POST /api/admin/delete-series removes a service from head and blocks and frees its rows; others stay", async () => {
    const dataDir = tempDir();
    try {
      const s = await startServer({ dataDir, args: ["--compactor.enabled=false"] });
      try {
        await ingest(s, 1);
        await fetch(`${s.url}/ingester/flush`, { method: "POST" });
        await ingest(s, 2); // still in the head
        const gone = svc("profile_java", 1);
        const gone2 = svc("profile_java", 2);
        const r = await fetch(`${s.url}/api/admin/delete-series?match[]=${encodeURIComponent(`{service_name=~"${gone}|${gone2}"}`)}`, { method: "POST" });
        expect(r.status).toBe(200);
        const body = await r.json();
        expect(body.series).toBeGreaterThan(0);
        expect(body.blocksRewritten).toBe(2);
        expect(await total(s, gone, CPU)).toBe(0);
        expect(await total(s, gone2, CPU)).toBe(0);
        for (const round of [1, 2]) for (const f of ["cpu.pb.gz", "heap"]) {
          const [, type, idx] = FILES.find((x) => x[0] === f)!;
          expect(await total(s, svc(f, round), type)).toBe(sumColumn(readPprof(FIXTURES + "pprof/" + f), idx));
        }
        const names = await (await fetch(`${s.url}/querier.v1.QuerierService/LabelValues`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "service_name" }) })).json();
        expect(names.names).not.toContain(gone);
        const bad = await fetch(`${s.url}/api/admin/delete-series?match[]={}`, { method: "POST" });
        expect(bad.status).toBe(400);
      } finally {
        await s.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
