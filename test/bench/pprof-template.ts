// Load for long benchmarks: a fixture encoded once (encodePprof), then re-emitted per request with
// new sample values, timestamp and service tag. Generating a body costs microseconds, so a soak
// measures the server, not the client.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { encodePprof } from "../../server/api/pprof-encode.ts";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import type { Profile } from "../../storage/model/profile.ts";

export const FIXTURES = new URL("../../../shared/fixtures/pprof/", import.meta.url).pathname;

export function unzip(b: Uint8Array): Uint8Array {
  return b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
}

export function loadFixture(name: string): Profile {
  return decodePprof(unzip(new Uint8Array(readFileSync(FIXTURES + name))));
}

// A 2026 timestamp in ns is a 9-byte varint (2^56 <= t < 2^63), so it can be rewritten in place.
const PLACEHOLDER_NS = BigInt(Date.UTC(2026, 0, 1)) * 1000000n;
// Function names end with this tag; its two digits are rewritten per service, so every service has
// symbols of its own, as 50 different programs would.
const TAG = "@s00";

/** A tiny seeded PRNG (mulberry32): the same (service, round) gives the same profile again. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal factors around 1 (σ 0.5), drawn once: a table lookup per sample keeps load cheap. */
const FACTORS = (() => {
  const r = rng(0x5eed);
  return Float64Array.from({ length: 4096 }, () => {
    // Box–Muller: a standard normal from two uniforms.
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return Math.exp(0.5 * z);
  });
})();

export class PprofTemplate {
  /** Sample values of the fixture, row-major (sample i, type j at i * k + j). */
  readonly base: Float64Array;
  readonly k: number;
  readonly count: number;
  // Computed on first use: the period per sample type, and the fixture's distinct stacks.
  private quanta: number[] | null = null;
  private stackIds: Uint32Array | null = null;
  private stackCount = 0;

  private constructor(
    /** Top-level fields before the samples, and after them. */
    private readonly head: Uint8Array,
    private readonly tail: Uint8Array,
    /** Each sample's fields other than its values (location ids, labels), as encoded. */
    private readonly sampleRest: Uint8Array[],
    private readonly timeOff: number,
    private readonly tagOffs: number[],
    readonly profile: Profile,
  ) {
    this.k = profile.sampleTypes.length;
    this.count = profile.samples.count;
    this.base = profile.samples.values;
  }

  static from(p: Profile, opts: { durationNanos?: number; tagServices?: boolean } = {}): PprofTemplate {
    const tagged: Profile = {
      ...p,
      timeNanos: PLACEHOLDER_NS,
      durationNanos: opts.durationNanos ?? p.durationNanos,
      functions: opts.tagServices ? p.functions.map((f) => ({ ...f, name: f.name + TAG })) : p.functions,
    };
    for (const v of p.samples.values) if (!(Number.isSafeInteger(v) && v >= 0)) throw new Error(`template: value ${v} is not a non-negative integer`);
    const bytes = encodePprof(tagged);
    let first = -1;
    let last = -1;
    const rest: Uint8Array[] = [];
    let timeAt = -1;
    const strings: { start: number; end: number }[] = [];
    for (const f of fields(bytes, 0, bytes.length)) {
      if (f.field === 2) {
        if (first < 0) first = f.start;
        else if (last !== f.start) throw new Error("template: samples are not contiguous");
        last = f.end;
        const parts: Uint8Array[] = [];
        for (const s of fields(bytes, f.valueStart, f.end)) if (s.field !== 2) parts.push(bytes.subarray(s.start, s.end));
        rest.push(concat(parts));
      } else if (f.field === 9) timeAt = f.valueStart;
      else if (f.field === 6) strings.push({ start: f.valueStart, end: f.end });
    }
    if (first < 0 || rest.length !== p.samples.count) throw new Error(`template: ${rest.length} samples encoded, the profile has ${p.samples.count}`);
    if (timeAt < last || readVarintLength(bytes, timeAt) !== 9) throw new Error("template: time_nanos is not a 9-byte varint after the samples");
    const tagOffs: number[] = [];
    const tagBytes = new TextEncoder().encode(TAG);
    for (const s of strings) {
      const at = s.end - tagBytes.length;
      if (at >= s.start && tagBytes.every((b, i) => bytes[at + i] === b)) tagOffs.push(at - last + 2);
    }
    if (opts.tagServices && tagOffs.length === 0) throw new Error("template: no tagged function names found");
    return new PprofTemplate(bytes.slice(0, first), bytes.slice(last), rest, timeAt - last, tagOffs, p);
  }

