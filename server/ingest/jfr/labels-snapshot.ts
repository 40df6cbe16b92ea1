// LabelsSnapshot: the `labels` part of a JFR upload (Pyroscope's Java agent). Context ids in JFR
// events point at contexts; a context maps label-name string ids to label-value string ids.
//
//   message Context        { map<int64, int64> labels = 1; }
//   message LabelsSnapshot { map<int64, Context> contexts = 1; map<int64, string> strings = 2; }

import { unprocessable } from "../../errors.ts";

export interface LabelsSnapshot {
  /** context id → flat [nameId, valueId, nameId, valueId, ...] */
  contexts: Map<number, number[]>;
  strings: Map<number, string>;
}

export function emptyLabelsSnapshot(): LabelsSnapshot {
  return { contexts: new Map(), strings: new Map() };
}

const utf8 = new TextDecoder("utf-8");

/** Decodes the protobuf; throws a 422 ApiError naming the problem when it is malformed. */
export function decodeLabelsSnapshot(b: Uint8Array): LabelsSnapshot {
  const out = emptyLabelsSnapshot();
  const w = new Wire(b, 0, b.length);
  while (w.more()) {
    const tag = w.varint();
    const field = Math.floor(tag / 8);
    if (field === 1 && (tag & 7) === 2) {
      const e = w.sub();
      let id = 0;
      let labels: number[] = [];
      while (e.more()) {
        const t = e.varint();
        if (t === 8) id = e.int64();
        else if (t === 18) labels = readContext(e.sub());
        else e.skip(t);
      }
      out.contexts.set(id, labels);
    } else if (field === 2 && (tag & 7) === 2) {
      const e = w.sub();
      let id = 0;
      let s = "";
      while (e.more()) {
        const t = e.varint();
        if (t === 8) id = e.int64();
        else if (t === 18) s = e.string();
        else e.skip(t);
      }
      out.strings.set(id, s);
    } else {
      w.skip(tag);
    }
  }
  return out;
}

function readContext(c: Wire): number[] {
  const labels: number[] = [];
  while (c.more()) {
    const t = c.varint();
    if (t !== 10) {
      c.skip(t);
      continue;
    }
    const e = c.sub();
    let k = 0;
    let v = 0;
    while (e.more()) {
      const t2 = e.varint();
      if (t2 === 8) k = e.int64();
      else if (t2 === 16) v = e.int64();
      else e.skip(t2);
    }
    // A repeated map key replaces the earlier entry, as protobuf maps do.
    let at = -1;
    for (let i = 0; i < labels.length; i += 2) if (labels[i] === k) at = i;
    if (at >= 0) labels[at + 1] = v;
    else labels.push(k, v);
  }
  return labels;
}

/** A minimal protobuf wire reader over b[pos, end). */
class Wire {
  constructor(
    private b: Uint8Array,
    private pos: number,
    private end: number,
  ) {}

  more() {
    return this.pos < this.end;
  }

  varint(): number {
    let r = 0;
    let m = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw bad("a varint runs past the end of its message");
      const x = this.b[this.pos++];
      r += (x & 0x7f) * m;
      if (x < 0x80) return r;
      m *= 128;
    }
    throw bad("a varint is longer than 10 bytes");
  }

  /** int64: negative values arrive as 10-byte two's complement. */
  int64(): number {
    const start = this.pos;
    const v = this.varint();
    if (v <= Number.MAX_SAFE_INTEGER) return v;
    // Large or negative: decode again exactly (rare: ids are small and positive in practice).
    let x = 0n;
    for (let i = this.pos - 1; i >= start; i--) x = (x << 7n) | BigInt(this.b[i] & 0x7f);
    return Number(BigInt.asIntN(64, x));
  }

  sub(): Wire {
    const n = this.varint();
    if (n > this.end - this.pos) throw bad(`a field of ${n} bytes runs past the end of its message`);
    const w = new Wire(this.b, this.pos, this.pos + n);
    this.pos += n;
    return w;
  }

  string(): string {
    const n = this.varint();
    if (n > this.end - this.pos) throw bad(`a string of ${n} bytes runs past the end of its message`);
    const s = utf8.decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  skip(tag: number) {
    switch (tag & 7) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.sub();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw bad(`unsupported wire type ${tag & 7}`);
    }
    if (this.pos > this.end) throw bad("a fixed-width field runs past the end of its message");
  }
}

function bad(what: string) {
  return unprocessable(`labels: invalid LabelsSnapshot protobuf: ${what}`);
}
