// Write-ahead log: numbered segment files of length + CRC32 framed records, group-committed, replayed
// at start-up. A torn tail is cut off at open; corruption elsewhere loses only the rest of its segment.

import * as fs from "node:fs";
import * as path from "node:path";
import { fsyncDir } from "../durable.ts";

export interface WALOptions {
  /** A segment is cut before a record would take it past this size (default 64 MiB). */
  segmentBytes?: number;
  /**
   * "always" (default): append() resolves after fdatasync. "none": after write(2), so records
   * survive a process crash but not a power loss; close() still syncs once.
   */
  fsync?: "always" | "none";
  /** Where repair and corruption messages go (default console.warn). */
  log?: (msg: string) => void;
}

/** Counters since open, for metrics and tests. */
export interface WALMetrics {
  /** Records written (acknowledged once their group's fsync completes). */
  appends: number;
  /** Groups committed: each is one or more write(2) calls and one fdatasync. */
  groups: number;
  fsyncs: number;
  /** Bytes written, frame headers included. */
  bytesWritten: number;
  segmentsCreated: number;
}

export interface ReplayStats {
  /** Records passed to the callback. */
  records: number;
  /** Bytes of intact frames (headers + payloads) read. */
  bytes: number;
  /** Bytes lost to corruption: the tail cut off at open plus the rest of any corrupt earlier segment. */
  truncatedBytes: number;
}

/** Frame header: u32 payload length, u32 CRC32 of the payload, both little-endian. */
export const FRAME_HEADER_BYTES = 8;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const MAX_RECORD_BYTES = 0xffffffff;
// Frames are copied into one buffer per write(2); past this a group is written in several writes.
const WRITE_CHUNK_BYTES = 4 * 1024 * 1024;
// Segments are read through a buffer this big, grown for larger records.
const SCAN_BUFFER_BYTES = 4 * 1024 * 1024;

export function segmentName(n: number): string {
  return String(n).padStart(8, "0");
}

interface Entry {
  /** null marks a cutSegment() request, ordered with the appends around it. */
  payload: Uint8Array | null;
  resolve: (segment: number) => void;
  reject: (err: unknown) => void;
}

interface Scan {
  /** Offset just past the last intact frame. */
  end: number;
  /** Bytes of the file that were considered. */
  size: number;
  records: number;
  /** Why scanning stopped before the end of the file, if it did. */
  problem: string | null;
  /** The problem is an I/O error, not bad content: the bytes past `end` are unknown, not bad. */
  io: boolean;
  /** Scanning paused at `end` because the byte budget was used; call again from there. */
  more?: boolean;
}

/** A growable read buffer shared by the segments of one scan. */
interface ScanBuffer {
  buf: Uint8Array;
}

/**
 * Streams a segment file through `sb`, calling fn for each intact payload (a view into sb.buf,
 * valid only during the call), and stops at the first bad frame. Reading through one reused
 * buffer is several times faster than reading whole segments: fresh multi-MB allocations pay
 * for page faults, while a 4 MiB buffer stays warm.
 */
