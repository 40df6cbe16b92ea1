// decodePprof: pprof protobuf bytes → the canonical Profile, with a hand-written wire reader.
// It is the ingest hot path, so samples go straight into typed arrays and nothing is generated.

import { unprocessable } from "../errors.ts";
import type { Func, Line, Location, Mapping, Profile, SampleLabel, ValueType } from "../../storage/model/profile.ts";

// Reader state lives in module variables: JSC runs closures over a mutable `pos` about 2x slower.
// Notes for whoever tunes this file: keep each function's arithmetic in one number type (int32
// or double), and never hand a freshly made [] to hot code; either makes JSC deoptimise over
// and over (BUN_JSC_printEachOSRExit=1 shows it) and costs up to 2x.
const EMPTY = new Uint8Array(0);
let buf: Uint8Array = EMPTY;
let pos = 0;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TWO_32 = 4294967296;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const NO_LABELS: SampleLabel[] = Object.freeze([]) as unknown as SampleLabel[];

// Sample scratch, kept between calls and grown by doubling; the result gets exact-size copies.
// refs holds each sample location id minus one, so ids 1..n (nearly every profile) are already
// indexes and need only a range check. Id 0 wraps to BIG; ids of 2^32 and up are stored as BIG
// too, with the real id kept in bigRefs (position, id pairs).
const BIG = 0xffffffff;
let refs = new Uint32Array(4096);
let locStart = new Uint32Array(256);
let vals = new Float64Array(1024);
let nLocRefs = 0;
let nSamples = 0;
let nVals = 0;
// Samples almost always agree on their value count, so keep only the first one that differs.
let firstValCount = -1;
let oddValSample = -1;
let oddValCount = 0;
// Sample labels: sample index, key, str, num_unit in labIdx (4 slots each), num in labNum.
let labIdx = new Int32Array(1024);
let labNum = new Float64Array(256);
let nLabs = 0;

// Everything else is kept raw and resolved once the whole message is read, because writers may
// put the string table, locations and functions in any order. These arrays live as long as the
// module and are emptied after each call (see the note at the top).
const bigRefs: number[] = [];
const strings: string[] = [];
const sampleTypeRaw: number[] = []; // type, unit string indexes
const periodTypeRaw: number[] = [];
const commentRaw: number[] = [];
const mappings: Mapping[] = [];
const mapIds: number[] = [];
const mapStrs: number[] = []; // filename, build_id
const functions: Func[] = [];
const fnIds: number[] = [];
const fnStrs: number[] = []; // name, system_name, filename
const locations: Location[] = []; // mapping and line.fn hold raw ids until resolveLocations
const locIds: number[] = [];

/** Decode an uncompressed pprof message. Throws ApiError (unprocessable) naming what is wrong. */
export function decodePprof(bytes: Uint8Array): Profile {
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof RangeError) err = unprocessable("pprof: message too large to decode");
    if (err instanceof Error && err.message.startsWith("pprof:") && looksLikeText(bytes)) {
      err.message += "; the body looks like text, not pprof";
    }
    throw err;
  } finally {
    release();
  }
}

