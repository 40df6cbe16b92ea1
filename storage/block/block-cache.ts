// A bounded local directory of blocks fetched from a bucket, downloaded by ranged reads into a temp
// dir and renamed into place, evicted least recently used, never while in use. Files named in
// `remoteFiles` (the big profiles.parquet) stay in the bucket: queries read just the ranges they need.

import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type Bucket, NotFoundError } from "../bucket/bucket.ts";
import { fsyncDir, writeDurable } from "../durable.ts";
import { BlockCorruptError, isUlid, META_FILE, readMeta, type BlockMeta } from "./meta.ts";

/** Where a tenant's blocks live in a bucket: `<tenant>/blocks/`. */
export function tenantBlocksPrefix(tenant: string): string {
  if (tenant === "" || tenant.includes("/") || tenant === "." || tenant === "..") throw new TypeError(`unusable tenant name ${JSON.stringify(tenant)}`);
  return `${tenant}/blocks/`;
}

/** Where one block's files live in a bucket: `<tenant>/blocks/<ULID>/`, mirroring the local layout. */
export function bucketBlockPrefix(tenant: string, ulid: string): string {
  return `${tenantBlocksPrefix(tenant)}${ulid}/`;
}

export interface BlockCacheOptions {
  /** The cache evicts unused blocks to stay under this; blocks in use may push it past for a while. */
  maxBytes: number;
  /** Downloads running at once; a wide query must not open a connection per block (default 4). */
  downloadConcurrency?: number;
  /** Bytes per ranged read while downloading, so a big file never sits in memory whole (default 8 MiB). */
  chunkBytes?: number;
  /** Files not downloaded: readers fetch their byte ranges from the bucket on demand. */
  remoteFiles?: ReadonlySet<string>;
  log?: (msg: string) => void;
}

interface Entry {
  tenant: string;
  ulid: string;
  dir: string;
  bytes: number;
  /** Higher is more recent. */
  lastUsed: number;
  pins: number;
  /** Deleted from the bucket: removed from the cache once nothing uses it. */
  doomed: boolean;
}

interface Loading {
  promise: Promise<Entry>;
  /** get() calls waiting on this download; each gets its pin when the entry appears. */
  waiters: number;
}

const TENANTS = "tenants";
const TMP = "tmp";

