// A bucket in any S3-compatible store (AWS, MinIO, Ceph, Garage, R2) through Bun's built-in
// S3Client: transient failures are retried with backoff, hung requests time out, S3 errors map onto ours.

import { S3Client } from "bun";
import { type Bucket, type BucketData, type ListOptions, NotFoundError, validateKey, validatePrefix, validateRange } from "./bucket.ts";
import { withRetry } from "./retry.ts";

export interface S3BucketOptions {
  bucket?: string;
  /** e.g. "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:9000"; AWS's when omitted. */
  endpoint?: string;
  /** Default "us-east-1", which MinIO and most other stores accept. */
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Address the bucket as a subdomain. Default false (path-style), which MinIO, s3rver and IP endpoints need. */
  virtualHostedStyle?: boolean;
  /** Objects larger than this go up as a multipart upload in parts of this size (default 8 MiB; S3's least is 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 4). */
  queueSize?: number;
  /** Keys asked for per list request (default 1000, S3's most). */
  listPageSize?: number;
  /** Deadline of one attempt of one request (default 60 s); a hung connection would otherwise wait forever. */
  timeoutMs?: number;
  /** Slowest transfer still taken as alive: stretches the deadline by size/rate where the size is known (default 1 MiB/s). */
  minBytesPerSecond?: number;
  /** Backoff for transient failures (default 5 attempts, 100 ms doubling to at most 5 s). */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Called before each retry, e.g. to count upload errors in metrics. */
  onRetry?: (info: RetryInfo) => void;
  /** Where settings not given here are read from (default process.env); see s3OptionsFromEnv. */
  env?: Record<string, string | undefined>;
}

export interface RetryInfo {
  op: "get" | "getRange" | "put" | "exists" | "size" | "delete" | "list";
  key: string;
  attempt: number;
  delayMs: number;
  error: unknown;
}

/**
 * Connection settings from the environment: S3_* first (as Bun reads them), then the AWS SDK's
 * names (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3…).
 */