function decode(bytes: Uint8Array): Profile {
  buf = plainBytes(bytes);
  pos = 0;
  nLocRefs = nSamples = nVals = nLabs = 0;
  locStart[0] = 0;
  firstValCount = oddValSample = -1;
  oddValCount = 0;

  let dropFrames = 0;
  let keepFrames = 0;
  let timeNanos = 0n;
  let durationNanos = 0;
  let period = 0;
  let defaultSampleType = 0;

  const end = buf.length;
  while (pos < end) {
    const tag = readVarint();
    switch (tag) {
      case 0x12:
        readSample(subEnd(end));
        break;
      case 0x0a:
        readValueType(subEnd(end), sampleTypeRaw);
        break;
      case 0x1a:
        readMapping(subEnd(end));
        break;
      case 0x22:
        readLocation(subEnd(end));
        break;
      case 0x2a:
        readFunction(subEnd(end));
        break;
      case 0x32:
        readString(subEnd(end));
        break;
      case 0x38:
        dropFrames = readVarint();
        break;
      case 0x40:
        keepFrames = readVarint();
        break;
      case 0x48:
        timeNanos = readBigInt(true);
        break;
      case 0x50:
        durationNanos = readInt64();
        break;
      case 0x5a:
        periodTypeRaw.length = 0; // a repeated singular field: the last one wins
        readValueType(subEnd(end), periodTypeRaw);
        break;
      case 0x60:
        period = readInt64();
        break;
      case 0x68:
        commentRaw.push(readVarint());
        break;
      case 0x6a: {
        const e = subEnd(end);
        while (pos < e) commentRaw.push(readVarint());
        expectEnd(e);
        break;
      }
      case 0x70:
        defaultSampleType = readVarint();
        break;
      default:
        skipField(tag, end, 0);
    }
  }
  expectEnd(end);

  if (strings.length > 0 && strings[0] !== "") throw unprocessable("pprof: string_table[0] must be empty");
  const k = sampleTypeRaw.length / 2;
  checkValueCounts(k);

  const sampleTypes: ValueType[] = [];
  for (let i = 0; i < sampleTypeRaw.length; i += 2) {
    sampleTypes.push({ type: str(sampleTypeRaw[i], "sample_type"), unit: str(sampleTypeRaw[i + 1], "sample_type") });
  }
  const periodType =
    periodTypeRaw.length > 0
      ? { type: str(periodTypeRaw[0], "period_type"), unit: str(periodTypeRaw[1], "period_type") }
      : null;
  const comments: string[] = [];
  for (let i = 0; i < commentRaw.length; i++) comments.push(str(commentRaw[i], "comment"));
  for (let i = 0; i < mappings.length; i++) {
    mappings[i].filename = str(mapStrs[2 * i], "mapping filename");
    mappings[i].buildId = str(mapStrs[2 * i + 1], "mapping build_id");
  }
  for (let i = 0; i < functions.length; i++) {
    const f = functions[i];
    f.name = str(fnStrs[3 * i], "function name");
    f.systemName = str(fnStrs[3 * i + 1], "function system_name");
    f.filename = str(fnStrs[3 * i + 2], "function filename");
  }
  resolveLocations();

  return {
    sampleTypes,
    periodType,
    period,
    timeNanos,
    durationNanos,
    defaultSampleType: str(defaultSampleType, "default_sample_type"),
    comments,
    dropFrames: str(dropFrames, "drop_frames"),
    keepFrames: str(keepFrames, "keep_frames"),
    mappings: mappings.slice(),
    functions: functions.slice(),
    locations: locations.slice(),
    samples: {
      count: nSamples,
      locStart: locStart.slice(0, nSamples + 1),
      locs: resolveSampleLocations(),
      values: vals.slice(0, nVals),
      labels: buildLabels(),
    },
  };
}

// Drop every reference to the caller's data; keep scratch up to 8 MiB per array, because
// regrowing it for every large profile costs more than the memory.
function release(): void {
  buf = EMPTY;
  bigRefs.length = strings.length = sampleTypeRaw.length = periodTypeRaw.length = commentRaw.length = 0;
  mappings.length = mapIds.length = mapStrs.length = 0;
  functions.length = fnIds.length = fnStrs.length = 0;
  locations.length = locIds.length = 0;
  const keep = 8 << 20;
  if (refs.byteLength > keep) refs = new Uint32Array(4096);
  if (locStart.byteLength > keep) locStart = new Uint32Array(256);
  if (vals.byteLength > keep) vals = new Float64Array(1024);
  if (labIdx.byteLength > keep) labIdx = new Int32Array(1024);
  if (labNum.byteLength > keep) labNum = new Float64Array(256);
}

/**
 * A plain Uint8Array over the same memory. Buffers (node:zlib's output) have another shape, and
 * code that has seen both deoptimises.
 */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- wire primitives -------------------------------------------------------------------------

/** An unsigned varint that fits in 31 bits, or -1 when it does not (callers reject -1). */
function readVarint(): number {
  let b = buf[pos++];
  if (b < 0x80) return b;
  let x = b & 0x7f;
  b = buf[pos++];
  x |= (b & 0x7f) << 7;
  if (b < 0x80) return x;
  b = buf[pos++];
  x |= (b & 0x7f) << 14;
  if (b < 0x80) return x;
  b = buf[pos++];
  x |= (b & 0x7f) << 21;
  if (b < 0x80) return x;
  b = buf[pos++];
  x |= (b & 0x7f) << 28;
  if (b < 0x08) return x;
  pos -= 5;
  readLoHi(); // consumes the rest, and throws on a bad varint
  return -1;
}

