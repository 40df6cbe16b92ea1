// One tenant's storage: a head behind its WAL, and the immutable blocks the head is cut into.
// Owns the crash-safety ordering: a block is durable before the WAL that fed it is truncated, and
// start-up skips WAL segments a block already holds, so nothing is lost or counted twice. Keeps
// the block catalog in step with the blocks it serves.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { Catalog } from "./catalog.ts";
import { quarantinable } from "./block/quarantine.ts";
import { BlockReader } from "./block/reader.ts";
import type { BlockMeta } from "./block/meta.ts";
import { writeBlock } from "./block/writer.ts";
import { Head } from "./head/head.ts";
import { HeadReader, type ProfileReader } from "./head/read.ts";
import { decodeRecords, encodeRecords } from "./head/record.ts";
import { failpoint } from "./failpoint.ts";
import { WAL } from "./head/wal.ts";
import type { Labels } from "./model/labels.ts";
import type { Profile } from "./model/profile.ts";

export interface TenantDBOptions {
  walFsync: "always" | "none";
  walSegmentBytes: number;
  log?: (msg: string) => void;
  /**
   * The data dir's block catalog: start-up takes block metas from it instead of reading every
   * meta.json, and every block added or retired is recorded in it. Without one, metas are read.
   */
  catalog?: Catalog;
}

export interface AppendItem {
  labels: Labels;
  profile: Profile;
}

/** A head plus the appends still on their way into it (acknowledged by the WAL, not yet applied). */
interface LiveHead {
  head: Head;
  reader: HeadReader;
  createdAt: number;
  inflight: number;
  drained: (() => void) | null;
  /** WAL segments holding this head's records: [startSegment, endSegment]. */
  startSegment: number;
  endSegment: number;
}

export interface OpenStats {
  blocks: number;
  quarantined: number;
  /** Blocks whose meta.json was read because the catalog did not know them. */
  metasRead: number;
  replayedRecords: number;
  replayedBytes: number;
  skippedSegments: number;
}

/** A block in the queried set, with the queries running on it (it is deleted only when idle). */
interface BlockEntry {
  block: BlockReader;
  reader: ProfileReader;
  inflight: number;
  idle: (() => void) | null;
}

/**
 * Blocks made redundant by another block: a compacted block whose sources include theirs (at a
 * higher level). Both exist only if a crash fell between a compaction's rename and the deletion
 * of its sources; querying both would count profiles twice.
 */
export function supersededBlocks(metas: BlockMeta[]): Set<string> {
  const out = new Set<string>();
  for (const b of metas) {
    if (b.compaction.level <= 1) continue;
    const covers = new Set(b.compaction.sources);
    for (const a of metas) {
      if (a === b || a.compaction.level >= b.compaction.level) continue;
      if (a.compaction.sources.every((src) => covers.has(src))) out.add(a.ulid);
    }
  }
  return out;
}

function newLiveHead(startSegment: number, head = new Head()): LiveHead {
  return { head, reader: new HeadReader(head), createdAt: Date.now(), inflight: 0, drained: null, startSegment, endSegment: Infinity };
}

