// The block catalog: rows follow upserts, locations and removals; a rebuild from the meta.json files
// equals the state a TenantDB maintained step by step; a corrupt or missing file is rebuilt at open;
// a TenantDB starts from the catalog and mends it when the blocks directory disagrees.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlockMeta } from "./block/meta.ts";
import { writeBlock } from "./block/writer.ts";
import { Catalog, CATALOG_FILE } from "./catalog.ts";
import { compactBlocks, rewriteWithout } from "./compact.ts";
import { Head } from "./head/head.ts";
import type { Labels } from "./model/labels.ts";
import { parseSelector } from "./model/selector.ts";
import { TenantDB } from "./tenant-db.ts";
import { cpuProfile } from "../test/helpers/cpu-profile.ts";

const T0 = Date.UTC(2026, 2, 1);

const labels = (svc: string): Labels => [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: svc },
];

/** Writes a block of one profile per service at `timeMs` straight into a tenant's blocks dir. */
async function blockAt(dataDir: string, tenant: string, timeMs: number, services = ["api"]): Promise<BlockMeta> {
  const h = new Head();
  for (const s of services) h.append(labels(s), cpuProfile({ "main;work": 10 }, timeMs));
  const blocksDir = join(dataDir, tenant, "blocks");
  mkdirSync(blocksDir, { recursive: true });
  return writeBlock(h, blocksDir);
}

let dataDir: string;
let logs: string[];
const log = (m: string) => logs.push(m);
const openDB = (catalog: Catalog, tenant = "t1") => TenantDB.open(join(dataDir, tenant), { walFsync: "none", walSegmentBytes: 1 << 20, log, catalog });
const ulids = (c: Catalog, tenant?: string) => c.list(tenant).map((b) => b.ulid);

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "hearth-catalog-"));
  logs = [];
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe("rows", () => {
  test("upsert, list, get, tenants, remove", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const b = await blockAt(dataDir, "t2", T0 + 1000, ["api", "db"]);
    const c = Catalog.open(dataDir, { log });
    try {
      // Both were on disk before the catalog existed: the first open found them.
      expect(logs.some((l) => l.includes("was missing; rebuilt") && l.includes("2 blocks"))).toBe(true);
      c.remove("t1", a.ulid);
      c.remove("t2", b.ulid);
      expect(c.list()).toEqual([]);
      c.upsert("t2", b, "local");
      c.upsert("t1", a, "bucket");
      expect(c.tenants()).toEqual(["t1", "t2"]);
      expect(c.list().map((x) => [x.tenant, x.ulid])).toEqual([
        ["t1", a.ulid],
        ["t2", b.ulid],
      ]);
      const row = c.get("t2", b.ulid)!;
      expect(row).toMatchObject({ tenant: "t2", ulid: b.ulid, minTime: b.minTime, maxTime: b.maxTime, level: 1, sources: [b.ulid], numSamples: b.stats.numSamples, location: "local" });
      expect(row.bytes).toBe(b.files.reduce((n, f) => n + f.sizeBytes, 0));
      expect(row.meta).toEqual(b);
      expect(c.list("t1").map((x) => x.location)).toEqual(["bucket"]);
      // Upserting again replaces, never duplicates.
      c.upsert("t1", a, "both");
      expect(c.list("t1").map((x) => x.location)).toEqual(["both"]);
      c.remove("t1", a.ulid);
      expect(c.get("t1", a.ulid)).toBeNull();
      expect(c.tenants()).toEqual(["t2"]);
    } finally {
      c.close();
    }
  });

  test("locations: a copy added makes 'both', a copy dropped leaves the other, the last one removes the row", async () => {
    const c = Catalog.open(dataDir, { log });
    try {
      const a = await blockAt(dataDir, "t1", T0);
      c.addLocation("t1", a, "local");
      expect(c.get("t1", a.ulid)!.location).toBe("local");
      c.addLocation("t1", a, "bucket");
      expect(c.get("t1", a.ulid)!.location).toBe("both");
      c.addLocation("t1", a, "local");
      expect(c.get("t1", a.ulid)!.location).toBe("both");
      c.dropLocation("t1", a.ulid, "local");
      expect(c.get("t1", a.ulid)!.location).toBe("bucket");
      c.dropLocation("t1", a.ulid, "local"); // no local copy: nothing changes
      expect(c.get("t1", a.ulid)!.location).toBe("bucket");
      c.dropLocation("t1", a.ulid, "bucket");
      expect(c.get("t1", a.ulid)).toBeNull();
      c.upsert("t1", a, "local");
      c.setLocation("t1", a.ulid, "both");
      expect(c.get("t1", a.ulid)!.location).toBe("both");
    } finally {
      c.close();
    }
  });

  test("the file is SQLite in WAL mode, readable by other connections", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const c = Catalog.open(dataDir, { log });
    try {
      const other = new Database(join(dataDir, CATALOG_FILE), { readonly: true });
      expect(other.query("PRAGMA journal_mode").values()[0][0]).toBe("wal");
      expect(other.query("SELECT tenant, ulid, location, level FROM blocks").all()).toEqual([{ tenant: "t1", ulid: a.ulid, location: "local", level: 1 }]);
      other.close();
    } finally {
      c.close();
    }
  });
});

