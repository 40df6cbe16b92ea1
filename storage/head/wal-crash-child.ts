// Test fixture for wal.test.ts: appends numbered records to a WAL and prints each index once it is
// acknowledged, until the parent SIGKILLs it. Run as `bun wal-crash-child.ts <dir> <first index>`.

import { WAL } from "./wal.ts";

/** The payload of record i: its index, then bytes derived from it, 16 B to ~40 KB long. */
export function crashPayload(i: number): Uint8Array {
  const len = 16 + ((i * 7919) % 40_000);
  const out = new Uint8Array(len);
  new DataView(out.buffer).setUint32(0, i, true);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let j = 4; j < len; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[j] = x & 0xff;
  }
  return out;
}

/** The index stored in a payload, or -1 if the payload is not exactly crashPayload(index). */
export function crashIndex(p: Uint8Array): number {
  if (p.byteLength < 4) return -1;
  const i = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);
  const want = crashPayload(i);
  if (want.byteLength !== p.byteLength) return -1;
  for (let j = 0; j < want.byteLength; j++) if (want[j] !== p[j]) return -1;
  return i;
}

if (import.meta.main) {
  const [dir, first] = process.argv.slice(2);
  // Small segments so the kill can also land during a rotation.
  const wal = await WAL.open(dir, { fsync: "always", segmentBytes: 256 * 1024 });
  let next = Number(first);
  const worker = async () => {
    for (;;) {
      const i = next++;
      await wal.append(crashPayload(i));
      process.stdout.write(`${i}\n`);
    }
  };
  // Several appenders so kills also land in the middle of group commits.
  await Promise.all(Array.from({ length: 8 }, worker));
}
