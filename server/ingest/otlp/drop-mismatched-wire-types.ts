// Go's protobuf decoder skips a field whose wire type does not match the schema (it becomes an
// unknown field); protobuf-es reads it anyway and then fails on the bytes that follow. Data
// written for another revision of the OTLP v1development schema (fields renumbered) hits exactly
// this, so the bytes are cleaned the Go way before a second decode: the converter can then say
// what is wrong with the data instead of a bare "illegal tag".

import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

function scalarWireType(t: ScalarType): number {
  switch (t) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return I32;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    default:
      return VARINT;
  }
}

/** Whether `wt` is a valid encoding of field `f` (repeated numbers may come packed or not). */
function matches(f: DescField, wt: number): boolean {
  switch (f.fieldKind) {
    case "message":
    case "map":
      return wt === LEN;
    case "enum":
      return wt === VARINT;
    case "scalar":
      return wt === scalarWireType(f.scalar);
    case "list": {
      if (f.listKind === "message") return wt === LEN;
      const el = f.listKind === "enum" ? VARINT : scalarWireType(f.scalar);
      return wt === el || wt === LEN;
    }
  }
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  varint(): number {
    let r = 0;
    let m = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error("premature end of data");
      const b = this.buf[this.pos++];
      r += (b & 0x7f) * m;
      if (b < 0x80) return r;
      m *= 128;
    }
    throw new Error("varint longer than 10 bytes");
  }
  skip(n: number) {
    if (this.pos + n > this.buf.length) throw new Error("premature end of data");
    this.pos += n;
  }
}

function writeVarint(out: number[], v: number) {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/**
 * `bytes` (a `desc` message) without the fields whose wire type does not match the schema, at
 * every depth; `dropped` counts them. Throws on bytes that are not protobuf at all.
 */
export function dropMismatchedWireTypes(bytes: Uint8Array, desc: DescMessage): { bytes: Uint8Array; dropped: number } {
  let dropped = 0;
  function clean(buf: Uint8Array, d: DescMessage, depth: number): Uint8Array {
    if (depth > 100) throw new Error("messages nested too deeply");
    const r = new Reader(buf);
    const parts: Uint8Array[] = [];
    let copyFrom = 0;
    let changed = false;
    while (r.pos < buf.length) {
      const start = r.pos;
      const key = r.varint();
      const no = Math.floor(key / 8);
      const wt = key % 8;
      let payloadStart = r.pos;
      if (wt === VARINT) r.varint();
      else if (wt === I64) r.skip(8);
      else if (wt === I32) r.skip(4);
      else if (wt === LEN) {
        const len = r.varint();
        payloadStart = r.pos;
        r.skip(len);
      } else throw new Error(`unsupported wire type ${wt} of field ${no}`);
      const f = d.fields.find((x) => x.number === no);
      if (!f) continue; // unknown to this schema: left for the decoder
      if (!matches(f, wt)) {
        parts.push(buf.subarray(copyFrom, start));
        copyFrom = r.pos;
        dropped++;
        changed = true;
        continue;
      }
      const child = f.fieldKind === "message" ? f.message : f.fieldKind === "list" && f.listKind === "message" ? f.message : null;
      if (!child) continue;
      const payload = buf.subarray(payloadStart, r.pos);
      const cleaned = clean(payload, child, depth + 1);
      if (cleaned === payload) continue;
      const head: number[] = [];
      writeVarint(head, key);
      writeVarint(head, cleaned.length);
      parts.push(buf.subarray(copyFrom, start), Uint8Array.from(head), cleaned);
      copyFrom = r.pos;
      changed = true;
    }
    if (!changed) return buf;
    parts.push(buf.subarray(copyFrom));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  const out = clean(bytes, desc, 0);
  return { bytes: out, dropped };
}
