// A bucket in a directory on disk, one file per key. A put writes a temp file, fsyncs it and
// renames it into place, so a reader never sees part of an object and a crash leaves no torn one.

import type { Dirent } from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { type Bucket, type BucketData, type ListOptions, NotFoundError, validateKey, validatePrefix, validateRange } from "./bucket.ts";

// Temp files live inside the bucket so rename(2) stays on one filesystem and is atomic.
const TMP = ".tmp";
// Another host's temp file is only removed once it is clearly abandoned.
const FOREIGN_TMP_MAX_AGE_MS = 60 * 60 * 1000;

export interface FsBucketOptions {
  /** fsync each object and the directories its rename touches before put() resolves (default true). */
  fsync?: boolean;
}

export class FsBucket implements Bucket {
  private constructor(
    /** Absolute path of the bucket's directory. */
    readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  /** Creates the directory if needed and removes temp files left by puts a crash interrupted. */
  static async open(dir: string, opts: FsBucketOptions = {}): Promise<FsBucket> {
    const root = path.resolve(dir);
    await fsp.mkdir(path.join(root, TMP), { recursive: true });
    await removeStaleTemps(path.join(root, TMP));
    return new FsBucket(root, opts.fsync ?? true);
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      const buf = await fsp.readFile(this.pathOf(key));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      throw asNotFound(e, key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    validateRange(offset, length);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.pathOf(key), "r");
    } catch (e) {
      throw asNotFound(e, key);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new NotFoundError(key); // opening a directory succeeds on Linux
      const size = st.size;
      const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      let filled = 0;
      while (filled < out.byteLength) {
        const { bytesRead } = await handle.read(out, filled, out.byteLength - filled, offset + filled);
        if (bytesRead === 0) break; // truncated underneath us; return what there is
        filled += bytesRead;
      }
      return filled === out.byteLength ? out : out.subarray(0, filled);
    } finally {
      await handle.close();
    }
  }

  async put(key: string, data: BucketData): Promise<void> {
    const target = this.pathOf(key);
    const tmp = path.join(this.dir, TMP, tempName());
    try {
      await this.writeTemp(tmp, data);
      await this.moveIntoPlace(tmp, target, key);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.pathOf(key))).isFile();
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  }

  async size(key: string): Promise<number> {
    let st;
    try {
      st = await fsp.stat(this.pathOf(key));
    } catch (e) {
      throw asNotFound(e, key);
    }
    if (!st.isFile()) throw new NotFoundError(key);
    return st.size;
  }

  async delete(key: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      await fsp.unlink(target);
    } catch (e) {
      // EISDIR/EPERM: the key names a "directory", so there is no object to delete.
      if (isMissing(e) || code(e) === "EISDIR" || code(e) === "EPERM") return;
      throw e;
    }
    // S3 has no empty directories; drop ours so non-recursive listings match.
    for (let dir = path.dirname(target); dir !== this.dir; dir = path.dirname(dir)) {
      try {
        await fsp.rmdir(dir);
      } catch {
        break; // not empty (or already gone): the parents are not empty either
      }
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<string> {
    validatePrefix(prefix);
    // The prefix is a string prefix, not a directory: "blocks/01H" matches "blocks/01HX…/meta.json".
    const slash = prefix.lastIndexOf("/");
    yield* this.walk(prefix.slice(0, slash + 1), prefix.slice(slash + 1), opts.recursive ?? false);
  }

  async close(): Promise<void> {}

  private async *walk(dirKey: string, namePrefix: string, recursive: boolean): AsyncIterable<string> {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(path.join(this.dir, dirKey), { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix) || (dirKey === "" && entry.name === TMP)) continue;
      const key = dirKey + entry.name;
      if (entry.isDirectory()) {
        if (recursive) yield* this.walk(key + "/", "", true);
        else yield key + "/";
      } else if (entry.isFile()) {
        yield key;
      }
    }
  }

  private pathOf(key: string): string {
    validateKey(key);
    if (key === TMP || key.startsWith(TMP + "/")) {
      throw new TypeError(`bucket key ${JSON.stringify(key)} is reserved by the fs bucket`);
    }
    return path.join(this.dir, ...key.split("/"));
  }

  private async writeTemp(tmp: string, data: BucketData): Promise<void> {
    const handle = await fsp.open(tmp, "wx");
    try {
      if (data instanceof Uint8Array) {
        await writeFully(handle, data);
      } else {
        const stream = data instanceof Blob ? data.stream() : data;
        for await (const chunk of stream) await writeFully(handle, chunk);
      }
      if (this.fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  private async moveIntoPlace(tmp: string, target: string, key: string): Promise<void> {
    const parent = path.dirname(target);
    for (let attempt = 1; ; attempt++) {
      let created: string | undefined;
      try {
        created = await fsp.mkdir(parent, { recursive: true });
        await fsp.rename(tmp, target);
      } catch (e) {
        // A concurrent delete can prune the directory between our mkdir and rename.
        if (code(e) === "ENOENT" && attempt < 5) continue;
        if (["ENOTDIR", "EEXIST", "EISDIR", "ENOTEMPTY"].includes(code(e) ?? "")) {
          throw new Error(`bucket key ${JSON.stringify(key)} clashes with another key used as its directory`, { cause: e });
        }
        throw e;
      }
      if (this.fsync) {
        // The rename, and each directory mkdir created, are entries in their parents: sync those.
        const top = created ? path.dirname(created) : parent;
        for (let dir = parent; ; dir = path.dirname(dir)) {
          await syncDir(dir);
          if (dir === top || dir === this.dir) break;
        }
      }
      return;
    }
  }
}

async function writeFully(handle: fsp.FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.byteLength; ) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// "<pid>.<random>.<hostname>": whoever opens the bucket next can tell whether the writer still lives.
function tempName(): string {
  return `${process.pid}.${randomBytes(8).toString("hex")}.${os.hostname()}`;
}

async function removeStaleTemps(tmpDir: string): Promise<void> {
  const host = os.hostname();
  for (const name of await fsp.readdir(tmpDir)) {
    const [pidText = "", , ...hostParts] = name.split(".");
    const file = path.join(tmpDir, name);
    let stale: boolean;
    if (hostParts.join(".") === host) {
      // Our own pid means a previous process that had it (pid 1 in a container, restarted).
      const pid = Number(pidText);
      stale = pid === process.pid || !isAlive(pid);
    } else {
      const st = await fsp.stat(file).catch(() => undefined);
      stale = st !== undefined && Date.now() - st.mtimeMs > FOREIGN_TMP_MAX_AGE_MS;
    }
    if (stale) await fsp.rm(file, { force: true, recursive: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return code(e) === "EPERM"; // exists, but not ours to signal
  }
}

function code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

// ENOTDIR: a parent of the path is a file, so the key cannot exist either.
function isMissing(e: unknown): boolean {
  return code(e) === "ENOENT" || code(e) === "ENOTDIR";
}

function asNotFound(e: unknown, key: string): unknown {
  return isMissing(e) || code(e) === "EISDIR" ? new NotFoundError(key, { cause: e }) : e;
}
