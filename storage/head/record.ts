// Binary encoding of WAL records: a batch of (tenant, series labels, profile) ingested together.
// Columnar and little-endian, so the big sample arrays are written and read with one memcpy each.

import type { Labels } from "../model/labels.ts";
import type { Func, Location, Mapping, Profile, SampleLabel, ValueType } from "../model/profile.ts";

export interface IngestRecord {
  tenant: string;
  labels: Labels;
  profile: Profile;
}

/*
 * Layout (all integers little-endian):
 *   batch   u8 version, u32 record count, records…
 *   record  strings: u32 n, u32[n] UTF-16 lengths, u32 byte length, UTF-8 bytes of all strings joined
 *           tenant, labels, sample types, period type, scalars, comments (string indexes)
 *           mappings, functions, locations (one column per field)
 *           samples: locStart, locs, values (raw typed arrays); sample labels (columns, or absent)
 * Strings are referenced by index into the record's table, so a name repeated across functions,
 * labels and comments is written once. Number columns pick u32, i32 or f64 per column, whichever
 * holds every value exactly.
 */

export const RECORD_VERSION = 1;

// Typed arrays are copied as raw bytes, which is only correct on a little-endian host (all Bun targets).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("record: big-endian hosts are not supported");

const NONE = 0xffffffff; // string index meaning "null" (no period type)
const NUM_U32 = 1;
const NUM_I32 = 2;
const NUM_F64 = 3;

const FLAG_FUNCTIONS = 1;
const FLAG_FILENAMES = 2;
const FLAG_LINE_NUMBERS = 4;
const FLAG_INLINE_FRAMES = 8;

const utf8Encoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF must survive; the default decoder would strip it.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A typed array with its element width, ready to be copied into the output. */
type Raw = Uint8Array | Uint32Array | Int32Array | Float64Array | BigUint64Array;

function numKind(a: ArrayLike<number>): number {
  let kind = NUM_U32;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v >>> 0 === v && (v !== 0 || 1 / v > 0)) continue; // excludes -0, which would come back as 0
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) kind = NUM_I32;
    else return NUM_F64;
  }
  return kind;
}

/** A column of numbers stored in the narrowest exact type. */
function numColumn(a: number[]): Raw {
  switch (numKind(a)) {
    case NUM_U32:
      return Uint32Array.from(a);
    case NUM_I32:
      return Int32Array.from(a);
    default:
      return Float64Array.from(a);
  }
}

function kindOf(r: Raw): number {
  return r instanceof Uint32Array ? NUM_U32 : r instanceof Int32Array ? NUM_I32 : NUM_F64;
}

/** One record with its string table and columns built, waiting to be sized and written. */
class Prepared {
  strings: string[] = [];
  private index = new Map<string, number>();
  blob!: Uint8Array;
  units!: Uint32Array;
  /** Everything after the string table, in write order: numbers are u32 scalars, others raw. */
  parts: (number | Raw | Scalar)[] = [];
  size = 0;

  str(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

/** An 8-byte scalar; u32 scalars are plain numbers in Prepared.parts. */
class Scalar {
  constructor(
    readonly kind: "f64" | "i64" | "u8",
    readonly v: number | bigint,
  ) {}
}

function prepare(rec: IngestRecord): Prepared {
  const p = new Prepared();
  const out = p.parts;
  const prof = rec.profile;
  const u32s = (a: number[]) => {
    out.push(a.length, Uint32Array.from(a));
  };

  out.push(p.str(rec.tenant));
  const lab: number[] = [];
  for (const l of rec.labels) lab.push(p.str(l.name), p.str(l.value));
  u32s(lab);

  const st: number[] = [];
  for (const t of prof.sampleTypes) st.push(p.str(t.type), p.str(t.unit));
  u32s(st);
  if (prof.periodType) out.push(p.str(prof.periodType.type), p.str(prof.periodType.unit));
  else out.push(NONE, NONE);
  out.push(new Scalar("f64", prof.period), new Scalar("i64", prof.timeNanos), new Scalar("f64", prof.durationNanos));
  out.push(p.str(prof.defaultSampleType), p.str(prof.dropFrames), p.str(prof.keepFrames));
  u32s(prof.comments.map((c) => p.str(c)));

  // Mappings: three u64 columns interleaved, two string columns interleaved, one flags byte each.
  const ms = prof.mappings;
  const mAddr = new BigUint64Array(ms.length * 3);
  const mStr = new Uint32Array(ms.length * 2);
  const mFlags = new Uint8Array(ms.length);
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i];
    mAddr[i * 3] = BigInt.asUintN(64, m.memoryStart);
    mAddr[i * 3 + 1] = BigInt.asUintN(64, m.memoryLimit);
    mAddr[i * 3 + 2] = BigInt.asUintN(64, m.fileOffset);
    mStr[i * 2] = p.str(m.filename);
    mStr[i * 2 + 1] = p.str(m.buildId);
    mFlags[i] =
      (m.hasFunctions ? FLAG_FUNCTIONS : 0) |
      (m.hasFilenames ? FLAG_FILENAMES : 0) |
      (m.hasLineNumbers ? FLAG_LINE_NUMBERS : 0) |
      (m.hasInlineFrames ? FLAG_INLINE_FRAMES : 0);
  }
  out.push(ms.length, mAddr, mStr, mFlags);