  /**
   * Fills `out` with the values of one profile (the same for the same seed): each sample's values
   * times a factor of its own, log-normal around 1 (σ 0.5), zero for one sample in ten (a stack
   * not seen in this profile). Types whose values are all multiples of the period stay so: a
   * count of 1 becomes 0, 1, 2…, and count × period = cpu time still holds.
   */
  values(seed: number, out = new Float64Array(this.base.length)): Float64Array {
    const r = rng(seed);
    const k = this.k;
    const q = this.quantum;
    for (let i = 0; i < this.count; i++) {
      const u = r();
      const f = u < 0.1 ? 0 : FACTORS[Math.floor(((u - 0.1) / 0.9) * FACTORS.length)];
      for (let j = 0; j < k; j++) out[i * k + j] = q[j] * Math.round((this.base[i * k + j] / q[j]) * f);
    }
    return out;
  }

  /** Per sample type: the period when every value is a multiple of it, else 1. */
  private get quantum(): number[] {
    if (!this.quanta) {
      const p = this.profile.period;
      this.quanta = Array.from({ length: this.k }, (_, j) => {
        for (let i = 0; i < this.count; i++) if (!(p > 1 && this.base[i * this.k + j] % p === 0)) return 1;
        return p;
      });
    }
    return this.quanta;
  }

  /**
   * The rows a store keeps for one profile with these values: one per distinct stack with a
   * non-zero sum of sample type `t`, ids local to this template. The floor of query benchmarks.
   */
  rows(values: Float64Array, t: number): { ids: Uint32Array; vals: Float64Array } {
    if (!this.stackIds) {
      const s = this.profile.samples;
      const index = new Map<string, number>();
      this.stackIds = new Uint32Array(s.count);
      for (let i = 0; i < s.count; i++) {
        const key = s.locs.subarray(s.locStart[i], s.locStart[i + 1]).join(",");
        let id = index.get(key);
        if (id === undefined) index.set(key, (id = index.size));
        this.stackIds[i] = id;
      }
      this.stackCount = index.size;
    }
    const sums = new Float64Array(this.stackCount);
    for (let i = 0; i < this.count; i++) sums[this.stackIds[i]] += values[i * this.k + t];
    let n = 0;
    for (const v of sums) if (v !== 0) n++;
    const ids = new Uint32Array(n);
    const vals = new Float64Array(n);
    for (let id = 0, o = 0; id < sums.length; id++) {
      if (sums[id] === 0) continue;
      ids[o] = id;
      vals[o++] = sums[id];
    }
    return { ids, vals };
  }

  /** Number of distinct stacks of the fixture (the size of a floor's sum array). */
  get stacks(): number {
    if (!this.stackIds) this.rows(this.base, 0);
    return this.stackCount;
  }

