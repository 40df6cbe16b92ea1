// diskFree agrees with df; dirSize adds up a tree.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diskFree, dirSize } from "./disk.ts";

const dir = mkdtempSync(join(tmpdir(), "hearth-disk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** df's view of the filesystem holding path, in bytes. */
function df(path: string): { total: number; available: number } {
  const out = Bun.spawnSync(["df", "-Pk", path]).stdout.toString().trim().split("\n");
  const cols = out[out.length - 1]!.split(/\s+/);
  return { total: Number(cols[1]) * 1024, available: Number(cols[3]) * 1024 };
}

describe("diskFree", () => {
  test("matches df -Pk (Available and total)", () => {
    const d = df(dir);
    const ours = diskFree(dir);
    // Other processes write meanwhile; a few MiB of drift is fine, a unit mistake is not.
    const slack = 64 * 1024 * 1024;
    expect(Math.abs(ours.freeBytes - d.available)).toBeLessThan(slack);
    expect(Math.abs(ours.totalBytes - d.total)).toBeLessThan(slack);
    expect(ours.freeBytes).toBeLessThanOrEqual(ours.totalBytes);
  });

  test("a path not created yet is measured where it would be created", () => {
    const later = join(dir, "not", "yet", "there");
    expect(diskFree(later).totalBytes).toBe(diskFree(dir).totalBytes);
  });
});

describe("dirSize", () => {
  test("sums files in nested directories", () => {
    const root = join(dir, "tree");
    mkdirSync(join(root, "a", "b"), { recursive: true });
    mkdirSync(join(root, "empty"));
    writeFileSync(join(root, "one"), Buffer.alloc(1000));
    writeFileSync(join(root, "a", "two"), Buffer.alloc(20));
    writeFileSync(join(root, "a", "b", "three"), Buffer.alloc(3));
    expect(dirSize(root)).toBe(1023);
    expect(dirSize(join(root, "one"))).toBe(1000);
    expect(dirSize(join(root, "empty"))).toBe(0);
  });

  test("symlinks are not followed", () => {
    const root = join(dir, "links");
    mkdirSync(root);
    writeFileSync(join(dir, "big"), Buffer.alloc(100_000));
    symlinkSync(join(dir, "big"), join(root, "link"));
    expect(dirSize(root)).toBeLessThan(1000);
  });

  test("a missing path is 0", () => {
    expect(dirSize(join(dir, "missing"))).toBe(0);
  });
});