/** A signed int64 as a number (exact within ±2^53); negative values always take 10 bytes. */
function readInt64(): number {
  let b = buf[pos++];
  if (b < 0x80) return b;
  let x = b & 0x7f;
  b = buf[pos++];
  x |= (b & 0x7f) << 7;
  if (b < 0x80) return x;
  b = buf[pos++];
  x |= (b & 0x7f) << 14;
  if (b < 0x80) return x;
  b = buf[pos++];
  x |= (b & 0x7f) << 21;
  if (b < 0x80) return x;
  pos -= 4;
  readLoHi();
  return hi * TWO_32 + u32(lo); // hi is signed, so this is the two's complement value
}

/** An unsigned varint as a number, exact below 2^53. */
function readU64(): number {
  readLoHi();
  return u32(hi) * TWO_32 + u32(lo);
}

// int32 bit pattern → unsigned, without `>>> 0`, whose results above 2^31 make JSC deoptimise.
function u32(x: number): number {
  return x < 0 ? x + TWO_32 : x;
}

// The two 32-bit halves of the last wide varint, as int32 bit patterns.
let lo = 0;
let hi = 0;

// Reading past the end yields undefined, which is never < 0x80, so a truncated varint runs to
// the 10-byte limit and is reported here.
function readLoHi(): void {
  let l = 0;
  let h = 0;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos++];
    const bits = b & 0x7f;
    if (i < 4) l |= bits << (7 * i);
    else if (i === 4) {
      l |= bits << 28;
      h = bits >> 4;
    } else h |= bits << (7 * i - 32);
    if (b < 0x80) {
      lo = l;
      hi = h;
      return;
    }
  }
  throw pos > buf.length ? truncated(buf.length) : unprocessable(`pprof: varint longer than 10 bytes at byte ${pos - 10}`);
}

function readBigInt(signed: boolean): bigint {
  readLoHi();
  if (hi === 0 && lo >= 0) return BigInt(lo);
  const v = (BigInt(u32(hi)) << 32n) | BigInt(u32(lo));
  return signed ? BigInt.asIntN(64, v) : v;
}

function readId(what: string): number {
  const v = readU64();
  if (v > MAX_SAFE) throw unprocessable(`pprof: ${what} id ${v} is too large (ids above 2^53 are not supported)`);
  return v;
}

/** Reads a length prefix and returns where that field ends, checked against the enclosing end. */
function subEnd(end: number): number {
  const len = readVarint();
  const e = pos + len;
  if (len < 0 || e > end) throw truncated(end);
  return e;
}

function expectEnd(e: number): void {
  if (pos !== e) throw truncated(Math.min(pos, e));
}

function truncated(at: number) {
  return unprocessable(`pprof: truncated message at byte ${at}`);
}

function skipField(tag: number, end: number, depth: number): void {
  if (tag < 8) throw unprocessable(`pprof: invalid field tag at byte ${pos}`);
  switch (tag & 7) {
    case 0:
      readVarint();
      break;
    case 1:
      pos += 8;
      break;
    case 2:
      pos = subEnd(end);
      break;
    case 5:
      pos += 4;
      break;
    case 3: {
      // A group, from proto2 days: skip to its matching end tag.
      if (depth > 32) throw unprocessable("pprof: groups nested too deeply");
      for (;;) {
        if (pos >= end) throw truncated(end);
        const t = readVarint();
        if ((t & 7) === 4) {
          if (t >>> 3 !== tag >>> 3) throw unprocessable(`pprof: mismatched end group at byte ${pos}`);
          break;
        }
        skipField(t, end, depth + 1);
      }
      break;
    }
    default:
      throw unprocessable(`pprof: invalid wire type ${tag & 7} at byte ${pos}`);
  }
  if (pos > end) throw truncated(end);
}

// ---- messages --------------------------------------------------------------------------------

