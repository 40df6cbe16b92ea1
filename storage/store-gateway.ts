// The blocks that live in a bucket, served as ProfileReaders: sync() lists every tenant's
// meta.json files; a block is fetched into the local BlockCache on the first query that overlaps it.

import { bucketBlockPrefix, type BlockCache } from "./block/block-cache.ts";
import { BlockCorruptError, isUlid, META_FILE, type BlockMeta } from "./block/meta.ts";
import { BlockReader } from "./block/reader.ts";
import { type Bucket, NotFoundError } from "./bucket/bucket.ts";
import { mergedProfileShell, type ProfileReader, type TimeRange } from "./head/read.ts";
import { Tree } from "./model/tree.ts";
import type { RangeCache } from "./bucket/range-cache.ts";
import { supersededBlocks } from "./tenant-db.ts";

export interface StoreGatewayOptions {
  log?: (msg: string) => void;
  /**
   * When given, profiles.parquet is read from the bucket by range through this cache instead of
   * being downloaded (open the BlockCache with `remoteFiles` holding PROFILES_FILE to match).
   */
  ranges?: RangeCache;
  /** meta.json files read at once by sync() (default 8). */
  syncConcurrency?: number;
}

export interface GatewaySyncResult {
  /** Blocks served after the sync, over all tenants. */
  blocks: number;
  added: string[];
  removed: string[];
}

interface RemoteBlock {
  tenant: string;
  meta: BlockMeta;
  /** The lazy reader handed to queries. */
  reader: ProfileReader;
  /** The block opened from the cache, while the cache keeps it. */
  open: Promise<BlockReader> | null;
  /** Unreadable (damaged in the bucket): answers as empty from then on, like a quarantined local block. */
  broken: boolean;
}

/** `<tenant>/blocks/<ULID>/meta.json` */
const META_KEY = /^([^/]+)\/blocks\/([^/]+)\/meta\.json$/;

export class StoreGateway {
  /** tenant → ULID → block, every block with a meta.json in the bucket. */
  private blocks = new Map<string, Map<string, RemoteBlock>>();
  /** tenant → the blocks queries read: all but those a compacted block supersedes. */
  private served = new Map<string, RemoteBlock[]>();
  /** `<tenant>/<ULID>` of metas that could not be used; not read again on every sync. */
  private readonly invalid = new Set<string>();
  /** Blocks gone from the bucket whose cached copy a query still uses: closed when the cache lets go. */
  private readonly retiring = new Map<string, RemoteBlock>();
  private syncing: Promise<GatewaySyncResult> | null = null;
  private readonly log: (msg: string) => void;

  constructor(
    private readonly bucket: Bucket,
    private readonly cache: BlockCache,
    private readonly opts: StoreGatewayOptions = {},
  ) {
    this.log = opts.log ?? ((m) => console.log(m));
    // An evicted block's files are gone: close its reader, a later query opens the fresh download.
    cache.onEvict((tenant, ulid) => {
      const b = this.blocks.get(tenant)?.get(ulid) ?? this.retiring.get(`${tenant}/${ulid}`);
      this.retiring.delete(`${tenant}/${ulid}`);
      if (b) this.closeBlock(b);
    });
  }

  /** Tenants with at least one block in the bucket. */
  tenants(): string[] {
    return [...this.served.keys()].sort();
  }

  /**
   * Whether a block is served from the bucket: the ingester should see this before it drops its
   * local copy, or queries would miss the block until the next sync.
   */
  has(tenant: string, ulid: string): boolean {
    return (this.served.get(tenant) ?? []).some((b) => b.meta.ulid === ulid);
  }

  /** Metas of the blocks served for a tenant. */
  metas(tenant: string): BlockMeta[] {
    return (this.served.get(tenant) ?? []).map((b) => b.meta);
  }

  /** Metas of every block in the bucket for a tenant, superseded ones included. */
  allMetas(tenant: string): BlockMeta[] {
    return [...(this.blocks.get(tenant)?.values() ?? [])].map((b) => b.meta);
  }

  /** Tenants with any block in the bucket, served or superseded. */
  allTenants(): string[] {
    return [...this.blocks.keys()].sort();
  }