  const fs = prof.functions;
  const fStr = new Uint32Array(fs.length * 3);
  const fLine: number[] = new Array(fs.length);
  for (let i = 0; i < fs.length; i++) {
    const f = fs[i];
    fStr[i * 3] = p.str(f.name);
    fStr[i * 3 + 1] = p.str(f.systemName);
    fStr[i * 3 + 2] = p.str(f.filename);
    fLine[i] = f.startLine;
  }
  const fLineCol = numColumn(fLine);
  out.push(fs.length, fStr, new Scalar("u8", kindOf(fLineCol)), fLineCol);

  const ls = prof.locations;
  let nLines = 0;
  for (let i = 0; i < ls.length; i++) nLines += ls[i].lines.length;
  const lMapping: number[] = new Array(ls.length);
  const lAddr = new BigUint64Array(ls.length);
  const lFolded = new Uint8Array(ls.length);
  const lStart = new Uint32Array(ls.length + 1);
  const lFn = new Uint32Array(nLines);
  const lLine: number[] = new Array(nLines);
  let o = 0;
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    lMapping[i] = l.mapping;
    lAddr[i] = BigInt.asUintN(64, l.address);
    lFolded[i] = l.isFolded ? 1 : 0;
    for (const ln of l.lines) {
      lFn[o] = ln.fn;
      lLine[o] = ln.line;
      o++;
    }
    lStart[i + 1] = o;
  }
  const lMappingCol = numColumn(lMapping);
  const lLineCol = numColumn(lLine);
  out.push(ls.length, new Scalar("u8", kindOf(lMappingCol)), lMappingCol, lAddr, lFolded, lStart);
  out.push(nLines, lFn, new Scalar("u8", kindOf(lLineCol)), lLineCol);

  // Samples: the bulk of a profile, copied as they are.
  const s = prof.samples;
  out.push(s.count, s.locStart.length, s.locStart, s.locs.length, s.locs, s.values.length, s.values);

  if (!s.labels) {
    out.push(new Scalar("u8", 0));
  } else {
    const sl = s.labels;
    let total = 0;
    for (let i = 0; i < sl.length; i++) total += sl[i].length;
    const start = new Uint32Array(sl.length + 1);
    const strs = new Uint32Array(total * 3);
    const nums: number[] = new Array(total);
    let j = 0;
    for (let i = 0; i < sl.length; i++) {
      const row = sl[i];
      for (let k = 0; k < row.length; k++) {
        const l = row[k];
        strs[j * 3] = p.str(l.key);
        strs[j * 3 + 1] = p.str(l.str);
        strs[j * 3 + 2] = p.str(l.numUnit);
        nums[j] = l.num;
        j++;
      }
      start[i + 1] = j;
    }
    const numCol = numColumn(nums);
    out.push(new Scalar("u8", 1), sl.length, start, total, strs, new Scalar("u8", kindOf(numCol)), numCol);
  }

  // The string table is complete only now; encode it in one pass over the joined text.
  const units = new Uint32Array(p.strings.length);
  for (let i = 0; i < units.length; i++) units[i] = p.strings[i].length;
  p.units = units;
  p.blob = utf8Encoder.encode(p.strings.join(""));

  let size = 4 + units.byteLength + 4 + p.blob.byteLength;
  for (const x of out) {
    if (typeof x === "number") size += 4;
    else if (x instanceof Scalar) size += x.kind === "u8" ? 1 : 8;
    else size += x.byteLength;
  }
  p.size = size;
  return p;
}

