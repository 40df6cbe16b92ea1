// Uploads one tenant's finished blocks to a bucket: data files first and meta.json last, so a block
// is in the bucket exactly when its meta.json is; remembers what it uploaded in shipper.json.

import { existsSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { bucketBlockPrefix, tenantBlocksPrefix } from "./block/block-cache.ts";
import { isUlid, META_FILE, readMeta, ulidTime, type BlockMeta } from "./block/meta.ts";
import { type Bucket, NotFoundError } from "./bucket/bucket.ts";
import { type RetryOptions, withRetry } from "./bucket/retry.ts";
import { fsyncDir, writeDurable } from "./durable.ts";
import { failpoint } from "./failpoint.ts";

export const SHIPPER_FILE = "shipper.json";

/** After this many blocks failed on bucket errors in one sync, the bucket looks down: the rest wait for the next sync. */
const BUCKET_FAILURES_PER_SYNC = 3;

export interface ShipperOptions {
  log: (msg: string) => void;
  /** Called for each block whose upload failed; it is tried again on the next sync. */
  onError?: (err: unknown, ulid: string) => void;
  /** Backoff around each object's upload and size check (default 3 tries, 200 ms doubling to 2 s). */
  retry?: Omit<RetryOptions, "signal" | "isRetryable">;
  /** The clock lag() reads (tests). */
  now?: () => number;
}

export interface SyncResult {
  uploaded: string[];
  failed: string[];
}

interface ShipperState {
  version: 1;
  /** Blocks whose every file, meta.json last, is in the bucket. */
  uploaded: string[];
  /** Blocks deleteRemote() removed: never uploaded again, even while their local copy remains. */
  deleted: string[];
}

/** A problem with the local copy of a block (unreadable, a file missing or of the wrong size): retrying the bucket won't help. */
class LocalBlockError extends Error {
  override name = "LocalBlockError";
}

export class Shipper {
  private readonly uploaded = new Set<string>();
  private readonly deleted = new Set<string>();
  private readonly statePath: string;
  private readonly log: (msg: string) => void;
  private readonly now: () => number;
  // sync() and deleteRemote() run one at a time, so a delete never races an upload of the same block.
  private queue: Promise<unknown> = Promise.resolve();
  // Aborted by close(): retries stop waiting out their backoff.
  private readonly closing = new AbortController();
  // Set at start-up and after a failure: the next sync removes what unfinished uploads left in the bucket.
  private needsSweep = true;

  /** Blocks whose upload failed, over the shipper's life (for /metrics). */
  uploadErrors = 0;
  /** Blocks uploaded, and their bytes, over the shipper's life (for /metrics). */
  uploadedBlocks = 0;
  uploadedBytes = 0;

  constructor(
    private readonly bucket: Bucket,
    readonly tenant: string,
    readonly blocksDir: string,
    private readonly opts: ShipperOptions,
  ) {
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.statePath = join(dirname(resolve(blocksDir)), SHIPPER_FILE);
    this.load();
  }

  /** Whether the block is wholly in the bucket, so its local copy may be dropped. */
  isUploaded(ulid: string): boolean {
    return this.uploaded.has(ulid);
  }

  /** Local blocks not uploaded yet, oldest first. */
  pending(): string[] {
    return this.localBlocks().filter((u) => !this.uploaded.has(u) && !this.deleted.has(u));
  }

  /** Age in ms of the oldest local block not uploaded yet (its ULID's time); 0 when all are. */
  lag(): number {
    const oldest = this.pending()[0];
    return oldest === undefined ? 0 : Math.max(0, this.now() - ulidTime(oldest));
  }

  /**
   * Uploads every local block not uploaded yet, oldest first. A block that fails is reported in
   * `failed` and tried again on the next sync; none is recorded as uploaded unless all its files are.
   */
  sync(): Promise<SyncResult> {
    return this.enqueue(() => this.syncOnce());
  }

  /**
   * Removes a block from the bucket (retention, compaction): meta.json first, so readers stop
   * seeing the block before its data goes, then everything else under it. The block is never
   * uploaded again, even if its local copy is still there.
   */
  deleteRemote(ulid: string): Promise<void> {
    return this.enqueue(async () => {
      if (!isUlid(ulid)) throw new TypeError(`not a block ULID: ${JSON.stringify(ulid)}`);
      if (!this.deleted.has(ulid)) {
        this.deleted.add(ulid);
        this.uploaded.delete(ulid);
        this.save();
      }
      const prefix = bucketBlockPrefix(this.tenant, ulid);
      await this.retrying(() => this.bucket.delete(prefix + META_FILE));
      const keys = await this.retrying(() => Array.fromAsync(this.bucket.list(prefix, { recursive: true })));
      for (const key of keys) await this.retrying(() => this.bucket.delete(key));
    });
  }

  /** Waits for the running sync or delete, cutting its retries short. */
  async close(): Promise<void> {
    this.closing.abort();
    await this.queue.catch(() => {});
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closing.signal.aborted) throw new Error(`shipper of tenant ${this.tenant} is closed`);
      return fn();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private async syncOnce(): Promise<SyncResult> {
    const local = this.localBlocks();
    const present = new Set(local);
    // Forget blocks whose local copy is gone (dropped after upload, compacted, expired): the file stays small.
    let changed = false;
    for (const set of [this.uploaded, this.deleted])
      for (const u of set)
        if (!present.has(u)) {
          set.delete(u);
          changed = true;
        }
    if (this.needsSweep) {
      try {
        await this.sweep(present);
        this.needsSweep = false;
      } catch (e) {
        this.log(`shipper: tenant ${this.tenant}: could not look for unfinished uploads in the bucket: ${message(e)}`);
      }
    }

    const result: SyncResult = { uploaded: [], failed: [] };
    let bucketFailures = 0;
    for (const ulid of local) {
      if (this.uploaded.has(ulid) || this.deleted.has(ulid)) continue;
      if (this.closing.signal.aborted) break;
      try {
        const bytes = await this.upload(ulid);
        this.uploaded.add(ulid);
        this.uploadedBlocks++;
        this.uploadedBytes += bytes;
        result.uploaded.push(ulid);
        // The block is in the bucket even if this fails; the next sync finds its meta.json there and re-marks it.
        changed = !this.trySave();
      } catch (e) {
        this.needsSweep = true;
        // Deleted locally while we uploaded it (compaction, retention): nothing to report, the sweep tidies up.
        if (!existsSync(join(this.blocksDir, ulid))) continue;
        this.uploadErrors++;
        result.failed.push(ulid);
        this.log(`shipper: tenant ${this.tenant}: uploading block ${ulid} failed, to be retried: ${message(e)}`);
        this.opts.onError?.(e, ulid);
        if (!(e instanceof LocalBlockError) && ++bucketFailures >= BUCKET_FAILURES_PER_SYNC) {
          this.log(`shipper: tenant ${this.tenant}: the bucket keeps failing; the other blocks wait for the next sync`);
          break;
        }
      }
    }
    if (changed) this.trySave();
    return result;
  }

  /** Uploads one block, meta.json last, each object's size checked; returns the bytes sent. */
  private async upload(ulid: string): Promise<number> {
    const dir = join(this.blocksDir, ulid);
    let meta: BlockMeta;
    let metaBytes: Uint8Array;
    try {
      meta = readMeta(dir);
      metaBytes = readFileSync(join(dir, META_FILE));
    } catch (e) {
      throw new LocalBlockError(`local block ${ulid} is unreadable: ${message(e)}`, { cause: e });
    }
    if (meta.ulid !== ulid) throw new LocalBlockError(`local block ${ulid}: meta.json names block ${meta.ulid}`);
    const prefix = bucketBlockPrefix(this.tenant, ulid);

    // Uploaded before, but a crash (or a failed save) lost the record: meta.json goes last, so it vouches for the rest.
    const remote = await this.retrying(() => this.bucket.get(prefix + META_FILE).catch((e) => (e instanceof NotFoundError ? null : Promise.reject(e))));
    if (remote && Buffer.from(remote).equals(metaBytes)) return 0;

    for (const f of meta.files) {
      const size = statOrNull(join(dir, f.relPath));
      if (size !== f.sizeBytes) throw new LocalBlockError(`local block ${ulid}: ${f.relPath} is ${size === null ? "missing" : `${size} bytes`}, meta.json says ${f.sizeBytes}`);
    }
    // Data files side by side; all of them settle before the outcome is decided, so no put outlives the sync.
    const puts = await Promise.allSettled(meta.files.map((f) => this.put(prefix + f.relPath, Bun.file(join(dir, f.relPath)), f.sizeBytes)));
    const failed = puts.find((p) => p.status === "rejected");
    if (failed) throw failed.reason;
    failpoint("shipper-before-meta");
    await this.put(prefix + META_FILE, metaBytes, metaBytes.byteLength);
    failpoint("shipper-before-mark");
    return meta.files.reduce((n, f) => n + f.sizeBytes, metaBytes.byteLength);
  }

  /** Puts one object and checks the bucket holds all of it: a short object must never pass for a block file. */
  private put(key: string, data: Uint8Array | Blob, size: number): Promise<void> {
    return this.retrying(async () => {
      await this.bucket.put(key, data);
      const got = await this.bucket.size(key);
      if (got !== size) throw new Error(`${key} is ${got} bytes in the bucket after upload, want ${size}`);
    });
  }

  /**
   * Deletes block directories in the bucket that have no meta.json and no local block behind them:
   * what an upload cut short leaves when its block is then deleted locally, or a delete cut short.
   */
  private async sweep(present: Set<string>): Promise<void> {
    const root = tenantBlocksPrefix(this.tenant);
    const blocks = new Map<string, { keys: string[]; hasMeta: boolean }>();
    for await (const key of this.bucket.list(root, { recursive: true })) {
      const rest = key.slice(root.length);
      const slash = rest.indexOf("/");
      const ulid = rest.slice(0, slash);
      if (slash < 0 || !isUlid(ulid)) continue;
      let b = blocks.get(ulid);
      if (!b) blocks.set(ulid, (b = { keys: [], hasMeta: false }));
      b.keys.push(key);
      if (rest.slice(slash + 1) === META_FILE) b.hasMeta = true;
    }
    for (const [ulid, b] of blocks) {
      if (b.hasMeta || present.has(ulid)) continue;
      this.log(`shipper: tenant ${this.tenant}: removing the unfinished upload of block ${ulid} from the bucket (${b.keys.length} objects)`);
      for (const key of b.keys) await this.retrying(() => this.bucket.delete(key));
    }
  }

  private retrying<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      attempts: 3,
      baseMs: 200,
      maxMs: 2_000,
      ...this.opts.retry,
      signal: this.closing.signal,
      // A vanished local file stays vanished.
      isRetryable: (e) => !(e instanceof LocalBlockError) && (e as { code?: unknown } | null)?.code !== "ENOENT",
    });
  }

  /** Local block directories (named by their ULID; `.tmp` and `.corrupt` ones are not blocks), oldest first. */
  private localBlocks(): string[] {
    try {
      return readdirSync(this.blocksDir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && isUlid(d.name))
        .map((d) => d.name)
        .sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.statePath, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    try {
      const s = JSON.parse(text) as Partial<ShipperState>;
      for (const u of s.uploaded ?? []) if (isUlid(u)) this.uploaded.add(u);
      for (const u of s.deleted ?? []) if (isUlid(u)) this.deleted.add(u);
    } catch (e) {
      // Losing the record costs a meta.json read per block on the next sync, never a duplicate block.
      this.log(`shipper: tenant ${this.tenant}: ${this.statePath} is unreadable, starting afresh: ${message(e)}`);
    }
  }

  /** Writes shipper.json durably: a temp file, fsynced, renamed over the old one, and the directory fsynced. */
  private save(): void {
    const state: ShipperState = { version: 1, uploaded: [...this.uploaded].sort(), deleted: [...this.deleted].sort() };
    const tmp = this.statePath + ".tmp";
    writeDurable(tmp, JSON.stringify(state) + "\n");
    renameSync(tmp, this.statePath);
    fsyncDir(dirname(this.statePath));
  }

  private trySave(): boolean {
    try {
      this.save();
      return true;
    } catch (e) {
      this.log(`shipper: tenant ${this.tenant}: could not write ${this.statePath}: ${message(e)}`);
      return false;
    }
  }
}

function statOrNull(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