  /**
   * Uncompressed pprof bytes with these values (row-major, non-negative integers), timestamp and
   * service tag (0–99). Samples whose values are all zero are left out, as a profiler would.
   */
  body(values: Float64Array, timeMs: number, service = 0): Uint8Array<ArrayBuffer> {
    const k = this.k;
    const msgLen = new Int32Array(this.count);
    const valLen = new Int32Array(this.count);
    let size = this.head.length + this.tail.length;
    for (let i = 0; i < this.count; i++) {
      let vlen = 0;
      let any = false;
      for (let j = i * k; j < i * k + k; j++) {
        vlen += varintLength(values[j]);
        if (values[j] !== 0) any = true;
      }
      if (!any) continue;
      valLen[i] = vlen;
      const m = this.sampleRest[i].length + 1 + varintLength(vlen) + vlen;
      msgLen[i] = m;
      size += 1 + varintLength(m) + m;
    }
    const out = new Uint8Array(size);
    out.set(this.head, 0);
    let pos = this.head.length;
    for (let i = 0; i < this.count; i++) {
      const m = msgLen[i];
      if (m === 0) continue;
      out[pos++] = 0x12; // Profile.sample, length-delimited
      pos = putVarint(out, pos, m);
      // A byte loop: set() costs more than it saves on a few bytes.
      const rest = this.sampleRest[i];
      for (let b = 0; b < rest.length; b++) out[pos++] = rest[b];
      out[pos++] = 0x12; // Sample.value, packed
      pos = putVarint(out, pos, valLen[i]);
      for (let j = i * k; j < i * k + k; j++) pos = putVarint(out, pos, values[j]);
    }
    out.set(this.tail, pos);
    const tail = pos;
    let t = BigInt(timeMs) * 1000000n;
    for (let i = 0; i < 8; i++, t >>= 7n) out[tail + this.timeOff + i] = Number(t & 0x7fn) | 0x80;
    out[tail + this.timeOff + 8] = Number(t);
    const d0 = 0x30 + Math.floor(service / 10);
    const d1 = 0x30 + (service % 10);
    for (const off of this.tagOffs) {
      out[tail + off] = d0;
      out[tail + off + 1] = d1;
    }
    return out;
  }
}

interface Field {
  field: number;
  /** The whole field, tag included. */
  start: number;
  end: number;
  /** Where the value (or the bytes of a length-delimited field) starts. */
  valueStart: number;
}

/** The top-level fields of a protobuf message in bytes[from, to). */
function* fields(b: Uint8Array, from: number, to: number): Generator<Field> {
  let pos = from;
  while (pos < to) {
    const start = pos;
    let tag = 0;
    for (let s = 0; ; s += 7) {
      const x = b[pos++];
      tag |= (x & 0x7f) << s;
      if (x < 0x80) break;
    }
    const valueStart = pos;
    switch (tag & 7) {
      case 0:
        while (b[pos++] >= 0x80);
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        let len = 0;
        for (let s = 0; ; s += 7) {
          const x = b[pos++];
          len += (x & 0x7f) * 2 ** s;
          if (x < 0x80) break;
        }
        yield { field: tag >>> 3, start, end: pos + len, valueStart: pos };
        pos += len;
        continue;
      }
      default:
        throw new Error(`template: wire type ${tag & 7} at ${start}`);
    }
    yield { field: tag >>> 3, start, end: pos, valueStart };
  }
}

function readVarintLength(b: Uint8Array, pos: number): number {
  let n = 1;
  while (b[pos++] >= 0x80) n++;
  return n;
}

function varintLength(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  for (v = Math.floor(v / 0x10000000); v > 0; v = Math.floor(v / 128)) n++;
  return n;
}

/** Writes a non-negative safe integer as a varint; returns the position after it. */
function putVarint(out: Uint8Array, pos: number, v: number): number {
  // Bit operations while the value fits in 31 bits; division beyond (cpu nanoseconds do).
  while (v >= 0x80000000) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The query floor: a typed-array sum by stack id over stored rows. */
export function sumRows(rows: { ids: Uint32Array; vals: Float64Array }[], stacks: number): Float64Array {
  const sums = new Float64Array(stacks);
  for (const { ids, vals } of rows) for (let i = 0; i < ids.length; i++) sums[ids[i]] += vals[i];
  return sums;
}