function scanSegment(file: string, limit: number, sb: ScanBuffer, fn: ((payload: Uint8Array) => void) | null, from = 0, budget = Infinity): Scan {
  let fd = -1;
  let size: number;
  try {
    fd = fs.openSync(file, "r");
    size = Math.min(fs.fstatSync(fd).size, limit);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    return { end: 0, size: 0, records: 0, problem: `unreadable (${(err as Error).message})`, io: true };
  }
  try {
    let base = from; // file offset of sb.buf[0]
    let have = 0; // bytes of sb.buf holding file data
    let off = 0; // next frame, relative to base
    let records = 0;
    // Makes sb.buf hold at least n bytes from `off` on (the caller checked the file has them);
    // returns a problem instead of throwing, so only errors from fn propagate.
    const fill = (n: number): string | null => {
      if (off + n <= have) return null;
      if (n > sb.buf.byteLength) {
        const bigger = new Uint8Array(Math.max(n, sb.buf.byteLength * 2));
        bigger.set(sb.buf.subarray(off, have));
        sb.buf = bigger;
      } else sb.buf.copyWithin(0, off, have);
      base += off;
      have -= off;
      off = 0;
      while (have < n) {
        const want = Math.min(sb.buf.byteLength - have, size - base - have);
        let got: number;
        try {
          got = fs.readSync(fd, sb.buf, have, want, base + have);
        } catch (err) {
          return `read error (${(err as Error).message})`;
        }
        if (got <= 0) return "file shrank while being read";
        have += got;
      }
      return null;
    };
    const stop = (problem: string | null, io = false): Scan => ({ end: base + off, size, records, problem, io });
    for (;;) {
      const left = size - base - off;
      if (left === 0) return stop(null);
      if (base + off - from >= budget) return { ...stop(null), more: true };
      if (left < FRAME_HEADER_BYTES) return stop(`short header (${left} bytes)`);
      let problem = fill(FRAME_HEADER_BYTES);
      if (problem) return stop(problem, true);
      const b = sb.buf;
      const len = (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
      const crc = (b[off + 4] | (b[off + 5] << 8) | (b[off + 6] << 16) | (b[off + 7] << 24)) >>> 0;
      // Zero length is never written; it is what a zero-filled tail after a crash looks like.
      if (len === 0) return stop("zero length");
      if (len > left - FRAME_HEADER_BYTES) return stop(`short record (length ${len}, ${left - FRAME_HEADER_BYTES} bytes left)`);
      problem = fill(FRAME_HEADER_BYTES + len);
      if (problem) return stop(problem, true);
      const payload = sb.buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len);
      if (Bun.hash.crc32(payload) >>> 0 !== crc) return stop("CRC mismatch");
      if (fn) fn(payload);
      records++;
      off += FRAME_HEADER_BYTES + len;
    }
  } finally {
    fs.closeSync(fd);
  }
}

const REPLAY_SLICE_BYTES = 4 << 20;