function readSample(e: number): void {
  const v0 = nVals;
  while (pos < e) {
    const tag = readVarint();
    if (tag === 0x0a) {
      // Packed location ids. A varint is at least one byte, so the length bounds the count.
      // Ids below 2^14 (one or two bytes) are decoded inline on locals.
      const pe = subEnd(e);
      if (nLocRefs + (pe - pos) > refs.length) growRefs(nLocRefs + (pe - pos));
      const a = refs;
      const u = buf;
      let n = nLocRefs;
      let p = pos;
      while (p < pe) {
        const b = u[p];
        if (b < 0x80) {
          a[n++] = b - 1;
          p++;
        } else {
          const c = u[p + 1];
          if (c < 0x80) {
            a[n++] = (b & 0x7f) + (c << 7) - 1;
            p += 2;
          } else {
            pos = p;
            addRef(n++, readU64());
            p = pos;
          }
        }
      }
      pos = p;
      nLocRefs = n;
      expectEnd(pe);
    } else if (tag === 0x12) {
      const pe = subEnd(e);
      if (nVals + (pe - pos) > vals.length) vals = grow64(vals, nVals + (pe - pos));
      const a = vals;
      const u = buf;
      let n = nVals;
      let p = pos;
      while (p < pe) {
        const b = u[p];
        if (b < 0x80) {
          a[n++] = b;
          p++;
        } else {
          pos = p;
          a[n++] = readInt64();
          p = pos;
        }
      }
      pos = p;
      nVals = n;
      expectEnd(pe);
    } else if (tag === 0x08) {
      if (nLocRefs === refs.length) growRefs(nLocRefs + 1);
      addRef(nLocRefs++, readU64());
    } else if (tag === 0x10) {
      if (nVals === vals.length) vals = grow64(vals, nVals + 1);
      vals[nVals++] = readInt64();
    } else if (tag === 0x1a) {
      readLabel(subEnd(e));
    } else skipField(tag, e, 0);
  }
  expectEnd(e);
  if (++nSamples === locStart.length) {
    const a = new Uint32Array(locStart.length * 2);
    a.set(locStart);
    locStart = a;
  }
  locStart[nSamples] = nLocRefs;
  const nv = nVals - v0;
  if (firstValCount < 0) firstValCount = nv;
  else if (nv !== firstValCount && oddValSample < 0) {
    oddValSample = nSamples - 1;
    oddValCount = nv;
  }
}

function addRef(i: number, id: number): void {
  if (id > BIG) {
    refs[i] = BIG;
    bigRefs.push(i, id);
  } else refs[i] = id - 1;
}

function growRefs(min: number): void {
  const b = new Uint32Array(Math.max(min, refs.length * 2));
  b.set(refs);
  refs = b;
}

function grow64(a: Float64Array, min: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(Math.max(min, a.length * 2));
  b.set(a);
  return b;
}

function readLabel(e: number): void {
  let key = 0;
  let s = 0;
  let num = 0;
  let unit = 0;
  while (pos < e) {
    const tag = readVarint();
    if (tag === 0x08) key = readVarint();
    else if (tag === 0x10) s = readVarint();
    else if (tag === 0x18) num = readInt64();
    else if (tag === 0x20) unit = readVarint();
    else skipField(tag, e, 0);
  }
  expectEnd(e);
  const o = nLabs * 4;
  if (nLabs === labNum.length) labNum = grow64(labNum, nLabs + 1);
  if (o + 4 > labIdx.length) {
    const b = new Int32Array(Math.max(o + 4, labIdx.length * 2));
    b.set(labIdx);
    labIdx = b;
  }
  labIdx[o] = nSamples;
  labIdx[o + 1] = key;
  labIdx[o + 2] = s;
  labIdx[o + 3] = unit;
  labNum[nLabs++] = num;
}

function readString(e: number): void {
  try {
    strings.push(utf8.decode(buf.subarray(pos, e)));
  } catch {
    throw unprocessable(`pprof: invalid UTF-8 in string table (entry ${strings.length})`);
  }
  pos = e;
}

function readValueType(e: number, out: number[]): void {
  let type = 0;
  let unit = 0;
  while (pos < e) {
    const tag = readVarint();
    if (tag === 0x08) type = readVarint();
    else if (tag === 0x10) unit = readVarint();
    else skipField(tag, e, 0);
  }
  expectEnd(e);
  out.push(type, unit);
}