export function s3OptionsFromEnv(env: Record<string, string | undefined> = process.env): S3BucketOptions {
  const pick = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== "");
  const vhost = pick("S3_VIRTUAL_HOSTED_STYLE");
  return dropUndefined({
    bucket: pick("S3_BUCKET", "AWS_BUCKET"),
    endpoint: pick("S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    region: pick("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    accessKeyId: pick("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    secretAccessKey: pick("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    sessionToken: pick("S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
    virtualHostedStyle: vhost === undefined ? undefined : vhost === "true" || vhost === "1",
  });
}

// S3 error codes that say "try again later".
const TRANSIENT_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "RequestTimeout",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "BandwidthLimitExceeded",
  "Timeout", // ours, from a request past its deadline
  // Bun gives every error response without an XML body (all HEAD errors; many proxies' 502/503/429)
  // this code and drops the HTTP status, so a 503 and a 400 look alike. A few wasted retries on a
  // real client error cost less than failing an upload on every blip.
  "UnknownError",
]);
const NETWORK_ERRNOS = new Set(["ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "ENOTFOUND"]);

/** True for network failures, timeouts, 5xx and throttling; false for NoSuchKey, AccessDenied and other 4xx. */
export function isTransientS3Error(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  // Bun's codes for connection trouble: ConnectionRefused, ConnectionClosed, …
  return TRANSIENT_CODES.has(code) || NETWORK_ERRNOS.has(code) || code.startsWith("Connection");
}

export class S3TimeoutError extends Error {
  override name = "S3TimeoutError";
  readonly code = "Timeout";
}

export class S3Bucket implements Bucket {
  /** The bucket's name, for logs. */
  readonly name: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number;
  private readonly timeoutMs: number;
  private readonly minBytesPerSecond: number;
  private readonly retry: NonNullable<S3BucketOptions["retry"]>;
  private readonly onRetry?: (info: RetryInfo) => void;
  // Aborted by close(), so retries waiting out a backoff give up instead of delaying shutdown.
  private readonly closing = new AbortController();

  constructor(opts: S3BucketOptions = {}) {
    const o = { ...s3OptionsFromEnv(opts.env ?? process.env), ...dropUndefined(opts) };
    if (!o.bucket) throw new Error("S3 bucket: no bucket name given (config, or S3_BUCKET in the environment)");
    this.name = o.bucket;
    this.partSize = o.partSize ?? 8 << 20;
    if (this.partSize < 5 << 20) throw new RangeError("S3 bucket: partSize must be at least 5 MiB");
    this.queueSize = o.queueSize ?? 4;
    this.listPageSize = o.listPageSize ?? 1000;
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.minBytesPerSecond = o.minBytesPerSecond ?? 1 << 20;
    this.retry = o.retry ?? {};
    this.onRetry = o.onRetry;
    this.client = new S3Client({
      bucket: o.bucket,
      endpoint: o.endpoint,
      region: o.region ?? "us-east-1",
      accessKeyId: o.accessKeyId,
      secretAccessKey: o.secretAccessKey,
      sessionToken: o.sessionToken,
      virtualHostedStyle: o.virtualHostedStyle ?? false,
    });
  }

  // Keys always go through client.file(key): Bun.file("s3://…") mixes the bucket into the key when S3_BUCKET is set.

  async get(key: string): Promise<Uint8Array> {
    validateKey(key);
    return this.run("get", key, 0, () => this.client.file(key).bytes()).catch((e) => {
      throw asNotFound(e, key);
    });
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    validateKey(key);
    validateRange(offset, length);
    if (length === 0) {
      await this.size(key); // still NotFoundError for a missing key
      return new Uint8Array(0);
    }
    try {
      const bytes = await this.run("getRange", key, length, () => this.client.file(key).slice(offset, offset + length).bytes());
      return bytes.byteLength > length ? bytes.subarray(0, length) : bytes;
    } catch (e) {
      // S3 answers 416 for a range starting at or past the end (any range of an empty object).
      if ((e as { code?: string }).code === "InvalidRange") return new Uint8Array(0);
      throw asNotFound(e, key);
    }
  }

  /**
   * Bytes and Blobs (Bun.file(path) too) are retried as a whole on transient failures. A stream is
   * read up to partSize first: if it ends there it goes up like bytes, otherwise as a multipart
   * upload that is tried once (a stream can't be replayed) and has no deadline.
   */
  async put(key: string, data: BucketData): Promise<void> {
    validateKey(key);
    this.checkOpen();
    if (data instanceof Uint8Array || data instanceof Blob) {
      const size = data instanceof Uint8Array ? data.byteLength : data.size;
      await this.run("put", key, size, async () => {
        if (size <= this.partSize) await this.client.write(key, data instanceof Blob ? await data.bytes() : data);
        else await this.putParts(key, data instanceof Blob ? data.stream()[Symbol.asyncIterator]() : chunks(data, this.partSize));
      });
      return;
    }
    const source = data[Symbol.asyncIterator]();
    const head: Uint8Array[] = [];
    let headBytes = 0;
    while (headBytes <= this.partSize) {
      const next = await source.next();
      if (next.done) return this.put(key, Buffer.concat(head, headBytes));
      head.push(next.value);
      headBytes += next.value.byteLength;
    }
    await this.putParts(key, source, head);
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key);
    return this.run("exists", key, 0, () => this.client.exists(key));
  }

  async size(key: string): Promise<number> {
    validateKey(key);
    return this.run("size", key, 0, () => this.client.size(key)).catch((e) => {
      throw asNotFound(e, key);
    });
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    await this.run("delete", key, 0, () => this.client.delete(key)).catch((e) => {
      // S3 answers 204 for a missing key, but some stores send a bodyless 404, which Bun calls NoSuchKey.
      if ((e as { code?: string }).code !== "NoSuchKey") throw e;
    });
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<string> {
    validatePrefix(prefix);
    const recursive = opts.recursive ?? false;
    let continuationToken: string | undefined;
    do {
      const token = continuationToken;
      const page = await this.run("list", prefix, 0, () =>
        this.client.list({
          prefix: prefix || undefined,
          delimiter: recursive ? undefined : "/",
          maxKeys: this.listPageSize,
          continuationToken: token,
        }),
      );
      for (const { key } of page.contents ?? []) {
        // "folder/" placeholders made by S3 consoles are not objects.
        if (!key.endsWith("/")) yield key;
      }
      for (const { prefix: dir } of page.commonPrefixes ?? []) yield dir;
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
  }

  async close(): Promise<void> {
    this.closing.abort();
  }

  // One request with a deadline per attempt, retried while its failures are transient.
  private run<T>(op: RetryInfo["op"], key: string, bytes: number, fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    const deadlineMs = this.timeoutMs + (bytes / this.minBytesPerSecond) * 1000;
    return withRetry(() => withDeadline(fn(), deadlineMs, `${op} ${key}`), {
      ...this.retry,
      isRetryable: isTransientS3Error,
      signal: this.closing.signal,
      onRetry: (error, attempt, delayMs) => this.onRetry?.({ op, key, attempt, delayMs, error }),
    });
  }

  private async putParts(key: string, source: AsyncIterator<Uint8Array>, head: Uint8Array[] = []): Promise<void> {
    const writer = this.client.file(key).writer({ partSize: this.partSize, queueSize: this.queueSize });
    try {
      for (const chunk of head) await writer.write(chunk);
      for (let next = await source.next(); !next.done; next = await source.next()) await writer.write(next.value);
    } catch (e) {
      // Never end() here, not even end(e): Bun then completes the upload with the parts it has,
      // leaving a truncated object. A writer left unended is aborted by Bun once collected, and
      // stores' lifecycle rules sweep any multipart upload that remains.
      await source.return?.()?.catch(() => {});
      throw e;
    }
    await writer.end();
  }

  private checkOpen(): void {
    if (this.closing.signal.aborted) throw new Error(`S3 bucket ${this.name} is closed`);
  }
}

async function* chunks(data: Uint8Array, size: number): AsyncIterator<Uint8Array> {
  for (let off = 0; off < data.byteLength; off += size) yield data.subarray(off, off + size);
}

// Settles as `p` does, or rejects with S3TimeoutError after ms. The request itself can't be
// cancelled; a late result is dropped, which is safe because every call here is idempotent.
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new S3TimeoutError(`S3 ${what}: no answer within ${Math.round(ms)} ms`)), ms);
  });
  p.catch(() => {}); // a late failure must not become an unhandled rejection
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function asNotFound(e: unknown, key: string): unknown {
  return (e as { code?: string } | null)?.code === "NoSuchKey" ? new NotFoundError(key, { cause: e }) : e;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
