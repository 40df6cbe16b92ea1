// The byte reader under the JFR parser: LEB128 varints ("compressed integers"), fixed-width
// numbers and JFR's string encodings, over one buffer.
//
// State lives in module variables, as in pprof-decoder.ts: JSC runs these small functions fastest
// that way. Reads past the end never throw here (a missing byte reads as 0 and the varint stops
// after nine bytes); callers check `pos` against the end of each event, pool or chunk instead,
// which keeps bounds checks out of the per-byte path.

const EMPTY = new Uint8Array(0);
const TWO_32 = 4294967296;
const utf8 = new TextDecoder("utf-8");

export let buf: Uint8Array = EMPTY;
export let pos = 0;
/** The upper 32 bits of the last varlongParts() value; its return value is the lower 32 bits. */
export let hi = 0;
/** java.lang.String constant pool of the current chunk, for strings encoded by reference. */
let stringPool: Map<number, string> | null = null;

export function reset(b: Uint8Array) {
  buf = b;
  pos = 0;
  stringPool = null;
}

export function seek(p: number) {
  pos = p;
}

export function setStringPool(m: Map<number, string> | null) {
  stringPool = m;
}

export function u8(): number {
  const b = buf[pos++];
  return b === undefined ? 0 : b;
}

/** Big-endian fixed width, for the chunk header. */
export function u32At(p: number): number {
  return ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
}

export function u64At(p: number): number {
  return u32At(p) * TWO_32 + u32At(p + 4);
}

/**
 * An unsigned LEB128 value of up to 64 bits (the ninth byte carries 8 bits) as a double: exact
 * below 2^53, which covers every id and size in practice.
 */
export function varint(): number {
  const b = buf;
  let p = pos;
  let x = b[p++];
  if (x < 0x80) {
    pos = p;
    return x;
  }
  let r = x & 0x7f;
  x = b[p++];
  r |= (x & 0x7f) << 7;
  if (x < 0x80) {
    pos = p;
    return r;
  }
  x = b[p++];
  r |= (x & 0x7f) << 14;
  if (x < 0x80) {
    pos = p;
    return r;
  }
  x = b[p++];
  r |= (x & 0x7f) << 21;
  if (x < 0x80) {
    pos = p;
    return r;
  }
  pos = p;
  return varintTail(r);
}

// Bytes 5..9 of a long varint; kept apart so varint() stays small enough to inline.
function varintTail(low28: number): number {
  const b = buf;
  let p = pos;
  let r = low28;
  let m = 268435456; // 2^28
  for (let i = 4; i < 8; i++) {
    const x = b[p++] | 0;
    r += (x & 0x7f) * m;
    m *= 128;
    if (x < 0x80) {
      pos = p;
      return r;
    }
  }
  r += (b[p++] | 0) * m;
  pos = p;
  return r;
}

/** A 64-bit varint split exactly: returns the low 32 bits (unsigned), sets `hi`. */
export function varlongParts(): number {
  const b = buf;
  let lo = 0;
  let h = 0;
  for (let i = 0; i < 9; i++) {
    const x = b[pos++] | 0;
    const v = i === 8 ? x : x & 0x7f;
    const shift = i * 7;
    if (shift < 32) {
      lo |= v << shift;
      if (shift + 8 > 32) h |= v >>> (32 - shift);
    } else {
      h |= v << (shift - 32);
    }
    if (i < 8 && x < 0x80) break;
  }
  hi = h >>> 0;
  return lo >>> 0;
}

/** A signed 64-bit varint (two's complement), exact within ±2^53. */
export function varlongSigned(): number {
  const lo = varlongParts();
  return (hi | 0) * TWO_32 + lo;
}

export function skip(n: number) {
  pos += n;
}

/** Skips one varint without decoding it. */
export function skipVarint() {
  const b = buf;
  let p = pos;
  for (let i = 0; i < 8; i++) {
    if (b[p++] < 0x80) {
      pos = p;
      return;
    }
  }
  pos = p + 1;
}

// JFR string encodings (the byte before every string).
const S_NULL = 0;
const S_EMPTY = 1;
const S_POOL = 2;
const S_UTF8 = 3;
const S_CHARS = 4;
const S_LATIN1 = 5;

/** A string in one of JFR's encodings; null for the null string. Throws on an unknown encoding. */
export function string(): string | null {
  const enc = u8();
  switch (enc) {
    case S_NULL:
      return null;
    case S_EMPTY:
      return "";
    case S_POOL: {
      const id = varint();
      return stringPool?.get(id) ?? null;
    }
    case S_UTF8: {
      const n = length();
      const s = pos;
      pos += n;
      return asciiOrUtf8(s, n);
    }
    case S_CHARS: {
      const n = length();
      let out = "";
      for (let i = 0; i < n; i++) out += String.fromCharCode(varint());
      return out;
    }
    case S_LATIN1: {
      const n = length();
      const s = pos;
      pos += n;
      let out = "";
      for (let i = s; i < s + n; i++) out += String.fromCharCode(buf[i]);
      return out;
    }
    default:
      throw new JfrFormatError(`unknown string encoding ${enc} at offset ${pos - 1}`);
  }
}

/** Skips a string without building it. */
export function skipString() {
  const enc = u8();
  switch (enc) {
    case S_NULL:
    case S_EMPTY:
      return;
    case S_POOL:
      skipVarint();
      return;
    case S_UTF8:
    case S_LATIN1: {
      const n = length(); // not `pos += length()`: that would add to the old pos
      pos += n;
      return;
    }
    case S_CHARS: {
      const n = length();
      for (let i = 0; i < n; i++) skipVarint();
      return;
    }
    default:
      throw new JfrFormatError(`unknown string encoding ${enc} at offset ${pos - 1}`);
  }
}

/** A count or byte length: refuses values that cannot fit in what is left of the buffer. */
export function length(): number {
  const n = varint();
  if (n > buf.length - pos) throw new JfrFormatError(`length ${n} at offset ${pos} runs past the end of the data (${buf.length} bytes)`);
  return n;
}

function asciiOrUtf8(s: number, n: number): string {
  // Symbols are nearly always short ASCII; building them by hand skips the decoder call.
  if (n <= 64) {
    let out = "";
    for (let i = s; i < s + n; i++) {
      const c = buf[i];
      if (c >= 0x80) return utf8.decode(buf.subarray(s, s + n));
      out += String.fromCharCode(c);
    }
    return out;
  }
  return utf8.decode(buf.subarray(s, s + n));
}

/** Structural damage in the recording: the converter turns it into a 422 for the client. */
export class JfrFormatError extends Error {}