function fdatasync(fd: number): Promise<void> {
  // The callback form runs on Bun's thread pool, so the event loop keeps accepting appends
  // (and serving requests) while the disk flushes; those appends form the next group.
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function writeAll(fd: number, buf: Uint8Array, pos: number): void {
  let off = 0;
  while (off < buf.byteLength) off += fs.writeSync(fd, buf, off, buf.byteLength - off, pos + off);
}

export class WAL {
  private readonly segmentBytes: number;
  private readonly sync: boolean;
  private readonly log: (msg: string) => void;
  /** Segment numbers on disk, ascending; the last is the one being written. */
  private segs: number[];
  private fd: number;
  /** Bytes of intact frames in the active segment: where the next write goes. */
  private size: number;
  private queue: Entry[] = [];
  private running: Promise<void> | null = null;
  private failed: Error | null = null;
  private closed = false;
  private truncatedAtOpen: number;
  readonly metrics: WALMetrics = { appends: 0, groups: 0, fsyncs: 0, bytesWritten: 0, segmentsCreated: 0 };

  private constructor(
    readonly dir: string,
    opts: WALOptions,
    segs: number[],
    fd: number,
    size: number,
    truncatedAtOpen: number,
  ) {
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.sync = (opts.fsync ?? "always") === "always";
    this.log = opts.log ?? ((m) => console.warn(m));
    this.segs = segs;
    this.fd = fd;
    this.size = size;
    this.truncatedAtOpen = truncatedAtOpen;
  }

  /** Opens (creating if needed) the WAL in dir, cutting any torn or corrupt tail off its last segment. */
  static async open(dir: string, opts: WALOptions = {}): Promise<WAL> {
    const log = opts.log ?? ((m: string) => console.warn(m));
    const sync = (opts.fsync ?? "always") === "always";
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      if (sync) fsyncDir(path.dirname(path.resolve(dir)));
    }
    const segs = fs
      .readdirSync(dir)
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (let i = 1; i < segs.length; i++) {
      if (segs[i] !== segs[i - 1] + 1) log(`wal ${dir}: segments ${segs[i - 1]} to ${segs[i]} are not contiguous; records in between are lost`);
    }

    if (segs.length === 0) {
      const fd = fs.openSync(path.join(dir, segmentName(1)), "wx", 0o644);
      if (sync) fsyncDir(dir);
      return new WAL(dir, opts, [1], fd, 0, 0);
    }

    const last = segs[segs.length - 1];
    const file = path.join(dir, segmentName(last));
    const fd = fs.openSync(file, "r+");
    try {
      const scan = scanSegment(file, Infinity, { buf: new Uint8Array(SCAN_BUFFER_BYTES) }, null);
      let truncated = 0;
      // Cutting off bytes that could not be read would destroy data that may well be intact.
      if (scan.io) throw new Error(`wal ${dir}: segment ${segmentName(last)}: ${scan.problem}`);
      if (scan.problem) {
        truncated = scan.size - scan.end;
        log(`wal ${dir}: segment ${segmentName(last)}: ${scan.problem} at offset ${scan.end}; truncating ${truncated} bytes (kept ${scan.records} records)`);
        fs.ftruncateSync(fd, scan.end);
        fs.fsyncSync(fd);
      }
      return new WAL(dir, opts, segs, fd, scan.end, truncated);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * Appends one record. Resolves once it is written (and, with fsync "always", on disk). Appends
   * made while a flush runs are written and synced together as the next group. Do not modify
   * `payload` until the promise settles.
   */
  append(payload: Uint8Array): Promise<void> {
    if (payload.byteLength === 0) return Promise.reject(new Error("wal: empty record"));
    if (payload.byteLength > MAX_RECORD_BYTES) return Promise.reject(new Error(`wal: record of ${payload.byteLength} bytes is too large`));
    return this.enqueue(payload).then(() => undefined);
  }

  /**
   * Starts a new segment and returns its number: every record appended before this call lies in
   * an earlier segment, every one appended after in this one or later. When the active segment
   * is still empty it is kept and its number returned.
   */
  cutSegment(): Promise<number> {
    return this.enqueue(null);
  }

  /** Segment numbers on disk, oldest first. */
  segments(): number[] {
    return this.segs.slice();
  }

  /** Deletes every segment numbered below `segment` (never the active one). Returns how many were deleted. */
  async truncateBefore(segment: number): Promise<number> {
    const active = this.segs[this.segs.length - 1];
    let deleted = 0;
    try {
      // Oldest first, so a failure part-way still leaves a contiguous run of segments.
      while (this.segs[0] < segment && this.segs[0] < active) {
        try {
          fs.unlinkSync(path.join(this.dir, segmentName(this.segs[0])));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        this.segs.shift();
        deleted++;
      }
    } finally {
      if (deleted > 0) fsyncDir(this.dir);
    }
    return deleted;
  }

  /**
   * Calls fn with every intact record, oldest first. A payload is a view into a reused read
   * buffer, valid only during the call: copy (or decode) what must outlive it. Meant for
   * start-up, before appends; waits for any in flight.
   */
  async replay(fn: (payload: Uint8Array) => void): Promise<ReplayStats> {
    while (this.running) await this.running;
    const stats: ReplayStats = { records: 0, bytes: 0, truncatedBytes: this.truncatedAtOpen };
    const segs = this.segs.slice();
    const sb: ScanBuffer = { buf: new Uint8Array(SCAN_BUFFER_BYTES) };
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      // The active segment is read only up to what this process knows is intact.
      const limit = i === segs.length - 1 ? this.size : Infinity;
      // Scanned in slices with a turn of the event loop between them, so a long replay does not
      // stall the server (it answers /ready with 503 meanwhile).
      let scan = scanSegment(path.join(this.dir, segmentName(s)), limit, sb, fn, 0, REPLAY_SLICE_BYTES);
      stats.records += scan.records;
      while (scan.more) {
        await new Promise((r) => setImmediate(r));
        scan = scanSegment(path.join(this.dir, segmentName(s)), limit, sb, fn, scan.end, REPLAY_SLICE_BYTES);
        stats.records += scan.records;
      }
      stats.bytes += scan.end;
      if (scan.problem) {
        const lost = scan.size - scan.end;
        stats.truncatedBytes += lost;
        this.log(`wal ${this.dir}: segment ${segmentName(s)}: ${scan.problem} at offset ${scan.end}; skipping the remaining ${lost} bytes`);
      }
    }
    return stats;
  }

  /** Waits for every append made so far, then syncs the active segment whatever the fsync policy. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    if (this.failed) throw this.failed;
    if (this.fd >= 0) await this.datasync();
  }

  /** Waits for pending appends, syncs and closes the active segment. Later appends reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.running) await this.running;
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      if (!this.failed) await fdatasync(fd);
    } finally {
      try {
        fs.closeSync(fd);
      } catch (err) {
        if (!this.failed) throw err; // after a failure the fd may be what broke
      }
    }
  }

  private enqueue(payload: Uint8Array | null): Promise<number> {
    if (this.closed) return Promise.reject(new Error("wal: closed"));
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ payload, resolve, reject });
      if (!this.running) this.running = this.run();
    });
  }

  /** The single writer: drains the queue one group at a time until it is empty. */
  private async run(): Promise<void> {
    // Yield once so appends issued in the same tick join the first group.
    await null;
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      try {
        const results = await this.commit(group);
        for (let i = 0; i < group.length; i++) group[i].resolve(results[i]);
      } catch (err) {
        // After a failed write or fsync the file's state is unknown (fsync errors are not
        // retryable on Linux), so the WAL refuses further appends instead of guessing.
        this.failed = err instanceof Error ? err : new Error(String(err));
        this.log(`wal ${this.dir}: write failed, refusing further appends: ${this.failed.message}`);
        for (const e of group) e.reject(this.failed);
        for (const e of this.queue) e.reject(this.failed);
        this.queue = [];
      }
    }
    // Cleared synchronously after the emptiness check, so an enqueue can never miss a running loop.
    this.running = null;
  }

  /** Writes one group in order (rotating as needed), then syncs; returns each entry's segment. */
  private async commit(group: Entry[]): Promise<number[]> {
    this.metrics.groups++;
    const results = new Array<number>(group.length);
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = () => {
      if (pending.length > 0) this.writeFrames(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    };
    for (let i = 0; i < group.length; i++) {
      const p = group[i].payload;
      if (p === null) {
        flush();
        if (this.size > 0) await this.rotate();
        results[i] = this.active();
        continue;
      }
      const frame = FRAME_HEADER_BYTES + p.byteLength;
      const used = this.size + pendingBytes;
      if (used > 0 && used + frame > this.segmentBytes) {
        flush();
        await this.rotate();
      }
      pending.push(p);
      pendingBytes += frame;
      this.metrics.appends++;
      if (pendingBytes >= WRITE_CHUNK_BYTES) flush();
      results[i] = this.active();
    }
    flush();
    if (this.sync) await this.datasync();
    return results;
  }

  private async datasync(): Promise<void> {
    this.metrics.fsyncs++;
    await fdatasync(this.fd);
  }

  private active(): number {
    return this.segs[this.segs.length - 1];
  }

  /** Frames the payloads into one buffer and writes it at the end of the active segment. */
  private writeFrames(payloads: Uint8Array[], total: number): void {
    // Uninitialised (every byte is written below); zeroing fresh pages costs more than the copy.
    const raw = Buffer.allocUnsafeSlow(total);
    const buf = new Uint8Array(raw.buffer, raw.byteOffset, total);
    const dv = new DataView(raw.buffer, raw.byteOffset, total);
    let off = 0;
    for (const p of payloads) {
      dv.setUint32(off, p.byteLength, true);
      dv.setUint32(off + 4, Bun.hash.crc32(p) >>> 0, true);
      buf.set(p, off + FRAME_HEADER_BYTES);
      off += FRAME_HEADER_BYTES + p.byteLength;
    }
    try {
      writeAll(this.fd, buf, this.size);
    } catch (err) {
      // Best effort: drop a partial write so the file ends on a frame boundary.
      try {
        fs.ftruncateSync(this.fd, this.size);
      } catch {}
      throw err;
    }
    this.size += total;
    this.metrics.bytesWritten += total;
  }

  /** Seals the active segment (synced, closed) and starts the next one. */
  private async rotate(): Promise<void> {
    if (this.sync) await this.datasync();
    fs.closeSync(this.fd);
    const next = this.active() + 1;
    // Set before anything can throw so a failure never leaves the closed fd in use.
    this.fd = -1;
    this.fd = fs.openSync(path.join(this.dir, segmentName(next)), "wx", 0o644);
    this.segs.push(next);
    this.size = 0;
    this.metrics.segmentsCreated++;
    if (this.sync) fsyncDir(this.dir);
  }
}