export class TenantDB {
  private live: LiveHead = newLiveHead(1);
  /** Heads being written out: still queried until their block is open. */
  private flushing: LiveHead[] = [];
  private blocks: BlockEntry[] = [];
  private cutting: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly wal: WAL,
    private readonly log: (msg: string) => void,
    private readonly catalog: Catalog | null,
  ) {}

  /** The tenant's name: the catalog's key, as in `<dataDir>/<tenant>/`. */
  get tenant(): string {
    return basename(this.dir);
  }

  get walDir(): string {
    return join(this.dir, "wal");
  }

  get blocksDir(): string {
    return join(this.dir, "blocks");
  }

  /**
   * Opens a tenant directory: drops leftover `.tmp` blocks, quarantines unreadable ones, deletes
   * WAL segments a block already holds, and replays the rest into the head. Block metas come from
   * the catalog; only blocks it does not know have their meta.json read (and it learns them).
   */
  static async open(dir: string, opts: TenantDBOptions): Promise<{ db: TenantDB; stats: OpenStats }> {
    const log = opts.log ?? ((m: string) => console.log(m));
    const catalog = opts.catalog ?? null;
    const tenant = basename(dir);
    const blocksDir = join(dir, "blocks");
    mkdirSync(blocksDir, { recursive: true });
    const stats: OpenStats = { blocks: 0, quarantined: 0, metasRead: 0, replayedRecords: 0, replayedBytes: 0, skippedSegments: 0 };
    const known = new Map<string, BlockMeta>();
    if (catalog) {
      try {
        for (const b of catalog.list(tenant)) if (b.location !== "bucket") known.set(b.ulid, b.meta);
      } catch (e) {
        log(`tenant ${dir}: the block catalog cannot be read, reading every meta.json: ${e instanceof Error ? e.message : e}`);
      }
    }
    const blocks: BlockReader[] = [];
    let through = 0;
    for (const name of readdirSync(blocksDir).sort()) {
      const path = join(blocksDir, name);
      if (name.endsWith(".tmp")) {
        log(`tenant ${dir}: removing unfinished block ${name} (a write was interrupted)`);
        rmSync(path, { recursive: true, force: true });
        continue;
      }
      if (name.endsWith(".corrupt")) continue;
      try {
        const meta = known.get(name);
        const b = meta ? BlockReader.fromMeta(path, meta) : await BlockReader.open(path);
        if (!meta) stats.metasRead++;
        blocks.push(b);
        through = Math.max(through, b.meta.wal?.throughSegment ?? 0);
      } catch (e) {
        log(`tenant ${dir}: block ${name} is unreadable, quarantined as ${name}.corrupt: ${e instanceof Error ? e.message : e}`);
        renameSync(path, `${path}.corrupt`);
        stats.quarantined++;
      }
    }
    const superseded = supersededBlocks(blocks.map((b) => b.meta));
    for (const b of blocks.filter((x) => superseded.has(x.meta.ulid))) {
      log(`tenant ${dir}: removing block ${b.meta.ulid}: a compacted block already holds its profiles`);
      b.close();
      rmSync(b.dir, { recursive: true, force: true });
    }
    blocks.splice(0, blocks.length, ...blocks.filter((x) => !superseded.has(x.meta.ulid)));
    stats.blocks = blocks.length;
    if (catalog) reconcileCatalog(catalog, tenant, known, blocks, log);

    const wal = await WAL.open(join(dir, "wal"), { fsync: opts.walFsync, segmentBytes: opts.walSegmentBytes, log });
    // Segments up to `through` are inside a durable block; a crash after the block's rename but
    // before the truncation leaves them behind, and replaying them would count them twice.
    if (through > 0) stats.skippedSegments = await wal.truncateBefore(through + 1);
    const db = new TenantDB(dir, wal, log, catalog);
    for (const b of blocks) db.addBlock(b);
    db.live = newLiveHead(wal.segments()[0] ?? 1);
    const r = await wal.replay((payload) => {
      try {
        for (const rec of decodeRecords(payload)) db.live.head.append(rec.labels, rec.profile);
      } catch (e) {
        log(`tenant ${dir}: skipping an unreadable WAL record: ${e instanceof Error ? e.message : e}`);
      }
    });
    stats.replayedRecords = r.records;
    stats.replayedBytes = r.bytes;
    return { db, stats };
  }

  /** Appends durably: resolves once the records are in the WAL (and applied to the head). */
  async append(tenant: string, items: AppendItem[]): Promise<void> {
    if (this.closed) throw new Error("tenant storage is closed");
    // The head is taken now, in the same tick the WAL record is queued: a cut that swaps heads
    // afterwards also cuts the WAL after this record, so record and head stay on the same side.
    const live = this.live;
    live.inflight++;
    try {
      await this.wal.append(encodeRecords(items.map((it) => ({ tenant, labels: it.labels, profile: it.profile }))));
      for (const it of items) live.head.append(it.labels, it.profile);
    } finally {
      if (--live.inflight === 0 && live.drained) live.drained();
    }
  }

  headStats() {
    return this.live.head.stats();
  }

  headAgeMs(now = Date.now()): number {
    return now - this.live.createdAt;
  }

  blockCount(): number {
    return this.blocks.length;
  }

  /** Every store to query: the head, heads being written, blocks. */
  readers(): ProfileReader[] {
    return [this.live.reader, ...this.flushing.map((h) => h.reader), ...this.blocks.map((b) => b.reader)];
  }

  /** Adds a block to the queried set; one that fails to read is moved aside as `<ULID>.corrupt`. */
  private addBlock(block: BlockReader): BlockEntry {
    const entry: BlockEntry = { block, reader: block, inflight: 0, idle: null };
    const guarded = quarantinable(block, (e) => {
      this.log(`tenant ${this.dir}: block ${block.meta.ulid} failed to read and is quarantined as ${block.meta.ulid}.corrupt: ${e instanceof Error ? e.message : e}`);
      void this.retire([entry], (path) => renameSync(path, `${path}.corrupt`));
    });
    // Count queries in flight so a block is closed and deleted only once nothing reads it.
    const track = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
      entry.inflight++;
      try {
        return await fn(...a);
      } finally {
        if (--entry.inflight === 0 && entry.idle) entry.idle();
      }
    };
    entry.reader = {
      profileTypes: track(guarded.profileTypes),
      labelNames: track(guarded.labelNames),
      labelValues: track(guarded.labelValues),
      series: track(guarded.series),
      selectMergeTree: track(guarded.selectMergeTree),
      selectMergeProfile: track(guarded.selectMergeProfile),
      selectMergeSpanTree: track(guarded.selectMergeSpanTree),
      selectSeries: track(guarded.selectSeries),
    };
    this.blocks.push(entry);
    return entry;
  }

  /** Adds a block just written (a cut, a compaction, a rewrite) and records it in the catalog. */
  private addNewBlock(block: BlockReader): void {
    this.addBlock(block);
    this.recordInCatalog(`adding block ${block.meta.ulid}`, (c) => c.addLocation(this.tenant, block.meta, "local"));
  }

  /**
   * Applies a change to the catalog. A failure is logged, not thrown: the catalog is a cache, and
   * start-up mends whatever it missed by comparing it with the blocks directory.
   */
  private recordInCatalog(what: string, fn: (c: Catalog) => void): void {
    if (!this.catalog) return;
    try {
      this.catalog.transaction(() => fn(this.catalog!));
    } catch (e) {
      this.log(`tenant ${this.dir}: the block catalog missed an update (${what}); start-up will mend it: ${e instanceof Error ? e.message : e}`);
    }
  }

  /** The blocks currently served (read through directly, without quarantine or tracking). */
  blockEntries(): BlockReader[] {
    return this.blocks.map((b) => b.block);
  }

  /** Metas of the blocks currently served. */
  blockMetas(): BlockMeta[] {
    return this.blocks.map((b) => b.block.meta);
  }

  /**
   * Takes blocks out of the queried set, waits for the queries reading them, closes them and
   * disposes of their directories (deleted by default).
   */
  private async retire(entries: BlockEntry[], dispose: (path: string) => void = (path) => rmSync(path, { recursive: true, force: true })) {
    const gone = new Set(entries);
    this.blocks = this.blocks.filter((b) => !gone.has(b));
    // Forgotten before the directories go: a crash in between leaves a directory the catalog lacks,
    // which start-up reads again (and retention or quarantine then retires it again).
    this.recordInCatalog("retiring blocks", (c) => {
      for (const e of entries) c.dropLocation(this.tenant, e.block.meta.ulid, "local");
    });
    for (const e of entries) {
      if (e.inflight > 0) await new Promise<void>((resolve) => (e.idle = resolve));
      e.block.close();
      try {
        dispose(e.block.dir);
      } catch (err) {
        this.log(`tenant ${this.dir}: could not dispose of block ${e.block.meta.ulid}: ${err instanceof Error ? err.message : err}`);
      }
    }
  }

  /** Deletes blocks by ULID (retention); queries already reading them finish first. */
  async deleteBlocks(ulids: string[]): Promise<void> {
    const set = new Set(ulids);
    await this.retire(this.blocks.filter((b) => set.has(b.block.meta.ulid)));
  }

  /**
   * Serves the block at `newDir` in place of the blocks `replaced` (a compaction or a rewrite):
   * the swap is one step for queries; the old directories are deleted once nothing reads them.
   */
  async replaceBlocks(replaced: string[], newDir: string | null): Promise<void> {
    const set = new Set(replaced);
    const old = this.blocks.filter((b) => set.has(b.block.meta.ulid));
    // A source deleted meanwhile (retention, a corrupt block) must not come back inside the merge.
    if (old.length !== set.size) {
      if (newDir) rmSync(newDir, { recursive: true, force: true });
      throw new Error(`blocks ${replaced.filter((u) => !old.some((b) => b.block.meta.ulid === u)).join(", ")} are no longer served; the merged block is discarded`);
    }
    if (newDir) this.addNewBlock(await BlockReader.open(newDir));
    await this.retire(old);
  }

  /**
   * Cuts the head into a block: swaps in a fresh head, writes the old one to `blocks/`, opens it,
   * then truncates the WAL it came from. Cuts run one at a time; an empty head is left alone. A
   * head whose block failed to write stays queryable, keeps its WAL segments, and is retried
   * first on the next cut, so blocks are always written in WAL order.
   */
  cut(): Promise<void> {
    const next = this.cutting.then(() => this.cutOnce());
    this.cutting = next.catch(() => {});
    return next;
  }

  private async cutOnce(): Promise<void> {
    const old = this.live;
    if (old.head.rows > 0 || old.inflight > 0) {
      this.live = newLiveHead(Infinity, old.head.successor());
      this.flushing.push(old);
      // Queued behind every append already given to the WAL: those land in earlier segments.
      const segment = await this.wal.cutSegment();
      old.endSegment = segment - 1;
      this.live.startSegment = segment;
      if (old.inflight > 0) await new Promise<void>((resolve) => (old.drained = resolve));
    }
    while (this.flushing.length > 0) {
      const h = this.flushing[0];
      if (h.head.rows > 0) {
        try {
          const meta = await writeBlock(h.head, this.blocksDir, { walThroughSegment: h.endSegment });
          // Swap the block in and the head out in one step: no query sees both or neither.
          this.addNewBlock(await BlockReader.open(join(this.blocksDir, meta.ulid)));
        } catch (e) {
          this.log(`tenant ${this.dir}: writing a block failed; the data stays in the head and the WAL: ${e instanceof Error ? e.message : e}`);
          throw e;
        }
      }
      this.flushing.shift();
    }
    failpoint("block-before-wal-truncate");
    await this.wal.truncateBefore(this.live.startSegment);
  }

  /** Syncs the WAL (whatever the fsync policy). */
  async syncWal(): Promise<void> {
    await this.wal.flush();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.cutting;
    await this.wal.close();
    for (const b of this.blocks) b.block.close();
  }
}