  /**
   * Readers of a tenant's blocks in the bucket. `exclude` holds the ULIDs, and compaction
   * sources, of blocks the caller serves itself: a bucket block whose ULID, or every one of whose
   * sources, is in it is left out, so nothing is counted twice.
   */
  readers(tenant: string, exclude?: Set<string>): ProfileReader[] {
    const out: ProfileReader[] = [];
    for (const b of this.served.get(tenant) ?? []) {
      if (exclude && (exclude.has(b.meta.ulid) || b.meta.compaction.sources.every((s) => exclude.has(s)))) continue;
      out.push(b.reader);
    }
    return out;
  }

  /**
   * Refreshes the list of blocks from the bucket: new blocks appear, deleted ones disappear (and
   * leave the cache). Concurrent calls share one listing. If the listing fails, the old list stays.
   */
  sync(): Promise<GatewaySyncResult> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = null));
    return this.syncing;
  }

  /** Closes the open blocks; the cache keeps their files for the next start. */
  async close(): Promise<void> {
    await this.syncing?.catch(() => {});
    for (const tenant of this.blocks.values()) for (const b of tenant.values()) this.closeBlock(b);
    for (const b of this.retiring.values()) this.closeBlock(b);
  }

  private async syncOnce(): Promise<GatewaySyncResult> {
    // Recursive: S3 stores (s3rver among them) need not report "directories" with nothing directly inside.
    const listed = new Map<string, Set<string>>();
    for await (const key of this.bucket.list("", { recursive: true })) {
      const m = META_KEY.exec(key);
      if (!m || !isUlid(m[2])) continue;
      let set = listed.get(m[1]);
      if (!set) listed.set(m[1], (set = new Set()));
      set.add(m[2]);
    }

    const added: string[] = [];
    const removed: string[] = [];
    const next = new Map<string, Map<string, RemoteBlock>>();
    const toRead: { tenant: string; ulid: string }[] = [];
    for (const [tenant, ulids] of listed) {
      const known = this.blocks.get(tenant);
      const kept = new Map<string, RemoteBlock>();
      for (const ulid of ulids) {
        const b = known?.get(ulid);
        if (b) kept.set(ulid, b);
        else if (!this.invalid.has(`${tenant}/${ulid}`)) toRead.push({ tenant, ulid });
      }
      next.set(tenant, kept);
    }
    for (const key of this.invalid) {
      const [tenant, ulid] = key.split("/");
      if (!listed.get(tenant)?.has(ulid)) this.invalid.delete(key);
    }

    await forEachLimit(toRead, this.opts.syncConcurrency ?? 8, async ({ tenant, ulid }) => {
      const meta = await this.readMeta(tenant, ulid);
      if (!meta) return;
      next.get(tenant)!.set(ulid, this.remoteBlock(tenant, meta));
      added.push(ulid);
    });

    // Swapped in at once, so a query sees the old list or the new one.
    const served = new Map<string, RemoteBlock[]>();
    let count = 0;
    for (const [tenant, blocks] of next) {
      const all = [...blocks.values()];
      const superseded = supersededBlocks(all.map((b) => b.meta));
      const list = all.filter((b) => !superseded.has(b.meta.ulid)).sort((a, b) => a.meta.minTime - b.meta.minTime);
      if (list.length === 0) continue;
      served.set(tenant, list);
      count += list.length;
    }
    const before = this.blocks;
    this.blocks = next;
    this.served = served;
    // Only now, so no query of the new list meets a block whose files are going.
    for (const [tenant, known] of before)
      for (const [ulid, b] of known)
        if (!next.get(tenant)?.has(ulid)) {
          removed.push(ulid);
          // Closed now if nothing uses it, else by the eviction that follows its last release.
          this.opts.ranges?.forget(bucketBlockPrefix(tenant, ulid));
          if (this.cache.remove(tenant, ulid)) this.retiring.set(`${tenant}/${ulid}`, b);
          else this.closeBlock(b);
        }
    return { blocks: count, added: added.sort(), removed: removed.sort() };
  }

  /** A block's meta.json from the bucket, or null when it vanished or is unusable (logged). */
  private async readMeta(tenant: string, ulid: string): Promise<BlockMeta | null> {
    let bytes: Uint8Array;
    try {
      bytes = await this.bucket.get(bucketBlockPrefix(tenant, ulid) + META_FILE);
    } catch (e) {
      // Deleted since the listing; anything else is tried again on the next sync.
      if (!(e instanceof NotFoundError)) this.log(`store-gateway: reading the meta.json of ${tenant}/${ulid} failed: ${message(e)}`);
      return null;
    }
    let meta: unknown;
    try {
      meta = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      meta = undefined;
    }
    const problem = metaProblem(meta, ulid);
    if (problem) {
      this.invalid.add(`${tenant}/${ulid}`);
      this.log(`store-gateway: ignoring block ${tenant}/${ulid} in the bucket: meta.json ${problem}`);
      return null;
    }
    return meta as BlockMeta;
  }

  private remoteBlock(tenant: string, meta: BlockMeta): RemoteBlock {
    const b: RemoteBlock = { tenant, meta, open: null, broken: false, reader: null as unknown as ProfileReader };
    const within = (r: TimeRange) => (r.start === 0 && r.end === 0) || (meta.maxTime >= r.start && meta.minTime <= r.end);
    // Answers `empty` without touching the bucket unless the query's range meets the block.
    const run = async <T>(r: TimeRange, empty: () => T, fn: (block: BlockReader) => Promise<T>): Promise<T> => {
      if (b.broken || !within(r)) return empty();
      let pinned = false;
      try {
        const dir = await this.cache.get(tenant, meta.ulid, this.bucket);
        pinned = true;
        const ranges = this.opts.ranges;
        const prefix = bucketBlockPrefix(tenant, meta.ulid);
        b.open ??= BlockReader.open(dir, ranges ? { remote: (rel, size) => ranges.buffer(this.bucket, prefix + rel, size) } : {});
        return await fn(await b.open);
      } catch (e) {
        // Deleted from the bucket (retention, compaction) since this query took its list of blocks.
        if (e instanceof NotFoundError) return empty();
        // Damage is final: log once and answer empty. Anything else (the bucket unreachable) fails the query.
        if (!(e instanceof BlockCorruptError)) throw e;
        if (!b.broken) this.log(`store-gateway: block ${tenant}/${meta.ulid} is unreadable and left out of queries: ${e.message}`);
        b.broken = true;
        this.closeBlock(b);
        return empty();
      } finally {
        if (pinned) this.cache.release(tenant, meta.ulid);
        if (b.broken) this.cache.remove(tenant, meta.ulid);
      }
    };
    b.reader = {
      profileTypes: (r) => run(r, () => [], (k) => k.profileTypes(r)),
      labelNames: (m, r) => run(r, () => [], (k) => k.labelNames(m, r)),
      labelValues: (n, m, r) => run(r, () => [], (k) => k.labelValues(n, m, r)),
      series: (m, r) => run(r, () => [], (k) => k.series(m, r)),
      selectMergeTree: (q) => run(q, () => new Tree(), (k) => k.selectMergeTree(q)),
      selectMergeProfile: (q) => run(q, () => mergedProfileShell(q), (k) => k.selectMergeProfile(q)),
      selectMergeSpanTree: (q) => run(q, () => new Tree(), (k) => k.selectMergeSpanTree(q)),
      selectSeries: (q) => run(q, () => [], (k) => k.selectSeries(q)),
    };
    return b;
  }

  private closeBlock(b: RemoteBlock): void {
    const open = b.open;
    b.open = null;
    open?.then((r) => r.close(), () => {});
  }
}

/** What is wrong with a meta.json from the bucket, as far as listing and range checks need; full checks run on download. */
function metaProblem(m: unknown, ulid: string): string | null {
  if (typeof m !== "object" || m === null) return "is not a JSON object";
  const meta = m as Partial<BlockMeta>;
  if (meta.ulid !== ulid) return `names block ${JSON.stringify(meta.ulid)}`;
  if (!Number.isSafeInteger(meta.minTime) || !Number.isSafeInteger(meta.maxTime) || meta.minTime! > meta.maxTime!) return "has no valid time range";
  const c = meta.compaction;
  if (!c || !Number.isSafeInteger(c.level) || !Array.isArray(c.sources) || !c.sources.every((s) => typeof s === "string")) return "has no valid compaction";
  if (!Array.isArray(meta.files)) return "has no file list";
  return null;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