function readMapping(e: number): void {
  let id = 0;
  let file = 0;
  let build = 0;
  const m: Mapping = {
    memoryStart: 0n,
    memoryLimit: 0n,
    fileOffset: 0n,
    filename: "",
    buildId: "",
    hasFunctions: false,
    hasFilenames: false,
    hasLineNumbers: false,
    hasInlineFrames: false,
  };
  while (pos < e) {
    const tag = readVarint();
    switch (tag) {
      case 0x08:
        id = readId("mapping");
        break;
      case 0x10:
        m.memoryStart = readBigInt(false);
        break;
      case 0x18:
        m.memoryLimit = readBigInt(false);
        break;
      case 0x20:
        m.fileOffset = readBigInt(false);
        break;
      case 0x28:
        file = readVarint();
        break;
      case 0x30:
        build = readVarint();
        break;
      case 0x38:
        m.hasFunctions = readVarint() !== 0;
        break;
      case 0x40:
        m.hasFilenames = readVarint() !== 0;
        break;
      case 0x48:
        m.hasLineNumbers = readVarint() !== 0;
        break;
      case 0x50:
        m.hasInlineFrames = readVarint() !== 0;
        break;
      default:
        skipField(tag, e, 0);
    }
  }
  expectEnd(e);
  mappings.push(m);
  mapIds.push(id);
  mapStrs.push(file, build);
}

function readFunction(e: number): void {
  let id = 0;
  let name = 0;
  let sys = 0;
  let file = 0;
  let startLine = 0;
  while (pos < e) {
    const tag = readVarint();
    if (tag === 0x08) id = readId("function");
    else if (tag === 0x10) name = readVarint();
    else if (tag === 0x18) sys = readVarint();
    else if (tag === 0x20) file = readVarint();
    else if (tag === 0x28) startLine = readInt64();
    else skipField(tag, e, 0);
  }
  expectEnd(e);
  functions.push({ name: "", systemName: "", filename: "", startLine });
  fnIds.push(id);
  fnStrs.push(name, sys, file);
}

function readLocation(e: number): void {
  let id = 0;
  const loc: Location = { mapping: 0, address: 0n, lines: [], isFolded: false };
  while (pos < e) {
    const tag = readVarint();
    if (tag === 0x22) {
      const le = subEnd(e);
      const line: Line = { fn: 0, line: 0 };
      while (pos < le) {
        const t = readVarint();
        if (t === 0x08) line.fn = readId("function");
        else if (t === 0x10) line.line = readInt64();
        else skipField(t, le, 0);
      }
      expectEnd(le);
      loc.lines.push(line);
    } else if (tag === 0x08) id = readId("location");
    else if (tag === 0x10) loc.mapping = readId("mapping");
    else if (tag === 0x18) loc.address = readBigInt(false);
    else if (tag === 0x28) loc.isFolded = readVarint() !== 0;
    else skipField(tag, e, 0);
  }
  expectEnd(e);
  locations.push(loc);
  locIds.push(id);
}

// ---- resolution ------------------------------------------------------------------------------

function str(i: number, what: string): string {
  if (i >= 0 && i < strings.length) return strings[i];
  if (i === 0) return ""; // a profile without a string table only ever references ""
  const shown = i < 0 ? "of 2^31 or more" : String(i); // readVarint's -1
  throw unprocessable(`pprof: string index ${shown} out of range (table has ${strings.length}) in ${what}`);
}

function checkValueCounts(k: number): void {
  if (nSamples === 0) return;
  const bad = firstValCount !== k ? 0 : oddValSample;
  if (bad < 0) return;
  const n = bad === 0 ? firstValCount : oddValCount;
  throw unprocessable(`pprof: sample ${bad} has ${n} values but profile has ${k} sample types`);
}

/**
 * id → index for one kind of entity. Writers almost always number ids 1..n in order, which needs
 * no table at all (returns null); otherwise a dense array when the ids are small, else a Map.
 */
function indexIds(ids: number[], what: string): Int32Array | Map<number, number> | null {
  let dense = true;
  let max = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === 0) throw unprocessable(`pprof: ${what} ${i} has id 0`);
    if (id !== i + 1) dense = false;
    if (id > max) max = id;
  }
  if (dense) return null;
  if (max <= 4 * ids.length + 1024) {
    const t = new Int32Array(max + 1).fill(-1);
    for (let i = 0; i < ids.length; i++) {
      if (t[ids[i]] >= 0) throw unprocessable(`pprof: duplicate ${what} id ${ids[i]}`);
      t[ids[i]] = i;
    }
    return t;
  }
  const m = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) {
    if (m.has(ids[i])) throw unprocessable(`pprof: duplicate ${what} id ${ids[i]}`);
    m.set(ids[i], i);
  }
  return m;
}