describe("rebuild", () => {
  test("rebuilding from the meta.json files equals the state a TenantDB maintained step by step", async () => {
    const c = Catalog.open(dataDir, { log });
    try {
      const { db } = await openDB(c);
      const tenant = "t1";
      // Four cuts, then a compaction of the first three, a rewrite of the fourth, a deletion.
      for (let i = 0; i < 4; i++) {
        await db.append(tenant, [{ labels: labels(i % 2 ? "api" : "worker"), profile: cpuProfile({ "main;work": 10 + i }, T0 + i * 60_000) }]);
        await db.append(tenant, [{ labels: labels("gone"), profile: cpuProfile({ "main;idle": 1 }, T0 + i * 60_000) }]);
        await db.cut();
      }
      const cut = db.blockMetas().map((m) => m.ulid);
      expect(ulids(c, tenant)).toEqual(cut);
      const merged = await compactBlocks(cut.slice(0, 3).map((u) => join(db.blocksDir, u)), db.blocksDir);
      await db.replaceBlocks(cut.slice(0, 3), join(db.blocksDir, merged.ulid));
      expect(c.get(tenant, merged.ulid)).toMatchObject({ level: 2, sources: [...cut.slice(0, 3)].sort(), location: "local" });
      const rewritten = await rewriteWithout(join(db.blocksDir, cut[3]), db.blocksDir, parseSelector('{service_name="gone"}'));
      await db.replaceBlocks([cut[3]], join(db.blocksDir, rewritten!.ulid));
      await db.append(tenant, [{ labels: labels("api"), profile: cpuProfile({ "main;late": 5 }, T0 + 3600_000) }]);
      await db.cut();
      const last = db.blockMetas().at(-1)!.ulid;
      await db.deleteBlocks([last]);

      const served = db.blockMetas().map((m) => m.ulid).sort();
      expect(served).toEqual([merged.ulid, rewritten!.ulid].sort());
      const step = c.list();
      expect(step.map((b) => b.ulid)).toEqual(served);
      await db.close();

      expect(c.rebuild()).toBe(2);
      expect(c.list()).toEqual(step);
    } finally {
      c.close();
    }
  });

  test("a rebuild keeps what was known of the bucket", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const b = await blockAt(dataDir, "t1", T0 + 1000);
    const c = Catalog.open(dataDir, { log });
    try {
      c.addLocation("t1", a, "bucket");
      const remoteOnly = { ...b, ulid: "01J00000000000000000000000" };
      c.upsert("t1", remoteOnly, "bucket");
      c.remove("t1", b.ulid);
      c.rebuild();
      expect(c.list().map((x) => [x.ulid, x.location])).toEqual([
        [remoteOnly.ulid, "bucket"],
        [a.ulid, "both"],
        [b.ulid, "local"],
      ]);
    } finally {
      c.close();
    }
  });

  test("unfinished, quarantined and unreadable block directories are left out", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const b = await blockAt(dataDir, "t1", T0 + 1000);
    const bad = await blockAt(dataDir, "t1", T0 + 2000);
    const blocks = join(dataDir, "t1", "blocks");
    renameSync(join(blocks, a.ulid), join(blocks, `${a.ulid}.tmp`));
    renameSync(join(blocks, b.ulid), join(blocks, `${b.ulid}.corrupt`));
    writeFileSync(join(blocks, bad.ulid, "meta.json"), "{ not json");
    const ok = await blockAt(dataDir, "t1", T0 + 3000);
    const c = Catalog.open(dataDir, { log });
    try {
      expect(ulids(c)).toEqual([ok.ulid]);
      expect(logs.some((l) => l.includes(`skipping block t1/${bad.ulid}`))).toBe(true);
    } finally {
      c.close();
    }
  });
});

