// The floor for pprof decode benchmarks: a bare protobuf wire walk that visits every field of a
// pprof message (recursing into sub-messages, unpacking packed ids and values) and allocates nothing.

// Module-level state: JSC runs closures over a mutable `pos` about 2x slower.
const EMPTY = new Uint8Array(0);
let buf: Uint8Array = EMPTY;
let pos = 0;
let sum = 0;

// Which length-delimited fields hold sub-messages, per message kind.
const PROFILE = 0;
const SAMPLE = 1;
const LOCATION = 2;
const OTHER = 3; // ValueType, Mapping, Function, Label, Line: scalars only

/** Walks every field; returns a checksum of the scalar values so the work is not optimised away. */
export function wireWalk(bytes: Uint8Array): number {
  // A plain Uint8Array view: Buffers have another shape, and seeing both deoptimises the walk.
  buf = Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  sum = 0;
  walk(buf.length, PROFILE);
  buf = EMPTY;
  return sum;
}

function walk(end: number, kind: number): void {
  while (pos < end) {
    const tag = varint();
    const field = tag >>> 3;
    switch (tag & 7) {
      case 0:
        sum = (sum + varint()) | 0;
        break;
      case 2: {
        const len = varint();
        const e = pos + len;
        if (e > end) throw new Error(`wire walk: truncated at ${pos}`);
        if (kind === PROFILE) {
          if (field === 6) pos = e; // string_table: skipped, as a decoder would hand it to TextDecoder
          else if (field === 2) walk(e, SAMPLE);
          else if (field === 4) walk(e, LOCATION);
          else if (field === 13) packed(e);
          else walk(e, OTHER);
        } else if (kind === SAMPLE) {
          if (field === 3) walk(e, OTHER);
          else packed(e);
        } else if (kind === LOCATION && field === 4) walk(e, OTHER);
        else pos = e;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`wire walk: wire type ${tag & 7} at ${pos}`);
    }
  }
}

function packed(e: number): void {
  let s = sum;
  while (pos < e) s = (s + varint()) | 0;
  sum = s;
}

function varint(): number {
  let b = buf[pos++];
  if (b < 0x80) return b;
  let x = b & 0x7f;
  b = buf[pos++];
  if (b < 0x80) return x | (b << 7);
  x |= (b & 0x7f) << 7;
  b = buf[pos++];
  if (b < 0x80) return x | (b << 14);
  x |= (b & 0x7f) << 14;
  // Longer varints: keep the low 21 bits for the checksum and skip the rest.
  while (b >= 0x80) b = buf[pos++];
  return x;
}
