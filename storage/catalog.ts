// The block catalog, data/catalog.sqlite: every tenant's blocks with time range, level, sources,
// size and where each lives. A cache of the meta.json files: rebuilt from them whenever it is lost.

import { Database, type Statement } from "bun:sqlite";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isUlid, readMeta, type BlockMeta } from "./block/meta.ts";

export const CATALOG_FILE = "catalog.sqlite";
/** Bumped when the table changes; a catalog of another version is rebuilt rather than migrated. */
const SCHEMA_VERSION = 1;

export type BlockLocation = "local" | "bucket" | "both";

export interface CatalogBlock {
  tenant: string;
  ulid: string;
  minTime: number;
  maxTime: number;
  level: number;
  sources: string[];
  numSamples: number;
  /** Bytes of the block's files (meta.json aside), as meta.json lists them. */
  bytes: number;
  location: BlockLocation;
  meta: BlockMeta;
}

export interface CatalogOptions {
  log?: (msg: string) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS blocks (
  tenant      TEXT    NOT NULL,
  ulid        TEXT    NOT NULL,
  min_time    INTEGER NOT NULL,
  max_time    INTEGER NOT NULL,
  level       INTEGER NOT NULL,
  sources     TEXT    NOT NULL,
  num_samples INTEGER NOT NULL,
  bytes       INTEGER NOT NULL,
  location    TEXT    NOT NULL CHECK (location IN ('local', 'bucket', 'both')),
  meta        TEXT    NOT NULL,
  PRIMARY KEY (tenant, ulid)
) WITHOUT ROWID;
PRAGMA user_version = ${SCHEMA_VERSION};
`;

const COLUMNS = "tenant, ulid, min_time, max_time, level, sources, num_samples, bytes, location, meta";
const VALUES = "$tenant, $ulid, $min_time, $max_time, $level, $sources, $num_samples, $bytes, $location, $meta";
const UPDATE_META = "min_time = excluded.min_time, max_time = excluded.max_time, level = excluded.level, sources = excluded.sources, num_samples = excluded.num_samples, bytes = excluded.bytes, meta = excluded.meta";

interface Row {
  tenant: string;
  ulid: string;
  min_time: number;
  max_time: number;
  level: number;
  sources: string;
  num_samples: number;
  bytes: number;
  location: BlockLocation;
  meta: string;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Opens the SQLite file in WAL mode: readers never wait for the writer. */
function connect(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  try {
    // The first statement is where a file that is not a database shows itself.
    db.query("PRAGMA journal_mode = WAL").get();
    // A commit lost in a power cut is harmless: start-up reconciles against the directories.
    db.run("PRAGMA synchronous = NORMAL");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Why an opened catalog cannot be trusted, or null when it can. */
function problem(db: Database): string | null {
  const check = db.query("PRAGMA quick_check").values().flat();
  if (check.length !== 1 || check[0] !== "ok") return `integrity check failed: ${check.slice(0, 3).join("; ")}`;
  const version = db.query("PRAGMA user_version").values()[0]?.[0];
  if (version !== SCHEMA_VERSION) return `schema version ${version}, want ${SCHEMA_VERSION}`;
  return null;
}

/** A stale -wal next to a new database file would be replayed into it: remove the companions too. */
function removeDatabase(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}

/** Every finished block under `<dataDir>/<tenant>/blocks/`, read from its meta.json. */
export function scanBlocks(dataDir: string, log: (msg: string) => void = () => {}): { tenant: string; meta: BlockMeta }[] {
  const out: { tenant: string; meta: BlockMeta }[] = [];
  if (!existsSync(dataDir)) return out;
  for (const t of readdirSync(dataDir, { withFileTypes: true })) {
    if (!t.isDirectory()) continue;
    const blocksDir = join(dataDir, t.name, "blocks");
    if (!existsSync(blocksDir)) continue;
    // `<ULID>.tmp` and `<ULID>.corrupt` fail the ULID test: unfinished or quarantined, not blocks.
    for (const name of readdirSync(blocksDir).sort()) {
      if (!isUlid(name)) continue;
      try {
        const meta = readMeta(join(blocksDir, name));
        if (meta.ulid !== name) throw new Error(`meta.json names block ${meta.ulid}`);
        out.push({ tenant: t.name, meta });
      } catch (e) {
        // The tenant's start-up quarantines it; the catalog just leaves it out.
        log(`catalog: skipping block ${t.name}/${name}: ${message(e)}`);
      }
    }
  }
  return out;
}

export class Catalog {
  private readonly stmts: {
    upsert: Statement;
    addLocation: Statement;
    remove: Statement;
    removeIf: Statement;
    demote: Statement;
    setLocation: Statement;
    get: Statement<Row>;
    list: Statement<Row>;
    listTenant: Statement<Row>;
    tenants: Statement<{ tenant: string }>;
  };
  private closed = false;

  private constructor(
    private readonly db: Database,
    /** The file, or ":memory:" when no file could be created (the catalog still works). */
    readonly path: string,
    readonly dataDir: string,
    private readonly log: (msg: string) => void,
  ) {
    db.exec(SCHEMA);
    this.stmts = {
      upsert: db.prepare(`INSERT INTO blocks (${COLUMNS}) VALUES (${VALUES}) ON CONFLICT (tenant, ulid) DO UPDATE SET ${UPDATE_META}, location = excluded.location`),
      addLocation: db.prepare(
        `INSERT INTO blocks (${COLUMNS}) VALUES (${VALUES}) ON CONFLICT (tenant, ulid) DO UPDATE SET ${UPDATE_META}, ` +
          `location = CASE WHEN blocks.location = excluded.location THEN blocks.location ELSE 'both' END`,
      ),
      remove: db.prepare("DELETE FROM blocks WHERE tenant = $tenant AND ulid = $ulid"),
      removeIf: db.prepare("DELETE FROM blocks WHERE tenant = $tenant AND ulid = $ulid AND location = $location"),
      demote: db.prepare("UPDATE blocks SET location = $location WHERE tenant = $tenant AND ulid = $ulid AND location = 'both'"),
      setLocation: db.prepare("UPDATE blocks SET location = $location WHERE tenant = $tenant AND ulid = $ulid"),
      get: db.prepare(`SELECT ${COLUMNS} FROM blocks WHERE tenant = $tenant AND ulid = $ulid`),
      list: db.prepare(`SELECT ${COLUMNS} FROM blocks ORDER BY tenant, ulid`),
      listTenant: db.prepare(`SELECT ${COLUMNS} FROM blocks WHERE tenant = $tenant ORDER BY ulid`),
      tenants: db.prepare("SELECT DISTINCT tenant FROM blocks ORDER BY tenant"),
    };
  }

  /**
   * Opens `<dataDir>/catalog.sqlite`. A missing, corrupt or outdated catalog is replaced by one
   * rebuilt from the blocks' meta.json files, with a log line; opening never fails for it.
   */
  static open(dataDir: string, opts: CatalogOptions = {}): Catalog {
    const log = opts.log ?? ((m: string) => console.log(m));
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, CATALOG_FILE);
    let why: string | null = null;
    if (!existsSync(path)) why = "missing";
    else {
      let db: Database | null = null;
      try {
        db = connect(path);
        why = problem(db);
        if (!why) return new Catalog(db, path, dataDir, log);
      } catch (e) {
        why = `unreadable: ${message(e)}`;
      }
      db?.close();
    }
    removeDatabase(path);
    let catalog: Catalog;
    try {
      catalog = new Catalog(connect(path), path, dataDir, log);
    } catch (e) {
      // A cache is not worth refusing to start over: keep it in memory until the disk is fixed.
      log(`catalog: cannot create ${path} (${message(e)}); keeping the catalog in memory for this run`);
      catalog = new Catalog(new Database(":memory:", { strict: true }), ":memory:", dataDir, log);
    }
    const t0 = performance.now();
    try {
      const n = catalog.rebuild();
      log(`catalog: ${path} was ${why}; rebuilt from the meta.json files: ${n} blocks in ${(performance.now() - t0).toFixed(0)} ms`);
    } catch (e) {
      // Tenants still open: each reads the meta.json files the catalog lacks.
      log(`catalog: ${path} was ${why}; rebuilding it failed: ${message(e)}`);
    }
    return catalog;
  }

  /**
   * Recreates the catalog from `<dataDir>/<tenant>/blocks/<ULID>/meta.json`: every block found is
   * local. What it knew of the bucket is kept (the disk cannot tell): a bucket copy of a block
   * found locally makes it "both". Returns the number of local blocks.
   */
  rebuild(dataDir: string = this.dataDir): number {
    const found = scanBlocks(dataDir, this.log);
    this.transaction(() => {
      const remote = this.list().filter((b) => b.location !== "local");
      this.db.run("DELETE FROM blocks");
      for (const { tenant, meta } of found) this.upsert(tenant, meta, "local");
      for (const b of remote) this.addLocation(b.tenant, b.meta, "bucket");
    });
    return found.length;
  }

  /** Runs `fn` in one transaction: many writes cost one commit. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Records a block with exactly this location (replacing what was known of it). */
  upsert(tenant: string, meta: BlockMeta, location: BlockLocation): void {
    this.stmts.upsert.run(params(tenant, meta, location));
  }

  /** Records that a copy of the block is at `where`, in addition to any copy already known. */
  addLocation(tenant: string, meta: BlockMeta, where: "local" | "bucket"): void {
    this.stmts.addLocation.run(params(tenant, meta, where));
  }

  /** Records that the copy at `where` is gone; the block is forgotten once no copy is left. */
  dropLocation(tenant: string, ulid: string, where: "local" | "bucket"): void {
    this.transaction(() => {
      this.stmts.removeIf.run({ tenant, ulid, location: where });
      this.stmts.demote.run({ tenant, ulid, location: where === "local" ? "bucket" : "local" });
    });
  }

  /**
   * Makes the catalog's bucket copies of `tenant` exactly `metas` (the blocks listed in the
   * bucket): new ones are added, copies no longer there dropped, all in one transaction.
   */
  syncBucket(tenant: string, metas: BlockMeta[]): void {
    const present = new Set(metas.map((m) => m.ulid));
    this.transaction(() => {
      for (const b of this.list(tenant)) if (b.location !== "local" && !present.has(b.ulid)) this.dropLocation(tenant, b.ulid, "bucket");
      for (const m of metas) this.addLocation(tenant, m, "bucket");
    });
  }

  /** Forgets a block wherever it lives. */
  remove(tenant: string, ulid: string): void {
    this.stmts.remove.run({ tenant, ulid });
  }

  setLocation(tenant: string, ulid: string, location: BlockLocation): void {
    this.stmts.setLocation.run({ tenant, ulid, location });
  }

  get(tenant: string, ulid: string): CatalogBlock | null {
    const row = this.stmts.get.get({ tenant, ulid });
    return row ? this.decode(row) : null;
  }

  /** Blocks of one tenant, or of all, ordered by tenant then ULID (so by creation time). */
  list(tenant?: string): CatalogBlock[] {
    const rows = tenant === undefined ? this.stmts.list.all() : this.stmts.listTenant.all({ tenant });
    const out: CatalogBlock[] = [];
    for (const r of rows) {
      const b = this.decode(r);
      if (b) out.push(b);
    }
    return out;
  }

  tenants(): string[] {
    return this.stmts.tenants.all().map((r) => r.tenant);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of Object.values(this.stmts)) s.finalize();
    this.db.close();
  }

  /** A row whose JSON does not parse is left out: the block then counts as unknown and is reread. */
  private decode(r: Row): CatalogBlock | null {
    try {
      return {
        tenant: r.tenant,
        ulid: r.ulid,
        minTime: r.min_time,
        maxTime: r.max_time,
        level: r.level,
        sources: JSON.parse(r.sources),
        numSamples: r.num_samples,
        bytes: r.bytes,
        location: r.location,
        meta: JSON.parse(r.meta),
      };
    } catch (e) {
      this.log(`catalog: ignoring the unreadable row of block ${r.tenant}/${r.ulid}: ${message(e)}`);
      return null;
    }
  }
}

function params(tenant: string, meta: BlockMeta, location: BlockLocation): Row {
  return {
    tenant,
    ulid: meta.ulid,
    min_time: meta.minTime,
    max_time: meta.maxTime,
    level: meta.compaction.level,
    sources: JSON.stringify(meta.compaction.sources),
    num_samples: meta.stats.numSamples,
    bytes: meta.files.reduce((sum, f) => sum + f.sizeBytes, 0),
    location,
    meta: JSON.stringify(meta),
  };
}