class Writer {
  readonly buf: Uint8Array;
  readonly dv: DataView;
  pos = 0;
  constructor(size: number) {
    // Uninitialised memory (every byte gets written): a zeroed multi-MB allocation costs more
    // than the copy itself, since fresh pages are faulted in and cleared first.
    const b = Buffer.allocUnsafeSlow(size);
    this.buf = new Uint8Array(b.buffer, b.byteOffset, size);
    this.dv = new DataView(b.buffer, b.byteOffset, size);
  }
  u8(v: number) {
    this.buf[this.pos++] = v;
  }
  u32(v: number) {
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  f64(v: number) {
    this.dv.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
  i64(v: bigint) {
    this.dv.setBigInt64(this.pos, BigInt.asIntN(64, v), true);
    this.pos += 8;
  }
  raw(a: Raw) {
    this.buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), this.pos);
    this.pos += a.byteLength;
  }
}

/** Encodes a batch of records into one buffer (the payload of one WAL append). */
export function encodeRecords(recs: IngestRecord[]): Uint8Array {
  const prepared = recs.map(prepare);
  let size = 5;
  for (const p of prepared) size += p.size;
  const w = new Writer(size);
  w.u8(RECORD_VERSION);
  w.u32(recs.length);
  for (const p of prepared) {
    w.u32(p.units.length);
    w.raw(p.units);
    w.u32(p.blob.byteLength);
    w.raw(p.blob);
    for (const x of p.parts) {
      if (typeof x === "number") w.u32(x);
      else if (x instanceof Scalar) {
        if (x.kind === "u8") w.u8(x.v as number);
        else if (x.kind === "f64") w.f64(x.v as number);
        else w.i64(x.v as bigint);
      } else w.raw(x);
    }
  }
  if (w.pos !== size) throw new Error(`record: size mismatch ${w.pos} != ${size}`);
  return w.buf;
}

