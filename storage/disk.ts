// Disk facts for retention and /metrics: free space on the data directory's filesystem, and how
// many bytes a directory tree holds.

import { lstatSync, readdirSync, statfsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export interface DiskSpace {
  /** Bytes an unprivileged process can still write (df's "Available", not the root reserve). */
  freeBytes: number;
  totalBytes: number;
}

/**
 * Free and total bytes of the filesystem holding `path`. A path not created yet is measured at its
 * nearest existing ancestor, where it will be created.
 */
export function diskFree(path: string): DiskSpace {
  let p = resolve(path);
  for (;;) {
    try {
      const s = statfsSync(p);
      // Block counts are in fragment units; Node's StatFs has no frsize, Bun's has.
      const unit = (s as { frsize?: number }).frsize || s.bsize;
      return { freeBytes: s.bavail * unit, totalBytes: s.blocks * unit };
    } catch (e) {
      const parent = dirname(p);
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || parent === p) throw e;
      p = parent;
    }
  }
}

/**
 * Bytes of every file under `path` (apparent sizes; symlinks counted as links, not followed). A
 * missing path is 0, and files deleted during the walk are skipped: retention may be running.
 */
export function dirSize(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  if (!st.isDirectory()) return st.size;
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  let total = 0;
  for (const name of entries) total += dirSize(join(path, name));
  return total;
}
