// Writing files so they survive a crash or power loss: the data fsynced before it counts, and the
// directory fsynced so a created or renamed name is durable too.

import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

/** Writes `data` to `path` (replacing it) and fsyncs the file. */
export function writeDurable(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const fd = openSync(path, "w");
  try {
    for (let o = 0; o < bytes.byteLength; ) o += writeSync(fd, bytes, o, bytes.byteLength - o);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a directory, so the names created, renamed or deleted in it are durable. */
export function fsyncDir(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