function lookup(index: Int32Array | Map<number, number> | null, n: number, id: number): number {
  if (index === null) return id >= 1 && id <= n ? id - 1 : -1;
  if (index instanceof Int32Array) return id < index.length ? index[id] : -1;
  return index.get(id) ?? -1;
}

// The .NET profiler writes every function with id 0 and one function per location, meaning the
// location's id. Pyroscope repairs this the same way (FixFunctionIDForBrokenDotnet).
function functionIds(): number[] {
  if (fnIds.length === 0 || fnIds.length !== locIds.length) return fnIds;
  for (let i = 0; i < fnIds.length; i++) if (fnIds[i] !== 0) return fnIds;
  return locIds;
}

function resolveLocations(): void {
  const mapIndex = indexIds(mapIds, "mapping");
  const fnIndex = indexIds(functionIds(), "function");
  for (let i = 0; i < locations.length; i++) {
    const loc = locations[i];
    const mid = loc.mapping;
    if (mid !== 0) {
      loc.mapping = lookup(mapIndex, mappings.length, mid);
      if (loc.mapping < 0) throw unprocessable(`pprof: location id ${locIds[i]} references mapping id ${mid} that does not exist`);
    } else loc.mapping = -1;
    const lines = loc.lines;
    for (let j = 0; j < lines.length; j++) {
      const fid = lines[j].fn;
      const fi = lookup(fnIndex, functions.length, fid);
      if (fi < 0) throw unprocessable(`pprof: location id ${locIds[i]} references function id ${fid} that does not exist`);
      lines[j].fn = fi;
    }
  }
}

function resolveSampleLocations(): Uint32Array {
  const n = nLocRefs;
  const out = refs.slice(0, n);
  const nLoc = locations.length;
  const index = indexIds(locIds, "location");
  if (index === null) {
    // Ids 1..nLoc: refs already hold indexes, and anything else (0, too large) is >= nLoc.
    for (let i = 0; i < n; i++) if (out[i] >= nLoc) badSampleLocation(i);
  } else if (index instanceof Int32Array) {
    const t = index;
    for (let i = 0; i < n; i++) {
      const id = out[i] + 1; // BIG becomes 2^32, never in the table
      const idx = id < t.length ? t[id] : -1;
      if (idx < 0) badSampleLocation(i);
      out[i] = idx;
    }
  } else {
    const big = new Map<number, number>();
    for (let j = 0; j < bigRefs.length; j += 2) big.set(bigRefs[j], bigRefs[j + 1]);
    for (let i = 0; i < n; i++) {
      const r = out[i];
      const idx = index.get(r === BIG ? (big.get(i) ?? 0) : r + 1);
      if (idx === undefined) badSampleLocation(i);
      out[i] = idx!;
    }
  }
  return out;
}

function badSampleLocation(ref: number): never {
  // The owning sample is the last one whose first reference is at or before `ref`.
  let a = 0;
  let b = nSamples - 1;
  while (a < b) {
    const m = (a + b + 1) >> 1;
    if (locStart[m] <= ref) a = m;
    else b = m - 1;
  }
  let id = refs[ref] + 1;
  if (id > BIG) {
    id = 0;
    for (let j = 0; j < bigRefs.length; j += 2) if (bigRefs[j] === ref) id = bigRefs[j + 1];
  }
  throw unprocessable(`pprof: sample ${a} references location id ${id} that does not exist`);
}

function buildLabels(): SampleLabel[][] | null {
  if (nLabs === 0) return null;
  // Samples without labels share one frozen empty array: an accidental push fails loudly.
  const out: SampleLabel[][] = new Array(nSamples).fill(NO_LABELS);
  const a = labIdx;
  for (let i = 0; i < nLabs; i++) {
    const o = i * 4;
    const s = a[o];
    const l: SampleLabel = {
      key: str(a[o + 1], "label key"),
      str: str(a[o + 2], "label str"),
      num: labNum[i],
      numUnit: str(a[o + 3], "label num_unit"),
    };
    if (out[s] === NO_LABELS) out[s] = [l];
    else out[s].push(l);
  }
  return out;
}

// ---- diagnostics -----------------------------------------------------------------------------

/** True when the start of the body is mostly printable text (JSON, folded stacks, an HTML error). */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  if (n === 0) return false;
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f)) printable++;
    else if (b < 0x20) return false;
  }
  return printable >= n * 0.9;
}
