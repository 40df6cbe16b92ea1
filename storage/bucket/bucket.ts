// The object-storage interface finished blocks are uploaded to and read back from, with the key
// rules every implementation (fs, memory, S3) enforces the same way, and a prefixed view.

/** Bytes to store. A Blob (Bun.file(path) included) can be re-read, so a failed put can be retried; a stream cannot. */
export type BucketData = Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface ListOptions {
  /**
   * false (default): keys directly under the prefix, plus each "directory" one level down once,
   * with a trailing '/' (S3's delimiter listing). true: every key under the prefix.
   */
  recursive?: boolean;
}

/**
 * Keys are '/'-separated paths: no leading or trailing '/', no empty, "." or ".." segment, no control
 * characters. A key must not also be the "directory" of another key ("a" and "a/b"), because a
 * filesystem cannot hold both.
 */
export interface Bucket {
  /** The whole object; NotFoundError when there is none. */
  get(key: string): Promise<Uint8Array>;
  /** Bytes [offset, offset + length), cut short at the end of the object; NotFoundError when missing. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  /** Creates or replaces the object; readers see the old object or the new one, never a part. */
  put(key: string, data: BucketData): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Size in bytes; NotFoundError when missing. */
  size(key: string): Promise<number>;
  /** Removes the object; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix (a plain string prefix, as in S3), in no guaranteed order. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<string>;
  close?(): Promise<void>;
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(readonly key: string, options?: { cause?: unknown }) {
    super(`object not found: ${key}`, options);
  }
}

/** Reading an object failed for a reason of the bucket's (unreachable, short read), not of the data. */
export class RemoteReadError extends Error {
  override name = "RemoteReadError";
}

// Control characters cannot travel in S3's XML listings, and NUL cannot be in a file name.
const CONTROL = /[\u0000-\u001f\u007f]/;

function isBadSegment(s: string): boolean {
  return s === "" || s === "." || s === "..";
}

/** Throws a TypeError unless `key` follows the key rules above. */
export function validateKey(key: string): void {
  if (typeof key !== "string" || key === "") throw new TypeError("bucket key must be a non-empty string");
  if (CONTROL.test(key)) throw new TypeError(`bucket key has a control character: ${JSON.stringify(key)}`);
  if (key.split("/").some(isBadSegment)) {
    throw new TypeError(`bucket key has an empty, "." or ".." segment: ${JSON.stringify(key)}`);
  }
}

/**
 * Throws a TypeError unless `prefix` is "" or a key's beginning: every complete segment (before
 * the last '/') must be valid, the last one may be partial or empty.
 */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new TypeError("bucket prefix must be a string");
  if (prefix === "") return;
  if (CONTROL.test(prefix)) throw new TypeError(`bucket prefix has a control character: ${JSON.stringify(prefix)}`);
  const dirs = prefix.split("/").slice(0, -1);
  if (dirs.some(isBadSegment)) {
    throw new TypeError(`bucket prefix has an empty, "." or ".." segment: ${JSON.stringify(prefix)}`);
  }
}

/** Throws a RangeError unless offset and length are non-negative safe integers. */
export function validateRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`bad byte range: offset ${offset}, length ${length}`);
  }
}

/**
 * What a listing yields for `key` under `prefix`: the key itself, or when not recursive and the
 * key lies deeper, the "directory" one level below the prefix with a trailing '/'.
 */
export function listEntry(key: string, prefix: string, recursive: boolean): string {
  if (recursive) return key;
  const slash = key.indexOf("/", prefix.length);
  return slash < 0 ? key : key.slice(0, slash + 1);
}

/**
 * A view of `bucket` where every key lives under `prefix` (e.g. a tenant, or the configured
 * bucket prefix). close() closes the underlying bucket, since the view is usually its only handle.
 */
export function prefixed(bucket: Bucket, prefix: string): Bucket {
  if (prefix === "") return bucket;
  const root = prefix.endsWith("/") ? prefix : prefix + "/";
  validateKey(root.slice(0, -1));
  const at = (key: string) => {
    validateKey(key);
    return root + key;
  };
  // async throughout, so a bad key rejects like it does on every other bucket instead of throwing.
  return {
    get: async (key) => bucket.get(at(key)),
    getRange: async (key, offset, length) => bucket.getRange(at(key), offset, length),
    put: async (key, data) => bucket.put(at(key), data),
    exists: async (key) => bucket.exists(at(key)),
    size: async (key) => bucket.size(at(key)),
    delete: async (key) => bucket.delete(at(key)),
    async *list(p, opts) {
      validatePrefix(p);
      for await (const key of bucket.list(root + p, opts)) yield key.slice(root.length);
    },
    close: async () => {
      await bucket.close?.();
    },
  };
}

/** All of `data` as one Uint8Array (a copy when it was one already, so the caller may reuse it). */
export async function readAll(data: BucketData): Promise<Uint8Array> {
  // Not data.slice(): on a Buffer that is a view, not a copy.
  if (data instanceof Uint8Array) return new Uint8Array(data);
  if (data instanceof Blob) return await data.bytes();
  return await new Response(data).bytes();
}
