// Sizes of what a data directory holds, for the storage and soak benchmarks.

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Total bytes of the files under `dir`. */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

/** Finished block directories in a tenant's blocks/ (not `.tmp`, not `.corrupt`). */
export function blockDirs(blocksDir: string): string[] {
  return readdirSync(blocksDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.includes("."))
    .map((e) => join(blocksDir, e.name));
}
