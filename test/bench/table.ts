// The bench's one output table, number formatting, and the timing loop every part shares.

import { readFileSync, writeFileSync } from "node:fs";

export type Row = string[];

export const HEADER: Row = ["benchmark", "input", "result", "floor", "ratio (result/floor)"];

/** Rows collected by one bench part; `run.ts` prints them all as one table. */
export class Table {
  readonly rows: Row[] = [];

  row(...cells: (string | number)[]): void {
    const r = cells.map(String);
    while (r.length < HEADER.length) r.push("");
    this.rows.push(r);
  }
}

export const fmt = (x: number, d = 1) => x.toFixed(d);
export const mb = (bytes: number) => `${fmt(bytes / 1e6, bytes < 10e6 ? 2 : 1)} MB`;
export const ms = (sec: number) => `${fmt(sec * 1000, sec < 0.01 ? 3 : 1)} ms`;

/**
 * RSS of a process in MB (VmRSS), and the kernel's high-water mark of it (VmHWM): the mark catches
 * the peaks between samples, e.g. while a block is written. NaN where /proc is not available.
 */
export function procRssMb(pid: number | "self" = "self"): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rss: (kb("VmRSS") * 1024) / 1e6, peak: (kb("VmHWM") * 1024) / 1e6 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** Restarts a process's high-water mark from its current RSS (Linux: `5` into /proc/<pid>/clear_refs). */
export function resetPeakRss(pid: number | "self" = "self"): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // Not Linux, or not allowed: the mark then covers the whole run, which only overstates.
  }
}

/**
 * Seconds per call of fn: after a warm-up, the best of five rounds of at least `minMs` each. The
 * best round is the one least disturbed by whatever else shares the machine.
 */
export async function timeIt(fn: () => unknown, minMs = 150): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < minMs) {
      await fn();
      n++;
    }
    best = Math.min(best, (performance.now() - t0) / 1000 / n);
  }
  return best;
}

/** Seconds for one call: for things that happen once, like a start-up. */
export async function timeOnce<T>(fn: () => T | Promise<T>): Promise<{ sec: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { sec: (performance.now() - t0) / 1000, value };
}

export function printTable(rows: Row[]): void {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  for (const [i, r] of all.entries()) {
    console.log(r.map((cell, c) => (cell ?? "").padEnd(widths[c])).join(" | ").trimEnd());
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  }
}
