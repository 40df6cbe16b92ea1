// Little binary codecs for the block's compact files: LEB128 varints (up to 2^53, and bigints),
// zigzag for signed numbers, length-prefixed UTF-8 strings.

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** A growable byte buffer written front to back. */
export class ByteSink {
  private buf: Uint8Array;
  private len = 0;

  /** `capacity`: the bytes expected, when known; growing by doubling to a large size leaves as much garbage again. */
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number) {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  /** A non-negative integer below 2^53. */
  uint(n: number): void {
    if (!(n >= 0 && Number.isSafeInteger(n))) throw new RangeError(`varint: ${n} is not a non-negative safe integer`);
    this.reserve(8);
    const b = this.buf;
    // Integer arithmetic past 2^31 cannot use bit operators.
    while (n >= 0x80000000) {
      b[this.len++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    while (n >= 128) {
      b[this.len++] = (n & 127) | 128;
      n >>>= 7;
    }
    b[this.len++] = n;
  }

  /** A safe integer of either sign, zigzag-encoded. */
  sint(n: number): void {
    this.uint(n < 0 ? -2 * n - 1 : 2 * n);
  }

  /** An unsigned 64-bit bigint. */
  big(n: bigint): void {
    if (n < 0x80000000n) return this.uint(Number(n));
    this.reserve(10);
    const b = this.buf;
    while (n >= 128n) {
      b[this.len++] = Number(n & 127n) | 128;
      n >>= 7n;
    }
    b[this.len++] = Number(n);
  }

  bytes(x: Uint8Array): void {
    this.reserve(x.length);
    this.buf.set(x, this.len);
    this.len += x.length;
  }

  str(s: string): void {
    const x = enc.encode(s);
    this.uint(x.length);
    this.bytes(x);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** What was written, without a copy: valid until the next write. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads what ByteSink wrote; throws on a truncated or malformed buffer. */
export class ByteSource {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  uint(): number {
    const b = this.buf;
    // One byte is the common case (ids, counts, line numbers).
    if (this.pos < b.length && b[this.pos] < 128) return b[this.pos++];
    let x = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= b.length) throw new Error("truncated varint");
      const c = b[this.pos++];
      x += (c & 127) * mul;
      if (c < 128) return x;
      mul *= 128;
      if (mul > 2 ** 56) throw new Error("varint too long");
    }
  }

  sint(): number {
    const u = this.uint();
    return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
  }

  big(): bigint {
    const b = this.buf;
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= b.length) throw new Error("truncated varint");
      const c = b[this.pos++];
      x |= BigInt(c & 127) << shift;
      if (c < 128) return x;
      shift += 7n;
      if (shift > 63n) throw new Error("varint too long");
    }
  }

  /** An unsigned 64-bit varint into two 32-bit halves at out[at] (low), out[at + 1]: no bigint is made. */
  u64(out: Uint32Array, at: number): void {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= b.length) throw new Error("truncated varint");
      if (shift > 63) throw new Error("varint too long");
      const c = b[this.pos++];
      const bits = c & 127;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 15) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (shift - 32);
      if (c < 128) break;
    }
    out[at] = lo >>> 0;
    out[at + 1] = hi >>> 0;
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error("truncated bytes");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    return dec.decode(this.bytes(this.uint()));
  }
}
