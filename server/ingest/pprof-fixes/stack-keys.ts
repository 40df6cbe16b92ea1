// Content keys for stacks, stable across profiles of the same process: what the delta tracker
// remembers values by. A 53-bit hash of each frame's mapping, address and lines (function name,
// system name, file, start line; line number), leaf first; equal stacks get equal keys.

import type { Profile } from "../../../storage/model/profile.ts";

/** keys[i] for sample i; integers below 2^53, so they are exact as Map keys. */
export function stackKeys(p: Profile): Float64Array {
  const fnA = new Int32Array(p.functions.length);
  const fnB = new Int32Array(p.functions.length);
  for (let i = 0; i < p.functions.length; i++) {
    const f = p.functions[i];
    let a = hashA(f.name, 0x811c9dc5);
    let b = hashB(f.name, 0x2545f491);
    if (f.systemName !== f.name) {
      a = Math.imul(a, 31) ^ hashA(f.systemName, 1);
      b = Math.imul(b, 37) ^ hashB(f.systemName, 1);
    }
    fnA[i] = Math.imul(a, 31) ^ hashA(f.filename, 2) ^ f.startLine;
    fnB[i] = Math.imul(b, 37) ^ hashB(f.filename, 2) ^ Math.imul(f.startLine, 0x9e3779b1);
  }
  const mapA = new Int32Array(p.mappings.length);
  const mapB = new Int32Array(p.mappings.length);
  for (let i = 0; i < p.mappings.length; i++) {
    const m = p.mappings[i];
    mapA[i] = Math.imul(hashA(m.filename, 3), 31) ^ hashA(m.buildId, 4);
    mapB[i] = Math.imul(hashB(m.filename, 3), 37) ^ hashB(m.buildId, 4);
  }
  const locA = new Int32Array(p.locations.length);
  const locB = new Int32Array(p.locations.length);
  for (let i = 0; i < p.locations.length; i++) {
    const l = p.locations[i];
    const addr = l.address === 0n ? 0 : Number(l.address);
    let a = (l.mapping >= 0 ? mapA[l.mapping] : 0x3c6ef372) ^ (addr | 0);
    let b = Math.imul((l.mapping >= 0 ? mapB[l.mapping] : 0x7f4a7c15) ^ ((addr / 4294967296) | 0), 0x85ebca6b);
    for (const ln of l.lines) {
      a = Math.imul(a ^ fnA[ln.fn], 0x01000193) ^ ln.line;
      b = Math.imul(b ^ fnB[ln.fn], 0xc2b2ae35) ^ Math.imul(ln.line, 0x27d4eb2d);
    }
    locA[i] = a;
    locB[i] = b ^ (b >>> 15);
  }
  const s = p.samples;
  const keys = new Float64Array(s.count);
  for (let i = 0; i < s.count; i++) {
    let a = 0x811c9dc5;
    let b = 0x6a09e667;
    for (let j = s.locStart[i]; j < s.locStart[i + 1]; j++) {
      const l = s.locs[j];
      a = Math.imul(a ^ locA[l], 0x01000193);
      b = Math.imul((b << 5) ^ (b >>> 27) ^ locB[l], 0x9e3779b1);
    }
    b ^= b >>> 16;
    keys[i] = (a >>> 0) * 2097152 + (b >>> 11); // 32 + 21 bits
  }
  return keys;
}

// Two independent 32-bit string hashes (Bun's native murmur3 with different seeds, several times
// faster than a JS loop), so that keys carry 53 useful bits.
function hashA(s: string, seed: number): number {
  return Bun.hash.murmur32v3(s, seed) | 0;
}

function hashB(s: string, seed: number): number {
  return Bun.hash.murmur32v3(s, seed ^ 0x5bd1e995) | 0;
}
