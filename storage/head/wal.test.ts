// WAL tests: append/replay, torn and corrupt tails, rotation, truncation, group commit, and a
// real crash (SIGKILL of a child process mid-append).

import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { crashIndex, crashPayload } from "./wal-crash-child.ts";
import { FRAME_HEADER_BYTES, segmentName, WAL, type WALOptions } from "./wal.ts";

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-wal-"));
  dirs.push(d);
  return path.join(d, "wal");
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Payload i: distinct bytes of a length that varies with i. */
function payload(i: number, len = 10 + ((i * 37) % 500)): Uint8Array {
  const p = new Uint8Array(len);
  for (let j = 0; j < len; j++) p[j] = (i * 31 + j * 7) & 0xff;
  new DataView(p.buffer).setUint32(0, i, true);
  return p;
}

async function replayAll(w: WAL) {
  const out: Uint8Array[] = [];
  const stats = await w.replay((p) => out.push(p.slice()));
  return { out, stats };
}

async function openLogged(dir: string, opts: WALOptions = {}) {
  const logs: string[] = [];
  const wal = await WAL.open(dir, { ...opts, log: (m) => logs.push(m) });
  return { wal, logs };
}

function segPath(dir: string, n: number) {
  return path.join(dir, segmentName(n));
}

describe("WAL", () => {
  test("append then replay, across close and reopen", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir);
    const sent = Array.from({ length: 100 }, (_, i) => payload(i));
    for (const p of sent) await w.append(p);
    await w.close();
    await expect(w.append(payload(1))).rejects.toThrow(/closed/);

    const { wal, logs } = await openLogged(dir);
    const { out, stats } = await replayAll(wal);
    expect(out).toEqual(sent);
    expect(stats.records).toBe(100);
    expect(stats.bytes).toBe(sent.reduce((n, p) => n + p.byteLength + FRAME_HEADER_BYTES, 0));
    expect(stats.truncatedBytes).toBe(0);
    expect(logs).toEqual([]);
    expect(wal.segments()).toEqual([1]);
    expect(fs.readdirSync(dir)).toEqual(["00000001"]);
    await wal.close();
  });

  test("an empty WAL replays nothing; empty records are refused", async () => {
    const w = await WAL.open(tmpDir(), { fsync: "none" });
    expect((await replayAll(w)).stats).toEqual({ records: 0, bytes: 0, truncatedBytes: 0 });
    await expect(w.append(new Uint8Array(0))).rejects.toThrow(/empty/);
    await w.close();
  });

  // Each case damages the end of the last segment; `kept` is how many of the 20 records survive.
  const damages: [string, number, (file: string) => void][] = [
    ["cut mid-payload", 19, (f) => fs.truncateSync(f, fs.statSync(f).size - 3)],
    ["cut mid-header", 20, (f) => fs.appendFileSync(f, new Uint8Array(5))],
    ["garbage appended", 20, (f) => fs.appendFileSync(f, new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9]))],
    ["zeros appended (a crash after the size grew)", 20, (f) => fs.appendFileSync(f, new Uint8Array(4096))],
    ["length beyond the end", 20, (f) => fs.appendFileSync(f, new Uint8Array([0xff, 0xff, 0, 0, 0, 0, 0, 0, 1]))],
    ["CRC byte flipped in the last record", 19, (f) => flipByte(f, lastFrameOffset(f) + 4)],
    ["payload byte flipped in the last record", 19, (f) => flipByte(f, fs.statSync(f).size - 1)],
  ];

  test.each(damages)("torn tail: %s", async (_name, kept, damage) => {
    const dir = tmpDir();
    const w = await WAL.open(dir);
    const sent = Array.from({ length: 20 }, (_, i) => payload(i));
    for (const p of sent) await w.append(p);
    await w.close();
    const file = segPath(dir, 1);
    const intact = sent.slice(0, kept).reduce((n, p) => n + p.byteLength + FRAME_HEADER_BYTES, 0);
    const before = fs.statSync(file).size;
    damage(file);
    const damagedSize = fs.statSync(file).size;

    const { wal, logs } = await openLogged(dir);
    expect(logs.length).toBe(1);
    expect(logs[0]).toContain("truncating");
    expect(fs.statSync(file).size).toBe(intact);
    const { out, stats } = await replayAll(wal);
    expect(out).toEqual(sent.slice(0, kept));
    expect(stats.truncatedBytes).toBe(damagedSize - intact);
    expect(before).toBeGreaterThanOrEqual(intact);

    // The repaired WAL takes new appends, and a later open finds nothing to repair.
    const more = Array.from({ length: 5 }, (_, i) => payload(100 + i));
    for (const p of more) await wal.append(p);
    await wal.close();
    const again = await openLogged(dir);
    expect((await replayAll(again.wal)).out).toEqual([...sent.slice(0, kept), ...more]);
    expect(again.logs).toEqual([]);
    await again.wal.close();
  });

  test("corruption in an earlier segment skips the rest of that segment only", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir, { segmentBytes: 2000 });
    const sent = Array.from({ length: 40 }, (_, i) => payload(i, 300));
    for (const p of sent) await w.append(p);
    await w.close();
    expect(w.segments().length).toBeGreaterThan(3);
    // Segment 1 holds records 0..5 (6 × 308 bytes ≤ 2000); damage record 2.
    flipByte(segPath(dir, 1), 2 * 308 + FRAME_HEADER_BYTES + 10);

    const { wal, logs } = await openLogged(dir);
    expect(logs).toEqual([]); // only the last segment is repaired at open
    const { out, stats } = await replayAll(wal);
    expect(logs.length).toBe(1);
    expect(logs[0]).toContain("00000001");
    expect(out).toEqual([...sent.slice(0, 2), ...sent.slice(6)]);
    expect(stats.truncatedBytes).toBe(4 * 308);
    await wal.close();
  });

  test("rotation keeps segments under segmentBytes; a big record gets its own", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir, { segmentBytes: 1000, fsync: "none" });
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) sent.push(payload(i, 292)); // 300-byte frames: 3 per segment
    sent.push(payload(50, 5000));
    sent.push(payload(51, 10));
    for (const p of sent) await w.append(p);
    expect(w.segments()).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    const sizes = w.segments().map((s) => fs.statSync(segPath(dir, s)).size);
    expect(sizes.slice(0, 16).every((s) => s === 900)).toBe(true);
    expect(sizes[16]).toBe(600);
    expect(sizes[17]).toBe(5008);
    expect(sizes[18]).toBe(18);
    expect(w.metrics.segmentsCreated).toBe(18);
    await w.close();
    const again = await WAL.open(dir);
    expect((await replayAll(again)).out).toEqual(sent);
    await again.close();
  });

  test("cutSegment and truncateBefore", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir);
    expect(await w.cutSegment()).toBe(1); // nothing written yet: stays in segment 1
    const a = [payload(1), payload(2)];
    const b = [payload(3), payload(4)];
    // Appends issued on either side of the cut, without awaiting, still land on their side.
    const pa = a.map((p) => w.append(p));
    const cut = w.cutSegment();
    const pb = b.map((p) => w.append(p));
    await Promise.all([...pa, ...pb]);
    expect(await cut).toBe(2);
    expect(w.segments()).toEqual([1, 2]);

    expect(await w.truncateBefore(1)).toBe(0);
    expect(await w.truncateBefore(99)).toBe(1); // never the active segment
    expect(w.segments()).toEqual([2]);
    expect(fs.existsSync(segPath(dir, 1))).toBe(false);
    expect((await replayAll(w)).out).toEqual(b);
    await w.close();

    const again = await WAL.open(dir);
    expect(again.segments()).toEqual([2]);
    expect((await replayAll(again)).out).toEqual(b);
    await again.append(payload(5));
    expect(await again.cutSegment()).toBe(3);
    await again.close();
  });

  test("group commit: 1000 concurrent appends share a few fsyncs", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir);
    const sent = Array.from({ length: 1000 }, (_, i) => payload(i, 1024));
    await Promise.all(sent.map((p) => w.append(p)));
    expect(w.metrics.appends).toBe(1000);
    expect(w.metrics.fsyncs).toBeLessThanOrEqual(2);

    // A steady stream: appends arriving during one fsync are committed by the next.
    const before = w.metrics.fsyncs;
    const stream: Promise<void>[] = [];
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 50; i++) stream.push(w.append(payload(1000 + wave * 50 + i, 100)));
      await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(stream);
    expect(w.metrics.fsyncs - before).toBeLessThanOrEqual(21);
    await w.close();
    const again = await WAL.open(dir);
    const { out } = await replayAll(again);
    expect(out.length).toBe(2000);
    expect(out.slice(0, 1000)).toEqual(sent);
    await again.close();
  });

  test("after a failed write, appends reject and the acknowledged records stay intact", async () => {
    const dir = tmpDir();
    const { wal, logs } = await openLogged(dir);
    await wal.append(payload(1));
    // Pull the file out from under the writer: the next write fails with EBADF.
    fs.closeSync((wal as unknown as { fd: number }).fd);
    const results = await Promise.allSettled([wal.append(payload(2)), wal.append(payload(3))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await expect(wal.append(payload(4))).rejects.toThrow();
    expect(logs.some((l) => l.includes("refusing further appends"))).toBe(true);
    await wal.close();
    const again = await WAL.open(dir);
    expect((await replayAll(again)).out).toEqual([payload(1)]);
    await again.close();
  });

  test("a gap in segment numbers is logged, not fatal", async () => {
    const dir = tmpDir();
    const w = await WAL.open(dir, { segmentBytes: 100 });
    for (let i = 0; i < 3; i++) await w.append(payload(i, 80));
    await w.close();
    fs.unlinkSync(segPath(dir, 2));
    const { wal, logs } = await openLogged(dir);
    expect(logs.length).toBe(1);
    expect(logs[0]).toContain("not contiguous");
    expect((await replayAll(wal)).out).toEqual([payload(0, 80), payload(2, 80)]);
    await wal.close();
  });

  test("crash: every acknowledged record survives SIGKILL", async () => {
    const dir = tmpDir();
    const child = path.join(import.meta.dir, "wal-crash-child.ts");
    const acked = new Set<number>();
    let next = 0;
    // Three kills in a row: each run appends after the previous run's repair.
    for (let round = 0; round < 3; round++) {
      const proc = Bun.spawn([process.execPath, child, dir, String(next)], { stdout: "pipe", stderr: "inherit" });
      const reader = proc.stdout.getReader();
      const dec = new TextDecoder();
      let text = "";
      let seen = 0;
      let killed = false;
      const target = 150 + round * 70;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        const lines = text.split("\n");
        text = lines.pop()!;
        for (const l of lines) {
          acked.add(Number(l));
          seen++;
        }
        if (!killed && seen >= target) {
          proc.kill("SIGKILL");
          killed = true;
        }
      }
      expect(await proc.exited).not.toBe(0);
      expect(killed).toBe(true);
      next = Math.max(...acked) + 1000;
    }

    const { wal } = await openLogged(dir);
    const found = new Set<number>();
    await wal.replay((p) => {
      const i = crashIndex(p);
      expect(i).toBeGreaterThanOrEqual(0); // intact, not just present
      expect(found.has(i)).toBe(false);
      found.add(i);
    });
    for (const i of acked) expect(found.has(i)).toBe(true);
    expect(wal.segments().length).toBeGreaterThan(1);
    await wal.append(crashPayload(1 << 30));
    await wal.close();
  }, 60_000);

  test("speed: fsync=always throughput with 32 appenders, and replay", async () => {
    const lines: string[] = [];
    for (const size of [1024, 100 * 1024]) {
      const dir = tmpDir();
      const w = await WAL.open(dir);
      const p = new Uint8Array(size).fill(7);
      const deadline = performance.now() + 1000;
      let n = 0;
      const t0 = performance.now();
      const appender = async () => {
        while (performance.now() < deadline) {
          await w.append(p);
          n++;
        }
      };
      await Promise.all(Array.from({ length: 32 }, appender));
      const secs = (performance.now() - t0) / 1000;
      lines.push(
        `wal: ${size / 1024} KB × 32 appenders, fsync=always: ${(n / secs).toFixed(0)} records/s, ` +
          `${((n * size) / secs / 1e6).toFixed(1)} MB/s, ${(w.metrics.appends / w.metrics.fsyncs).toFixed(1)} records per fsync`,
      );
      await w.close();
      const r = await WAL.open(dir);
      const t1 = performance.now();
      const stats = await r.replay(() => {});
      const rs = (performance.now() - t1) / 1000;
      expect(stats.records).toBe(n);
      lines.push(`wal: replay of ${(stats.bytes / 1e6).toFixed(1)} MB in ${stats.records} records: ${(stats.bytes / rs / 1e6).toFixed(0)} MB/s`);
      await r.close();
    }
    console.log(lines.join("\n"));
  }, 60_000);
});

function flipByte(file: string, offset: number) {
  const b = fs.readFileSync(file);
  b[offset] ^= 0xff;
  fs.writeFileSync(file, b);
}

/** Offset of the last frame's header in an intact segment. */
function lastFrameOffset(file: string): number {
  const b = fs.readFileSync(file);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 0;
  let last = 0;
  while (off < b.byteLength) {
    last = off;
    off += FRAME_HEADER_BYTES + dv.getUint32(off, true);
  }
  return last;
}

describe("flush", () => {
  test("with fsync none, flush waits for queued appends and syncs; they replay", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wal-flush-"));
    try {
      const wal = await WAL.open(dir, { fsync: "none" });
      const pending = Array.from({ length: 50 }, (_, i) => wal.append(new Uint8Array([i + 1, 2, 3])));
      const before = wal.metrics.fsyncs;
      await wal.flush();
      expect(wal.metrics.fsyncs).toBe(before + 1);
      expect(wal.metrics.appends).toBe(50);
      await Promise.all(pending);
      await wal.close();
      const again = await WAL.open(dir, { fsync: "none" });
      const seen: number[] = [];
      await again.replay((p) => seen.push(p[0]));
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      await again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