/**
 * Makes the catalog's local blocks of `tenant` those served after start-up: blocks it did not
 * know are added, blocks gone from disk (deleted, quarantined, superseded) are dropped. One
 * transaction; a failure is logged only, since the next start-up compares again.
 */
function reconcileCatalog(catalog: Catalog, tenant: string, known: Map<string, BlockMeta>, served: BlockReader[], log: (msg: string) => void): void {
  const servedUlids = new Set(served.map((b) => b.meta.ulid));
  const added = served.filter((b) => !known.has(b.meta.ulid));
  const dropped = [...known.keys()].filter((u) => !servedUlids.has(u));
  if (added.length === 0 && dropped.length === 0) return;
  try {
    catalog.transaction(() => {
      for (const b of added) catalog.addLocation(tenant, b.meta, "local");
      for (const u of dropped) catalog.dropLocation(tenant, u, "local");
    });
    log(`tenant ${tenant}: block catalog brought in line with the blocks directory: ${added.length} added, ${dropped.length} dropped`);
  } catch (e) {
    log(`tenant ${tenant}: could not update the block catalog: ${e instanceof Error ? e.message : e}`);
  }
}

export function tenantDirs(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && (existsSync(join(dataDir, d.name, "wal")) || existsSync(join(dataDir, d.name, "blocks"))))
    .map((d) => d.name);
}
