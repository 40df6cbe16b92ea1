// Byte ranges of bucket objects as hyparquet AsyncBuffers: a query over a block kept in the bucket
// reads only the footer and the column chunks of the row groups it needs. Reads are aligned to
// pages kept in one bounded LRU, so repeated queries do not refetch and memory stays capped.

import type { AsyncBuffer } from "hyparquet";
import { type Bucket, NotFoundError, RemoteReadError } from "./bucket.ts";

export interface RangeCacheOptions {
  /** Bytes of pages kept in memory across all objects (default 32 MiB). */
  maxBytes?: number;
  /** Ranges are fetched in whole pages of this size (default 256 KiB). */
  pageBytes?: number;
}

export class RangeCache {
  private readonly pages = new Map<string, Uint8Array>();
  private readonly loading = new Map<string, Promise<Uint8Array>>();
  private readonly maxBytes: number;
  private readonly pageBytes: number;
  bytes = 0;
  /** Bytes fetched from buckets, and requests made (for tests and /metrics). */
  fetchedBytes = 0;
  requests = 0;

  constructor(opts: RangeCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 32 << 20;
    this.pageBytes = opts.pageBytes ?? 256 << 10;
  }

  /** An object of known size as an AsyncBuffer; bucket failures become RemoteReadError (NotFoundError stays). */
  buffer(bucket: Bucket, key: string, size: number): AsyncBuffer {
    return { byteLength: size, slice: (start, end) => this.read(bucket, key, size, start, end ?? size) };
  }

  /** Forgets the pages of objects whose keys start with `prefix` (a block deleted from the bucket). */
  forget(prefix: string): void {
    for (const [k, v] of this.pages)
      if (k.startsWith(prefix)) {
        this.pages.delete(k);
        this.bytes -= v.byteLength;
      }
  }

  private async read(bucket: Bucket, key: string, size: number, start: number, end: number): Promise<ArrayBuffer> {
    if (start < 0 || end > size || start > end) throw new RangeError(`range [${start}, ${end}) outside ${key} (${size} bytes)`);
    const out = new Uint8Array(end - start);
    const P = this.pageBytes;
    const first = Math.floor(start / P);
    const last = Math.floor((end - 1) / P);
    // Pages of one read are fetched together: a column chunk spanning pages costs one round trip each, in parallel.
    const pages = await Promise.all(Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => this.page(bucket, key, size, first + i)));
    for (let i = 0; i < pages.length; i++) {
      const pageStart = (first + i) * P;
      const lo = Math.max(start, pageStart);
      const hi = Math.min(end, pageStart + pages[i].byteLength);
      out.set(pages[i].subarray(lo - pageStart, hi - pageStart), lo - start);
    }
    return out.buffer;
  }

  private page(bucket: Bucket, key: string, size: number, n: number): Promise<Uint8Array> {
    const id = `${key}#${n}`;
    const have = this.pages.get(id);
    if (have) {
      // Most recently used last: Map iteration order is the LRU order.
      this.pages.delete(id);
      this.pages.set(id, have);
      return Promise.resolve(have);
    }
    let p = this.loading.get(id);
    if (!p) {
      const off = n * this.pageBytes;
      const len = Math.min(this.pageBytes, size - off);
      p = (async () => {
        this.requests++;
        let bytes: Uint8Array;
        try {
          bytes = await bucket.getRange(key, off, len);
        } catch (e) {
          if (e instanceof NotFoundError) throw e;
          throw new RemoteReadError(`reading ${key} [${off}, ${off + len}) from the bucket failed: ${e instanceof Error ? e.message : e}`, { cause: e });
        }
        if (bytes.byteLength !== len) throw new RemoteReadError(`reading ${key} [${off}, ${off + len}) from the bucket returned ${bytes.byteLength} bytes`);
        this.fetchedBytes += len;
        this.insert(id, bytes);
        return bytes;
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  private insert(id: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.maxBytes) return;
    this.pages.set(id, bytes);
    this.bytes += bytes.byteLength;
    for (const [k, v] of this.pages) {
      if (this.bytes <= this.maxBytes) break;
      this.pages.delete(k);
      this.bytes -= v.byteLength;
    }
  }
}