class Reader {
  readonly dv: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number) {
    if (this.pos + n > this.buf.byteLength) throw new Error(`record: truncated at byte ${this.pos} (need ${n})`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** n elements of width w copied into a fresh (hence aligned) ArrayBuffer. */
  private copy(n: number, w: number): ArrayBuffer {
    const len = n * w;
    this.need(len);
    const start = this.buf.byteOffset + this.pos;
    this.pos += len;
    return (this.buf.buffer as ArrayBuffer).slice(start, start + len);
  }
  u32s(n: number): Uint32Array {
    return new Uint32Array(this.copy(n, 4));
  }
  u64s(n: number): BigUint64Array {
    return new BigUint64Array(this.copy(n, 8));
  }
  f64s(n: number): Float64Array {
    return new Float64Array(this.copy(n, 8));
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  nums(n: number): ArrayLike<number> {
    const kind = this.u8();
    if (kind === NUM_U32) return this.u32s(n);
    if (kind === NUM_I32) return new Int32Array(this.copy(n, 4));
    if (kind === NUM_F64) return this.f64s(n);
    throw new Error(`record: bad number column kind ${kind} at byte ${this.pos - 1}`);
  }
}

function decodeOne(r: Reader): IngestRecord {
  const nStrings = r.u32();
  const units = r.u32s(nStrings);
  const text = utf8Decoder.decode(r.bytes(r.u32()));
  const strings: string[] = new Array(nStrings);
  let o = 0;
  for (let i = 0; i < nStrings; i++) {
    strings[i] = text.slice(o, o + units[i]);
    o += units[i];
  }
  if (o !== text.length) throw new Error("record: string table does not match its text");
  const str = (i: number): string => {
    const s = strings[i];
    if (s === undefined) throw new Error(`record: string index ${i} out of range`);
    return s;
  };

  const tenant = str(r.u32());
  const lab = r.u32s(r.u32());
  const labels: Labels = [];
  for (let i = 0; i < lab.length; i += 2) labels.push({ name: str(lab[i]), value: str(lab[i + 1]) });

  const st = r.u32s(r.u32());
  const sampleTypes: ValueType[] = [];
  for (let i = 0; i < st.length; i += 2) sampleTypes.push({ type: str(st[i]), unit: str(st[i + 1]) });
  const ptType = r.u32();
  const ptUnit = r.u32();
  const periodType = ptType === NONE ? null : { type: str(ptType), unit: str(ptUnit) };
  const period = r.f64();
  const timeNanos = r.i64();
  const durationNanos = r.f64();
  const defaultSampleType = str(r.u32());
  const dropFrames = str(r.u32());
  const keepFrames = str(r.u32());
  const comments = Array.from(r.u32s(r.u32()), str);

  const nm = r.u32();
  const mAddr = r.u64s(nm * 3);
  const mStr = r.u32s(nm * 2);
  const mFlags = r.bytes(nm);
  const mappings: Mapping[] = new Array(nm);
  for (let i = 0; i < nm; i++) {
    const f = mFlags[i];
    mappings[i] = {
      memoryStart: mAddr[i * 3],
      memoryLimit: mAddr[i * 3 + 1],
      fileOffset: mAddr[i * 3 + 2],
      filename: str(mStr[i * 2]),
      buildId: str(mStr[i * 2 + 1]),
      hasFunctions: (f & FLAG_FUNCTIONS) !== 0,
      hasFilenames: (f & FLAG_FILENAMES) !== 0,
      hasLineNumbers: (f & FLAG_LINE_NUMBERS) !== 0,
      hasInlineFrames: (f & FLAG_INLINE_FRAMES) !== 0,
    };
  }

  const nf = r.u32();
  const fStr = r.u32s(nf * 3);
  const fLine = r.nums(nf);
  const functions: Func[] = new Array(nf);
  for (let i = 0; i < nf; i++) {
    functions[i] = { name: str(fStr[i * 3]), systemName: str(fStr[i * 3 + 1]), filename: str(fStr[i * 3 + 2]), startLine: fLine[i] };
  }

  const nl = r.u32();
  const lMapping = r.nums(nl);
  const lAddr = r.u64s(nl);
  const lFolded = r.bytes(nl);
  const lStart = r.u32s(nl + 1);
  const nLines = r.u32();
  const lFn = r.u32s(nLines);
  const lLine = r.nums(nLines);
  const locations: Location[] = new Array(nl);
  for (let i = 0; i < nl; i++) {
    const a = lStart[i];
    const b = lStart[i + 1];
    if (b < a || b > nLines) throw new Error(`record: bad line range for location ${i}`);
    const lines = new Array(b - a);
    for (let j = a; j < b; j++) lines[j - a] = { fn: lFn[j], line: lLine[j] };
    locations[i] = { mapping: lMapping[i], address: lAddr[i], lines, isFolded: lFolded[i] !== 0 };
  }

  const count = r.u32();
  const locStart = r.u32s(r.u32());
  const locs = r.u32s(r.u32());
  const values = r.f64s(r.u32());

  let sampleLabels: SampleLabel[][] | null = null;
  if (r.u8() !== 0) {
    const n = r.u32();
    const start = r.u32s(n + 1);
    const total = r.u32();
    const strs = r.u32s(total * 3);
    const nums = r.nums(total);
    sampleLabels = new Array(n);
    for (let i = 0; i < n; i++) {
      const a = start[i];
      const b = start[i + 1];
      if (b < a || b > total) throw new Error(`record: bad label range for sample ${i}`);
      const row: SampleLabel[] = new Array(b - a);
      for (let j = a; j < b; j++) row[j - a] = { key: str(strs[j * 3]), str: str(strs[j * 3 + 1]), num: nums[j], numUnit: str(strs[j * 3 + 2]) };
      sampleLabels[i] = row;
    }
  }

  const profile: Profile = {
    sampleTypes,
    periodType,
    period,
    timeNanos,
    durationNanos,
    defaultSampleType,
    comments,
    dropFrames,
    keepFrames,
    mappings,
    functions,
    locations,
    samples: { count, locStart, locs, values, labels: sampleLabels },
  };
  return { tenant, labels, profile };
}

/** Decodes a batch written by encodeRecords. Throws on an unknown version or malformed bytes. */
export function decodeRecords(bytes: Uint8Array): IngestRecord[] {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== RECORD_VERSION) throw new Error(`record: unknown version ${version}`);
  const n = r.u32();
  const out: IngestRecord[] = [];
  for (let i = 0; i < n; i++) out.push(decodeOne(r));
  if (r.pos !== bytes.byteLength) throw new Error(`record: ${bytes.byteLength - r.pos} trailing bytes`);
  return out;
}