describe("damage", () => {
  /** A catalog of three blocks in two tenants, closed; returns its rows. */
  async function populated() {
    await blockAt(dataDir, "t1", T0);
    await blockAt(dataDir, "t1", T0 + 1000);
    await blockAt(dataDir, "t2", T0);
    const c = Catalog.open(dataDir, { log });
    const rows = c.list();
    c.close();
    expect(rows.length).toBe(3);
    logs = [];
    return rows;
  }
  const path = () => join(dataDir, CATALOG_FILE);

  test("garbage instead of a database is rebuilt at open, with a log line", async () => {
    const rows = await populated();
    writeFileSync(path(), Buffer.alloc(8192, 0x5a));
    const c = Catalog.open(dataDir, { log });
    try {
      expect(c.list()).toEqual(rows);
      expect(logs.some((l) => l.includes("was unreadable") && l.includes("rebuilt"))).toBe(true);
    } finally {
      c.close();
    }
  });

  test("a damaged page is found by the integrity check and rebuilt", async () => {
    const rows = await populated();
    const bytes = readFileSync(path());
    expect(bytes.length).toBeGreaterThan(4096);
    bytes.fill(0xff, 4096, bytes.length); // every page after the header page
    writeFileSync(path(), bytes);
    const c = Catalog.open(dataDir, { log });
    try {
      expect(c.list()).toEqual(rows);
      expect(logs.some((l) => l.includes("rebuilt"))).toBe(true);
    } finally {
      c.close();
    }
  });

  test("a missing file is rebuilt, and a stale -wal beside it is not replayed into the new one", async () => {
    const rows = await populated();
    rmSync(path());
    writeFileSync(path() + "-wal", Buffer.alloc(4096, 7));
    const c = Catalog.open(dataDir, { log });
    try {
      expect(c.list()).toEqual(rows);
      expect(logs.some((l) => l.includes("was missing") && l.includes("3 blocks"))).toBe(true);
    } finally {
      c.close();
    }
  });

  test("a catalog of another schema version is rebuilt", async () => {
    const rows = await populated();
    const db = new Database(path());
    db.run("PRAGMA user_version = 99");
    db.close();
    const c = Catalog.open(dataDir, { log });
    try {
      expect(c.list()).toEqual(rows);
      expect(logs.some((l) => l.includes("schema version 99"))).toBe(true);
    } finally {
      c.close();
    }
  });

  test("a row that no longer parses is ignored, and the tenant rereads that block's meta.json", async () => {
    const rows = await populated();
    const db = new Database(path());
    db.run("UPDATE blocks SET meta = '{broken' WHERE ulid = ?", [rows[0].ulid]);
    db.close();
    const c = Catalog.open(dataDir, { log });
    try {
      expect(ulids(c, "t1")).toEqual([rows[1].ulid]);
      const { db: t1, stats } = await openDB(c);
      expect(stats.metasRead).toBe(1);
      expect(t1.blockMetas().map((m) => m.ulid)).toEqual([rows[0].ulid, rows[1].ulid]);
      await t1.close();
      expect(c.list()).toEqual(rows);
    } finally {
      c.close();
    }
  });
});

