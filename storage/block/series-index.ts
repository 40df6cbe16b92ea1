// The series index of a block (index.sqlite): each series' labels, time range, sample-row range
// in profiles.parquet, and its profiles (time, sample count, duration) packed in a small blob.

import { Database } from "bun:sqlite";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { sortLabels, type Labels } from "../model/labels.ts";
import { ByteSink, ByteSource } from "./varint.ts";

/** One series as the index stores it. Sample rows first_row..last_row (inclusive) are its. */
export interface IndexSeries {
  ref: number;
  labels: Labels;
  profileType: string;
  minTime: number;
  maxTime: number;
  firstRow: number;
  lastRow: number;
  numProfiles: number;
}

/** A series' profiles in time order: profile i covers sampleCount[i] rows from rowStart[i]. */
export interface SeriesProfiles {
  timeMs: Float64Array;
  durationNs: Float64Array;
  rowStart: Float64Array;
  sampleCount: Uint32Array;
}

/**
 * A series as a block writer builds it: its profiles are encoded into the index's blob as they
 * come (a few bytes each), so a merge writing a day-sized block holds ~3 bytes per profile, not
 * three JS arrays (24+ bytes per profile, 80 MB for the soak's day).
 */
export class SeriesToIndex {
  numProfiles = 0;
  rows = 0;
  minTime = 0;
  maxTime = 0;
  private blob: ByteSink | null = new ByteSink();
  private bytes: Uint8Array | null = null;
  private prevD = 0;

  constructor(
    readonly labels: Labels,
    readonly profileType: string,
    /** Its first sample row in profiles.parquet. */
    readonly firstRow: number,
  ) {}

  /** Adds the next profile (in time order). */
  add(timeMs: number, sampleCount: number, durationNs: number): void {
    const b = this.blob;
    if (!b) throw new Error("SeriesToIndex: a profile added after the series was closed");
    if (this.numProfiles === 0) {
      b.sint(timeMs);
      this.minTime = this.maxTime = timeMs;
    }
    // Durations are whole nanoseconds from pprof; rounding keeps a stray fraction encodable.
    const d = Math.round(durationNs);
    b.uint(timeMs - this.maxTime);
    b.uint(sampleCount);
    b.sint(d - this.prevD);
    this.maxTime = timeMs;
    this.prevD = d;
    this.numProfiles++;
    this.rows += sampleCount;
  }

  /** The blob, exactly sized; no profile can be added after. */
  close(): Uint8Array {
    if (this.blob) {
      this.bytes = this.blob.finish();
      this.blob = null;
    }
    return this.bytes!;
  }
}

const SCHEMA = `
CREATE TABLE series (
  series_ref   INTEGER PRIMARY KEY,
  labels       TEXT NOT NULL,    -- JSON object, names sorted
  profile_type TEXT NOT NULL,
  min_time     INTEGER NOT NULL, -- ms
  max_time     INTEGER NOT NULL,
  first_row    INTEGER NOT NULL, -- sample rows of profiles.parquet, both inclusive
  last_row     INTEGER NOT NULL,
  num_profiles INTEGER NOT NULL,
  profiles     BLOB NOT NULL     -- varints: first time (zigzag), then per profile: time delta, sample count, duration delta (zigzag)
);
`;

/**
 * Writes the index to `path` (a new file in the block's .tmp directory) in one transaction, and
 * fsyncs it. No journal: a crash leaves the whole .tmp directory, which start-up removes. Built in
 * memory and serialized instead, a day-sized block's index was held three times over (pages,
 * image, copy) at the end of its merge, the moment its other buffers peak too.
 */
export function writeSeriesIndex(series: SeriesToIndex[], path: string): void {
  const db = new Database(path, { create: true, readwrite: true });
  try {
    // Small pages: many blocks hold few series, and the readers load the table whole anyway.
    db.run("PRAGMA page_size=1024");
    db.run("PRAGMA journal_mode=OFF");
    db.run("PRAGMA synchronous=OFF");
    db.run(SCHEMA);
    const ins = db.prepare(
      "INSERT INTO series (series_ref, labels, profile_type, min_time, max_time, first_row, last_row, num_profiles, profiles) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    db.transaction(() => {
      series.forEach((s, ref) => {
        const labels: Record<string, string> = {};
        for (const l of s.labels) labels[l.name] = l.value;
        ins.run(ref, JSON.stringify(labels), s.profileType, s.minTime, s.maxTime, s.firstRow, s.firstRow + s.rows - 1, s.numProfiles, s.close());
      });
    })();
    ins.finalize();
  } finally {
    db.close();
  }
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read side: the series list is loaded once; a series' profiles are decoded on demand. */
export class SeriesIndex {
  private constructor(
    private readonly db: Database,
    readonly series: IndexSeries[],
  ) {}

  /** Opens read-only and loads every series; throws the SQLite error on a damaged file. */
  static open(path: string): SeriesIndex {
    const db = new Database(path, { readonly: true });
    try {
      // Each open block keeps its index open, and SQLite's default page cache may grow to 2 MB a
      // connection; its pages are in the OS's cache anyway, and a query reads a few of them.
      db.run("PRAGMA cache_size=-64");
      const rows = db
        .query("SELECT series_ref, labels, profile_type, min_time, max_time, first_row, last_row, num_profiles FROM series ORDER BY series_ref")
        .values() as [number, string, string, number, number, number, number, number][];
      const series = rows.map(([ref, labels, profileType, minTime, maxTime, firstRow, lastRow, numProfiles], i): IndexSeries => {
        if (ref !== i) throw new Error(`series_ref ${ref} out of sequence (want ${i})`);
        const obj = JSON.parse(labels) as Record<string, string>;
        const ls = sortLabels(Object.entries(obj).map(([name, value]) => ({ name, value })));
        return { ref, labels: ls, profileType, minTime, maxTime, firstRow, lastRow, numProfiles };
      });
      return new SeriesIndex(db, series);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  profiles(ref: number): SeriesProfiles {
    const row = this.db.query("SELECT first_row, num_profiles, profiles FROM series WHERE series_ref = ?").values(ref)[0] as
      | [number, number, Uint8Array]
      | undefined;
    if (!row) throw new Error(`series ${ref} not found`);
    const [firstRow, n, blob] = row;
    const src = new ByteSource(blob);
    const out: SeriesProfiles = {
      timeMs: new Float64Array(n),
      durationNs: new Float64Array(n),
      rowStart: new Float64Array(n),
      sampleCount: new Uint32Array(n),
    };
    let t = src.sint();
    let d = 0;
    let r = firstRow;
    for (let i = 0; i < n; i++) {
      t += src.uint();
      const c = src.uint();
      d += src.sint();
      out.timeMs[i] = t;
      out.sampleCount[i] = c;
      out.durationNs[i] = d;
      out.rowStart[i] = r;
      r += c;
    }
    if (!src.done) throw new Error(`series ${ref}: trailing bytes in profiles`);
    return out;
  }

  close(): void {
    this.db.close();
  }
}