export class BlockCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Loading>();
  /** Downloads whose block was removed meanwhile: they arrive doomed. */
  private readonly doomedLoads = new Set<string>();
  private readonly evictListeners: ((tenant: string, ulid: string) => void)[] = [];
  private tick = 0;
  private tmpSeq = 0;
  private running = 0;
  private readonly queued: (() => void)[] = [];
  private readonly log: (msg: string) => void;

  /** Bytes of the cached blocks. */
  bytes = 0;
  hits = 0;
  misses = 0;
  evictions = 0;
  downloadedBytes = 0;

  private constructor(
    readonly dir: string,
    private readonly opts: BlockCacheOptions,
  ) {
    this.log = opts.log ?? ((m) => console.log(m));
  }

  /**
   * Opens (creating) the cache directory: unfinished downloads are removed, complete blocks are
   * kept (least recently fetched evicted first), damaged ones deleted.
   */
  static async open(dir: string, opts: BlockCacheOptions): Promise<BlockCache> {
    if (!(opts.maxBytes >= 0)) throw new RangeError(`block cache: maxBytes must be >= 0, got ${opts.maxBytes}`);
    const cache = new BlockCache(dir, opts);
    rmSync(join(dir, TMP), { recursive: true, force: true });
    mkdirSync(join(dir, TMP), { recursive: true });
    mkdirSync(join(dir, TENANTS), { recursive: true });
    const found: Entry[] = [];
    for (const t of readdirSync(join(dir, TENANTS), { withFileTypes: true })) {
      if (!t.isDirectory()) continue;
      const tenant = t.name;
      for (const ulid of readdirSync(join(dir, TENANTS, tenant))) {
        const blockDir = join(dir, TENANTS, tenant, ulid);
        try {
          const { bytes } = checkBlock(blockDir, ulid, opts.remoteFiles);
          found.push({ tenant, ulid, dir: blockDir, bytes, lastUsed: statSync(blockDir).mtimeMs, pins: 0, doomed: false });
        } catch (e) {
          cache.log(`block cache: removing ${blockDir}: ${e instanceof Error ? e.message : e}`);
          rmSync(blockDir, { recursive: true, force: true });
        }
      }
    }
    // The fetch time (the directory's mtime) stands in for last use across a restart.
    found.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of found) {
      e.lastUsed = ++cache.tick;
      cache.entries.set(keyOf(e.tenant, e.ulid), e);
      cache.bytes += e.bytes;
    }
    cache.evict();
    return cache;
  }

  /** Number of cached blocks. */
  get size(): number {
    return this.entries.size;
  }

  has(tenant: string, ulid: string): boolean {
    return this.entries.has(keyOf(tenant, ulid));
  }

  /** Called when a block leaves the cache, so whoever holds files of it open can close them. */
  onEvict(fn: (tenant: string, ulid: string) => void): void {
    this.evictListeners.push(fn);
  }

  /**
   * The local directory (named by the ULID) of a block, downloaded from `bucket` first unless
   * cached. The block stays pinned, safe from eviction, until a matching release().
   */
  async get(tenant: string, ulid: string, bucket: Bucket): Promise<string> {
    if (!isUlid(ulid)) throw new TypeError(`not a block ULID: ${JSON.stringify(ulid)}`);
    const key = keyOf(tenant, ulid);
    const cached = this.entries.get(key);
    if (cached) {
      cached.pins++;
      cached.lastUsed = ++this.tick;
      this.hits++;
      return cached.dir;
    }
    let l = this.loading.get(key);
    if (!l) {
      this.misses++;
      const loading: Loading = { waiters: 0, promise: null as unknown as Promise<Entry> };
      loading.promise = this.download(tenant, ulid, bucket, loading).finally(() => this.loading.delete(key));
      this.loading.set(key, (l = loading));
    }
    l.waiters++;
    return (await l.promise).dir;
  }

  /** Unpins a block get() returned; an unpinned block may be evicted. */
  release(tenant: string, ulid: string): void {
    const e = this.entries.get(keyOf(tenant, ulid));
    if (!e || e.pins === 0) throw new Error(`block cache: release of ${tenant}/${ulid}, which is not pinned`);
    e.pins--;
    if (e.pins === 0 && e.doomed) this.drop(e);
    this.evict();
  }

  /**
   * Removes a block (deleted from the bucket) now, or once its last user releases it. Returns
   * true when that is still to come: the block is in use, or being downloaded.
   */
  remove(tenant: string, ulid: string): boolean {
    const key = keyOf(tenant, ulid);
    const e = this.entries.get(key);
    if (!e) {
      if (!this.loading.has(key)) return false;
      this.doomedLoads.add(key);
      return true;
    }
    e.doomed = true;
    if (e.pins === 0) this.drop(e);
    return e.pins > 0;
  }

  /** Downloads a block into a temp dir (meta.json last), renames it into place and pins it for every waiter. */
  private async download(tenant: string, ulid: string, bucket: Bucket, loading: Loading): Promise<Entry> {
    const prefix = bucketBlockPrefix(tenant, ulid);
    const tmp = join(this.dir, TMP, `${ulid}.${process.pid}.${++this.tmpSeq}`);
    await this.slot();
    try {
      mkdirSync(tmp);
      const metaBytes = await bucket.get(prefix + META_FILE);
      let meta: BlockMeta;
      try {
        meta = JSON.parse(new TextDecoder().decode(metaBytes)) as BlockMeta;
      } catch (e) {
        throw new BlockCorruptError(prefix, META_FILE, `not JSON: ${e instanceof Error ? e.message : e}`);
      }
      if (!Array.isArray(meta.files)) throw new BlockCorruptError(prefix, META_FILE, "no file list");
      let bytes = metaBytes.byteLength;
      for (const f of meta.files) {
        if (typeof f.relPath !== "string" || f.relPath.includes("/") || f.relPath === META_FILE || !Number.isSafeInteger(f.sizeBytes))
          throw new BlockCorruptError(prefix, META_FILE, `unexpected file entry ${JSON.stringify(f)}`);
        if (this.opts.remoteFiles?.has(f.relPath)) continue;
        await this.fetchFile(bucket, prefix, f.relPath, join(tmp, f.relPath), f.sizeBytes);
        bytes += f.sizeBytes;
      }
      writeDurable(join(tmp, META_FILE), metaBytes);
      // The same checks a restart makes; also validates meta.json and that it names this block.
      checkBlock(tmp, ulid, this.opts.remoteFiles);
      fsyncDir(tmp);
      const tenantDir = join(this.dir, TENANTS, tenant);
      mkdirSync(tenantDir, { recursive: true });
      const dir = join(tenantDir, ulid);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      fsyncDir(tenantDir);
      this.downloadedBytes += bytes;
      // Pinned for every waiter in the same step it appears, so no eviction can slip in between.
      const doomed = this.doomedLoads.delete(keyOf(tenant, ulid));
      const entry: Entry = { tenant, ulid, dir, bytes, lastUsed: ++this.tick, pins: loading.waiters, doomed };
      this.entries.set(keyOf(tenant, ulid), entry);
      this.bytes += bytes;
      this.evict();
      return entry;
    } catch (e) {
      this.doomedLoads.delete(keyOf(tenant, ulid));
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    } finally {
      this.unslot();
    }
  }

  /** Copies one object to a file by ranged reads, checking it has exactly the size meta.json records. */
  private async fetchFile(bucket: Bucket, prefix: string, relPath: string, path: string, size: number): Promise<void> {
    const key = prefix + relPath;
    const chunk = this.opts.chunkBytes ?? 8 << 20;
    const fd = openSync(path, "w");
    try {
      // A ranged read of an empty object is not portable (s3rver hangs on it): ask for the size instead.
      const actual = size === 0 ? await bucket.size(key) : -1;
      if (actual > 0) throw new BlockCorruptError(prefix, relPath, `${actual} bytes in the bucket, meta.json says 0`);
      for (let off = 0; off < size; ) {
        const part = await bucket.getRange(key, off, Math.min(chunk, size - off));
        if (part.byteLength === 0) throw new BlockCorruptError(prefix, relPath, `${off} bytes in the bucket, meta.json says ${size}`);
        for (let o = 0; o < part.byteLength; ) o += writeSync(fd, part, o, part.byteLength - o);
        off += part.byteLength;
      }
      fsyncSync(fd);
    } catch (e) {
      if (e instanceof NotFoundError) throw new BlockCorruptError(prefix, relPath, "listed in meta.json but missing from the bucket");
      throw e;
    } finally {
      closeSync(fd);
    }
  }

  /** Evicts unpinned blocks, least recently used first, until the cache fits in maxBytes. */
  private evict(): void {
    while (this.bytes > this.opts.maxBytes) {
      let victim: Entry | undefined;
      for (const e of this.entries.values()) if (e.pins === 0 && (!victim || e.lastUsed < victim.lastUsed)) victim = e;
      if (!victim) return;
      this.evictions++;
      this.drop(victim);
    }
  }

  private drop(e: Entry): void {
    this.entries.delete(keyOf(e.tenant, e.ulid));
    this.bytes -= e.bytes;
    for (const fn of this.evictListeners) fn(e.tenant, e.ulid);
    try {
      rmSync(e.dir, { recursive: true, force: true });
    } catch (err) {
      this.log(`block cache: could not delete ${e.dir}: ${err instanceof Error ? err.message : err}`);
    }
  }

  private async slot(): Promise<void> {
    if (this.running < (this.opts.downloadConcurrency ?? 4)) {
      this.running++;
      return;
    }
    // unslot() hands its slot straight to us, so `running` stays counted.
    await new Promise<void>((resolve) => this.queued.push(resolve));
  }

  private unslot(): void {
    const next = this.queued.shift();
    if (next) next();
    else this.running--;
  }
}

function keyOf(tenant: string, ulid: string): string {
  return `${tenant}/${ulid}`;
}

/**
 * Validates a cached block as BlockReader would (meta.json, its ULID, each file's size); returns its
 * bytes. A file in `remote` may be absent (read from the bucket); if present it must be whole.
 */
function checkBlock(dir: string, ulid: string, remote?: ReadonlySet<string>): { meta: BlockMeta; bytes: number } {
  if (!isUlid(ulid)) throw new BlockCorruptError(dir, META_FILE, "directory is not named by a ULID");
  const meta = readMeta(dir);
  if (meta.ulid !== ulid) throw new BlockCorruptError(dir, META_FILE, `names block ${meta.ulid}`);
  let bytes = statSync(join(dir, META_FILE)).size;
  for (const f of meta.files) {
    let size: number;
    try {
      size = statSync(join(dir, f.relPath)).size;
    } catch {
      if (remote?.has(f.relPath)) continue;
      throw new BlockCorruptError(dir, f.relPath, "missing");
    }
    if (size !== f.sizeBytes) throw new BlockCorruptError(dir, f.relPath, `size ${size} bytes, meta.json says ${f.sizeBytes}`);
    bytes += size;
  }
  return { meta, bytes };
}