describe("TenantDB start-up", () => {
  test("takes metas from the catalog when it agrees with the directory; mends it when it does not", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const b = await blockAt(dataDir, "t1", T0 + 1000);
    const c = Catalog.open(dataDir, { log });
    try {
      let { db, stats } = await openDB(c);
      expect(stats).toMatchObject({ blocks: 2, metasRead: 0 });
      await db.close();

      // Behind the catalog's back: one block added, one deleted, one leftover .tmp.
      const added = await blockAt(dataDir, "t1", T0 + 2000);
      rmSync(join(dataDir, "t1", "blocks", a.ulid), { recursive: true });
      mkdirSync(join(dataDir, "t1", "blocks", "01J00000000000000000000000.tmp"));
      logs = [];
      ({ db, stats } = await openDB(c));
      expect(stats).toMatchObject({ blocks: 2, metasRead: 1 });
      expect(db.blockMetas().map((m) => m.ulid)).toEqual([b.ulid, added.ulid]);
      expect(ulids(c, "t1")).toEqual([b.ulid, added.ulid]);
      expect(logs.some((l) => l.includes("1 added, 1 dropped"))).toBe(true);
      await db.close();

      // In agreement again: nothing is read.
      ({ db, stats } = await openDB(c));
      expect(stats.metasRead).toBe(0);
      await db.close();
    } finally {
      c.close();
    }
  });

  test("a block the catalog knows opens without its meta.json being read", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const c = Catalog.open(dataDir, { log });
    try {
      // Proof that the file is not read: it is gone, yet the block opens (queries find it damaged).
      rmSync(join(dataDir, "t1", "blocks", a.ulid, "meta.json"));
      const { db, stats } = await openDB(c);
      expect(stats).toMatchObject({ blocks: 1, metasRead: 0, quarantined: 0 });
      expect(db.blockMetas()).toEqual([a]);
      await db.close();
    } finally {
      c.close();
    }
  });

  test("an unreadable block unknown to the catalog is quarantined and stays out of it", async () => {
    const a = await blockAt(dataDir, "t1", T0);
    const c = Catalog.open(dataDir, { log });
    try {
      const bad = await blockAt(dataDir, "t1", T0 + 1000);
      writeFileSync(join(dataDir, "t1", "blocks", bad.ulid, "meta.json"), "[]");
      const { db, stats } = await openDB(c);
      expect(stats).toMatchObject({ blocks: 1, quarantined: 1 });
      expect(existsSync(join(dataDir, "t1", "blocks", `${bad.ulid}.corrupt`))).toBe(true);
      expect(ulids(c)).toEqual([a.ulid]);
      await db.close();
    } finally {
      c.close();
    }
  });

  test("a block quarantined while serving is dropped from the catalog", async () => {
    const c = Catalog.open(dataDir, { log });
    try {
      const { db } = await openDB(c);
      await db.append("t1", [{ labels: labels("api"), profile: cpuProfile({ "main;work": 10 }, T0) }]);
      await db.cut();
      const [m] = db.blockMetas();
      expect(ulids(c)).toEqual([m.ulid]);
      writeFileSync(join(db.blocksDir, m.ulid, "profiles.parquet"), "short");
      const q = { profileTypeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", matchers: [], start: 0, end: 0 };
      for (const r of db.readers()) await r.selectMergeTree(q);
      for (let i = 0; i < 50 && db.blockCount() > 0; i++) await Bun.sleep(10);
      expect(db.blockCount()).toBe(0);
      expect(ulids(c)).toEqual([]);
      await db.close();
    } finally {
      c.close();
    }
  });
});
