// A bucket held in a Map: for tests, and for running without any storage configured. Objects
// are copied in and out so callers can't change what is stored.

import { type Bucket, type BucketData, type ListOptions, NotFoundError, listEntry, readAll, validateKey, validatePrefix, validateRange } from "./bucket.ts";

export class MemoryBucket implements Bucket {
  private readonly objects = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array> {
    return this.object(key).slice();
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    validateRange(offset, length);
    return this.object(key).slice(offset, offset + length);
  }

  async put(key: string, data: BucketData): Promise<void> {
    validateKey(key);
    const bytes = await readAll(data);
    this.objects.set(key, bytes);
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key);
    return this.objects.has(key);
  }

  async size(key: string): Promise<number> {
    return this.object(key).byteLength;
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.objects.delete(key);
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<string> {
    validatePrefix(prefix);
    // A snapshot, so puts and deletes during the iteration don't disturb it.
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    let last = "";
    for (const key of keys) {
      const entry = listEntry(key, prefix, opts.recursive ?? false);
      if (entry !== last) yield entry;
      last = entry;
    }
  }

  async close(): Promise<void> {}

  private object(key: string): Uint8Array {
    validateKey(key);
    const bytes = this.objects.get(key);
    if (!bytes) throw new NotFoundError(key);
    return bytes;
  }
}
