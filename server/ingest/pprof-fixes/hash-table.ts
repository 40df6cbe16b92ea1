// Small helpers for the open-addressing tables the fix-ups use on their hot paths: keys are
// 32-bit hashes of runs of location indexes, verified against the runs themselves on a hit.
// (A Map keyed by such hashes was several times slower on 40k-sample profiles.)

/** Mask of a power-of-two table with room for `n` entries at most half full. */
export function tableMask(n: number): number {
  let size = 16;
  while (size < n * 2) size *= 2;
  return size - 1;
}

/** First slot for hash `h`; probe on with (slot + 1) & mask. */
export function firstSlot(h: number, mask: number): number {
  return (h ^ (h >>> 15)) & mask;
}

/** FNV-1a style hash of a[at .. at + n). */
export function hashRange(a: Uint32Array, at: number, n: number): number {
  let h = 0x811c9dc5 ^ n;
  for (let k = at; k < at + n; k++) h = Math.imul(h ^ a[k], 0x01000193);
  return h;
}

export function sameRange(a: Uint32Array, i: number, j: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[i + k] !== a[j + k]) return false;
  return true;
}
