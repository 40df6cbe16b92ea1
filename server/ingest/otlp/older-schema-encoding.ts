// Test support: re-encodes a request the way a profiler built on opentelemetry-proto v1.8/v1.9
// writes it. Those revisions number Sample's fields values=2, attribute_indices=3, link_index=4
// (v1.10: attribute_indices=2, link_index=3, values=4); everything else is wire-identical. Used
// to reproduce the "wrong schema version" failure that the ingest path must report.

const LEN = 2;

function varint(b: Uint8Array, pos: number): [number, number] {
  let r = 0;
  let m = 1;
  for (;;) {
    if (pos >= b.length) throw new Error("premature end of data");
    const x = b[pos++];
    r += (x & 0x7f) * m;
    if (x < 0x80) return [r, pos];
    m *= 128;
  }
}

function putVarint(out: number[], v: number) {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Renumbers the fields of the messages reached through `path` (field numbers of nested messages). */
function renumber(b: Uint8Array, path: number[], map: Record<number, number>): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < b.length) {
    let key: number;
    [key, pos] = varint(b, pos);
    const no = Math.floor(key / 8);
    const wt = key % 8;
    const start = pos;
    let payload: Uint8Array | number[];
    if (wt === 0) [, pos] = varint(b, pos);
    else if (wt === 1) pos += 8;
    else if (wt === 5) pos += 4;
    else if (wt !== LEN) throw new Error(`unsupported wire type ${wt}`);
    if (wt === LEN) {
      let len: number;
      [len, pos] = varint(b, pos);
      payload = b.subarray(pos, pos + len);
      pos += len;
      if (path.length > 0 && no === path[0]) payload = renumber(payload, path.slice(1), map);
    } else payload = b.subarray(start, pos);
    putVarint(out, (path.length === 0 ? (map[no] ?? no) : no) * 8 + wt);
    if (wt === LEN) putVarint(out, payload.length);
    for (const x of payload) out.push(x);
  }
  return out;
}

/** An ExportProfilesServiceRequest (v1.10 bytes) with its samples in the v1.8/v1.9 layout. */
export function encodeSamplesAsV19(request: Uint8Array): Uint8Array<ArrayBuffer> {
  // request.resource_profiles(1) → scope_profiles(2) → profiles(2) → samples(2)
  return new Uint8Array(renumber(request, [1, 2, 2, 2], { 2: 3, 3: 4, 4: 2 }));
}
