// Turns cumulative Go allocation profiles into deltas, as Pyroscope's ingester head does
// (pkg/phlaredb/delta.go). Only series with __name__="memory" whose __delta__ is not "false", and
// only their alloc_objects / alloc_space columns: for each (series, sample type) it remembers the
// highest cumulative value per stack. The first profile of a series is the baseline and stores
// nothing; later ones store value − remembered value; a value that went down (the process
// restarted) makes that profile a new baseline, stored as nothing.
//
// Differences from Pyroscope, all deliberate:
// - Stacks are identified by content (a 53-bit hash of mapping, address and lines of each frame),
//   since our stack ids are only assigned later, inside the head.
// - State is kept here, before the WAL, so WAL replay needs none and a head cut does not restart
//   every series from a dropped baseline (Pyroscope's state dies with each head).
// - On a reset the new baseline is the profile as received; Pyroscope's is partly already
//   subtracted (its loop edits values in place before it notices the reset).
// - Memory is bounded: a series not seen for `idleMs` is forgotten, and past `maxStacks`
//   remembered stacks the least recently seen series are forgotten first. A forgotten series
//   starts again from a baseline, like a new one.

import { getLabel, labelsKey, type Labels } from "../../../storage/model/labels.ts";
import type { Profile } from "../../../storage/model/profile.ts";
import { stackKeys } from "./stack-keys.ts";

const DELTA_TYPES = new Set(["alloc_objects", "alloc_space"]);

export interface DeltaTrackerOptions {
  /** Forget a series not seen for this long (ms). Default 1 h, about a Pyroscope head's life. */
  idleMs?: number;
  /** Stacks remembered across all series before the least recently seen series are forgotten. */
  maxStacks?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

interface SeriesState {
  /** stack key → highest cumulative value seen */
  highest: Map<number, number>;
  lastSeen: number;
}

export class DeltaTracker {
  private readonly idleMs: number;
  private readonly maxStacks: number;
  private readonly now: () => number;
  /** Least recently seen first (a Map keeps insertion order; a touched series is re-inserted). */
  private readonly series = new Map<string, SeriesState>();
  private stacks = 0;

  constructor(opts: DeltaTrackerOptions = {}) {
    this.idleMs = opts.idleMs ?? 3600_000;
    this.maxStacks = opts.maxStacks ?? 1_000_000;
    this.now = opts.now ?? Date.now;
  }

  /** Whether Pyroscope would compute deltas for a profile with these series labels. */
  static applies(labels: Labels, p: Profile): boolean {
    if (getLabel(labels, "__delta__") === "false" || getLabel(labels, "__name__") !== "memory") return false;
    return p.sampleTypes.some((t) => DELTA_TYPES.has(t.type));
  }

  /**
   * The profile to store for `labels` (the final series labels, after relabeling and the split by
   * sample labels). Columns that are baselines or resets are all zeros, which the head stores as
   * no row; other delta columns hold deltas, each stack's on its first sample. Returns `p` itself
   * when no delta applies. `p` is not modified. Series of different tenants never mix.
   */
  apply(labels: Labels, p: Profile, tenant = ""): Profile {
    if (!DeltaTracker.applies(labels, p)) return p;
    const now = this.now();
    const s = p.samples;
    const k = p.sampleTypes.length;
    const keys = stackKeys(p);

    // One slot per distinct stack: a stack may appear in several samples.
    const slotOfKey = new Map<number, number>();
    const slotOf = new Int32Array(s.count);
    const slotKeys: number[] = [];
    for (let i = 0; i < s.count; i++) {
      let slot = slotOfKey.get(keys[i]);
      if (slot === undefined) {
        slot = slotKeys.length;
        slotKeys.push(keys[i]);
        slotOfKey.set(keys[i], slot);
      }
      slotOf[i] = slot;
    }
    const nSlots = slotKeys.length;
    const sums = new Float64Array(nSlots);
    const values = s.values.slice();
    const base = `${tenant}\x00${seriesBase(labels, p)}`;

    for (let c = 0; c < k; c++) {
      const st = p.sampleTypes[c];
      if (!DELTA_TYPES.has(st.type)) continue;
      sums.fill(0);
      for (let i = 0; i < s.count; i++) sums[slotOf[i]] += s.values[i * k + c];
      const id = `${base}\x00${st.type}\x00${st.unit}`;
      const state = this.series.get(id);
      if (state !== undefined) this.series.delete(id); // re-inserted below as the most recent

      if (state !== undefined && !isReset(state.highest, slotKeys, sums)) {
        const highest = state.highest;
        const before = highest.size;
        for (let j = 0; j < nSlots; j++) {
          const prev = highest.get(slotKeys[j]);
          highest.set(slotKeys[j], sums[j]);
          if (prev !== undefined) sums[j] -= prev;
        }
        this.stacks += highest.size - before;
        // Each stack's delta goes on its first sample; the others are emptied.
        const seen = new Uint8Array(nSlots);
        for (let i = 0; i < s.count; i++) {
          const j = slotOf[i];
          values[i * k + c] = seen[j] ? 0 : sums[j];
          seen[j] = 1;
        }
        state.lastSeen = now;
        this.series.set(id, state);
      } else {
        // A new series, or a reset: this profile becomes the baseline and stores nothing.
        if (state !== undefined) this.stacks -= state.highest.size;
        const highest = new Map<number, number>();
        for (let j = 0; j < nSlots; j++) highest.set(slotKeys[j], sums[j]);
        this.stacks += highest.size;
        for (let i = 0; i < s.count; i++) values[i * k + c] = 0;
        this.series.set(id, { highest, lastSeen: now });
      }
    }
    this.evict(now);
    return { ...p, samples: { ...s, values } };
  }

  /** Series and stacks remembered, for metrics and tests. */
  stats(): { series: number; stacks: number } {
    return { series: this.series.size, stacks: this.stacks };
  }

  // Oldest first; the most recent series is never evicted, so one huge series still works.
  private evict(now: number): void {
    for (const [id, st] of this.series) {
      if (this.series.size <= 1) break;
      if (st.lastSeen >= now - this.idleMs && this.stacks <= this.maxStacks) break;
      this.series.delete(id);
      this.stacks -= st.highest.size;
    }
  }
}

/** Pyroscope treats any stack whose cumulative value went down as a counter reset. */
function isReset(highest: Map<number, number>, keys: number[], sums: Float64Array): boolean {
  for (let j = 0; j < keys.length; j++) {
    const prev = highest.get(keys[j]);
    if (prev !== undefined && prev > sums[j]) return true;
  }
  return false;
}

// The series identity without __delta__ (Pyroscope removes it before fingerprinting); the period
// type is part of Pyroscope's series labels, so it is part of ours.
function seriesBase(labels: Labels, p: Profile): string {
  const pt = p.periodType;
  return `${labelsKey(labels.filter((l) => l.name !== "__delta__"))}\x00${pt?.type ?? ""}\x00${pt?.unit ?? ""}`;
}
