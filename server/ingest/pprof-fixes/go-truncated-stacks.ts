// Go truncates heap stacks at 32 frames and CPU stacks at 64, which hides the root side and
// multiplies stacks. Pyroscope's heuristic (RepairGoTruncatedStacktraces): a stack of 24+ frames
// whose 16 root-most frames also occur, a few frames further from the root, in another stack of
// 24+ frames is given that stack's missing root-side frames. Reimplemented over our model.

import type { Profile } from "../../../storage/model/profile.ts";
import { firstSlot, hashRange, sameRange, tableMask } from "./hash-table.ts";

const TOKENS = 8; // token positions tried per group, each one frame further from the root
const TOKEN_LEN = 16; // frames per token
const SUFFIX_LEN = TOKENS + TOKEN_LEN; // stacks shorter than this are neither repaired nor used
const MAX_CHAIN = 56; // a longer chain of references (a cycle) stops the whole repair

const HEAP_TYPES = new Set(["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]);

/** Whether `p` may hold truncated Go stacks: a Go heap or CPU profile with stacks near the limit. */
export function potentialTruncatedGoStacktraces(p: Profile): boolean {
  let minDepth: number;
  let maxDepth = 0;
  if (p.sampleTypes.some((t) => HEAP_TYPES.has(t.type))) {
    // Go 1.23+ heap profiles keep up to 128 frames; any stack past 32 means there is nothing to fix.
    minDepth = 32;
    maxDepth = 33;
  } else if (p.sampleTypes.some((t) => t.type === "cpu")) {
    minDepth = 64;
  } else return false;
  minDepth -= 4; // some truncated heap stacks are a little shorter than the limit
  const { count, locStart } = p.samples;
  let deepEnough = false;
  for (let i = 0; i < count; i++) {
    const d = locStart[i + 1] - locStart[i];
    if (d >= minDepth) deepEnough = true;
    if (maxDepth !== 0 && d >= maxDepth) return false;
  }
  return deepEnough;
}

export interface RepairOptions {
  /**
   * Groups (samples sharing their root-most frames) smaller than this are not used as references.
   * Pyroscope uses 1 since v1.7; its gotruncatefix/*.fixed test files were made with 2.
   */
  minGroupSize?: number;
}

/**
 * Repairs truncated stacks as Pyroscope does; returns `p` itself when nothing changes. Repaired
 * stacks are not merged with equal ones (the head sums equal stacks). `p` is not modified.
 */
export function repairGoTruncatedStacktraces(p: Profile, opts: RepairOptions = {}): Profile {
  const minGroupSize = opts.minGroupSize ?? 1;
  const s = p.samples;
  const { locStart, locs } = s;
  // Location ids as Pyroscope sees them (index + 1), byte-swapped so that comparing numbers
  // orders stacks like its comparison of little-endian id bytes.
  const order = new Uint32Array(p.locations.length);
  for (let i = 0; i < order.length; i++) order[i] = bswap32(i + 1);

  // Group samples by their SUFFIX_LEN root-most frames: groupOf[i] for sample i (-1: too short).
  const groupOf = new Int32Array(s.count).fill(-1);
  const groupFirst: number[] = []; // a group's first sample (in input order)
  const groupSize: number[] = [];
  const mask = tableMask(s.count);
  const table = new Int32Array(mask + 1); // slot → group + 1
  const groupHash: number[] = [];
  for (let i = 0; i < s.count; i++) {
    const end = locStart[i + 1];
    if (end - locStart[i] < SUFFIX_LEN) continue;
    const a = end - SUFFIX_LEN;
    const h = hashRange(locs, a, SUFFIX_LEN);
    let slot = firstSlot(h, mask);
    let g = -1;
    for (let e = table[slot]; e !== 0; e = table[(slot = (slot + 1) & mask)]) {
      if (groupHash[e - 1] === h && sameRange(locs, locStart[groupFirst[e - 1] + 1] - SUFFIX_LEN, a, SUFFIX_LEN)) {
        g = e - 1;
        break;
      }
    }
    if (g < 0) {
      g = groupFirst.length;
      groupFirst.push(i);
      groupSize.push(0);
      groupHash.push(h);
      table[slot] = g + 1;
    }
    groupSize[g]++;
    groupOf[i] = g;
  }
  const nGroups = groupFirst.length;
  if (nGroups === 0) return p;

  // Groups in the order of Pyroscope's sort of suffixes (their order decides ties below).
  const suffixAt = (g: number) => locStart[groupFirst[g] + 1] - SUFFIX_LEN;
  const sorted = Array.from({ length: nGroups }, (_, g) => g).sort((x, y) => {
    const a = suffixAt(x);
    const b = suffixAt(y);
    for (let j = 0; j < SUFFIX_LEN; j++) {
      const d = order[locs[a + j]] - order[locs[b + j]];
      if (d !== 0) return d;
    }
    return 0;
  });
  const rank = new Int32Array(nGroups); // group → position in sorted order
  for (let i = 0; i < nGroups; i++) rank[sorted[i]] = i;
  const first = sorted.map((g) => groupFirst[g]);

  // Token → the group where it sits furthest from the root (first such group on ties).
  const tokens = new TokenMap(locs, nGroups * TOKENS);
  for (let i = 0; i < nGroups; i++) {
    if (groupSize[sorted[i]] < minGroupSize) continue;
    const a = locStart[first[i] + 1] - SUFFIX_LEN;
    for (let j = 1; j <= TOKENS; j++) tokens.offer(a + TOKENS - j, i + 1, j);
  }
  // Each group's reference: the group holding its root-most token further from the root.
  const depGid = new Int32Array(nGroups);
  const depOff = new Int32Array(nGroups);
  for (let i = 0; i < nGroups; i++) {
    const t = tokens.find(locStart[first[i] + 1] - TOKEN_LEN);
    if (t >= 0 && tokens.gid[t] - 1 !== i) {
      depGid[i] = tokens.gid[t];
      depOff[i] = tokens.off[t];
    }
  }

  // Follow references transitively; a group's samples get the missing root-side frames, the
  // last `extraLen` frames of sample `extraFrom` (-1: none).
  const extraFrom = new Int32Array(nGroups).fill(-1);
  const extraLen = new Int32Array(nGroups);
  let added = 0;
  chains: for (let i = 0; i < nGroups; i++) {
    let gid = depGid[i];
    let cOff = depOff[i];
    let off = 0;
    let hops = 0;
    while (gid > 0 && cOff > 0) {
      off += cOff;
      const nx = depGid[gid - 1];
      if (nx === 0) break;
      cOff = depOff[gid - 1];
      gid = nx;
      if (++hops === MAX_CHAIN) break chains;
    }
    if (off === 0) continue;
    const ref = first[gid - 1];
    // The reference may be too short to hold the missing part; Pyroscope then leaves the group.
    if (off >= locStart[ref + 1] - locStart[ref]) continue;
    extraFrom[i] = ref;
    extraLen[i] = off;
    added += off * groupSize[sorted[i]];
  }
  if (added === 0) return p;

  // Copy runs of unchanged samples in one go; append the missing frames where they belong.
  const total = locStart[s.count];
  const out = new Uint32Array(total + added);
  const start = new Uint32Array(s.count + 1);
  let o = 0;
  let runFrom = 0; // first input position not yet copied
  let shift = 0; // frames added so far
  for (let i = 0; i < s.count; i++) {
    const g = groupOf[i];
    const r = g >= 0 ? rank[g] : -1;
    if (r >= 0 && extraFrom[r] >= 0) {
      const end = locStart[i + 1];
      o = copy(locs, runFrom, end, out, o);
      runFrom = end;
      const e = locStart[extraFrom[r] + 1];
      o = copy(locs, e - extraLen[r], e, out, o);
      shift += extraLen[r];
    }
    start[i + 1] = locStart[i + 1] + shift;
  }
  copy(locs, runFrom, total, out, o);
  return { ...p, samples: { ...s, locStart: start, locs: out } };
}

/** TOKEN_LEN-frame windows of `locs` by content, in an open-addressing table. */
class TokenMap {
  readonly at: Int32Array;
  readonly gid: Int32Array;
  readonly off: Int32Array;
  private readonly hash: Int32Array;
  private readonly mask: number;
  private readonly table: Int32Array; // slot → entry + 1
  private n = 0;

  constructor(
    private readonly locs: Uint32Array,
    capacity: number,
  ) {
    this.at = new Int32Array(capacity);
    this.gid = new Int32Array(capacity);
    this.off = new Int32Array(capacity);
    this.hash = new Int32Array(capacity);
    this.mask = tableMask(capacity);
    this.table = new Int32Array(this.mask + 1);
  }

  /** Index of the entry whose window equals locs[at .. at + TOKEN_LEN), or -1. */
  find(at: number): number {
    return this.table[this.probe(at, hashRange(this.locs, at, TOKEN_LEN))] - 1;
  }

  /** Records (gid, off) for the window at `at` unless an entry has an offset at least as large. */
  offer(at: number, gid: number, off: number): void {
    const h = hashRange(this.locs, at, TOKEN_LEN);
    const slot = this.probe(at, h);
    const e = this.table[slot] - 1;
    if (e >= 0) {
      if (off > this.off[e]) {
        this.gid[e] = gid;
        this.off[e] = off;
      }
      return;
    }
    const n = this.n++;
    this.at[n] = at;
    this.gid[n] = gid;
    this.off[n] = off;
    this.hash[n] = h;
    this.table[slot] = n + 1;
  }

  // The slot holding this window, or the empty slot where it would go.
  private probe(at: number, h: number): number {
    const { table, mask } = this;
    let slot = firstSlot(h, mask);
    for (let e = table[slot]; e !== 0; e = table[(slot = (slot + 1) & mask)]) {
      if (this.hash[e - 1] === h && sameRange(this.locs, this.at[e - 1], at, TOKEN_LEN)) break;
    }
    return slot;
  }
}

/** Copies src[a .. b) to dst at o and returns the new end; a loop beats set() for short runs. */
function copy(src: Uint32Array, a: number, b: number, dst: Uint32Array, o: number): number {
  if (b - a > 64) {
    dst.set(src.subarray(a, b), o);
    return o + b - a;
  }
  for (let j = a; j < b; j++) dst[o++] = src[j];
  return o;
}

function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}
