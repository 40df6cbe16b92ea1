// SampleArena: the samples (stack id, value) of a head's rows, packed into a few large arrays. Two
// small typed arrays per row, long-lived among the request garbage of the same kinds, left heap
// pages pinned by a row or two after the garbage around them was collected, and cost an object
// header and an allocation each; here a head of 1.7M samples holds about 50 arrays.

/** Samples per chunk: 64K (768 KiB of ids and values). A longer row gets a chunk of its own. */
export const CHUNK_SAMPLES = 1 << 16;

const AT = 2 ** 32;

/**
 * Where a row's samples are: chunk · 2^32 + offset, one number to keep per row. Offsets stay under
 * 2^32 and chunks under 2^21, so it is exact.
 */
export type SampleRef = number;

export class SampleArena {
  /** Chunk c's stack ids and values; a row's samples are contiguous within one chunk. */
  readonly ids: Uint32Array[] = [];
  readonly values: Float64Array[] = [];
  /** Samples used in the last shared chunk. */
  private fill = CHUNK_SAMPLES;
  private shared = -1;
  /** Bytes of every chunk allocated. */
  bytes = 0;

  /** Room for a row of n samples, written through ids/values at the returned place. */
  alloc(n: number): SampleRef {
    if (n > CHUNK_SAMPLES / 4) return this.chunk(n) * AT;
    if (this.fill + n > CHUNK_SAMPLES) {
      this.shared = this.chunk(CHUNK_SAMPLES);
      this.fill = 0;
    }
    const at = this.fill;
    this.fill += n;
    return this.shared * AT + at;
  }

  private chunk(n: number): number {
    this.ids.push(new Uint32Array(n));
    this.values.push(new Float64Array(n));
    this.bytes += n * 12;
    return this.ids.length - 1;
  }
}

/** The chunk of a row's samples. */
export const chunkOf = (ref: SampleRef): number => Math.floor(ref / AT);
/** The offset of a row's samples in its chunk. */
export const offsetOf = (ref: SampleRef): number => ref % AT;
