// Opened blocks share one memory budget: a query over many blocks leaves at most about the budget
// of decoded symbols and indexes behind, and a released block answers the same when queried again.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Head } from "../head/head.ts";
import { parseSelector } from "../model/selector.ts";
import { collapsed } from "../model/tree.ts";
import { BlockReader, residentBlockBytes, setResidentBlockBudget } from "./reader.ts";
import { writeBlock } from "./writer.ts";
import { cpuProfile } from "../../test/helpers/cpu-profile.ts";

const root = mkdtempSync(join(tmpdir(), "hearth-resident-"));
afterAll(() => {
  setResidentBlockBudget(64 * 2 ** 20);
  rmSync(root, { recursive: true, force: true });
});

test("past the budget, idle blocks release their symbols and index; answers do not change", async () => {
  const T0 = Date.UTC(2026, 5, 1);
  const readers: BlockReader[] = [];
  for (let b = 0; b < 6; b++) {
    const h = new Head();
    // Many distinct frames, so each block's symbols are sizeable.
    for (let i = 0; i < 40; i++) {
      const stacks = Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`main;block${b}_fn${k}_${"x".repeat(40)};leaf${i % 7}`, 10 + k + i]));
      h.append([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: `svc${i % 4}` }], cpuProfile(stacks, T0 + b * 3600_000 + i * 10_000));
    }
    const meta = await writeBlock(h, root);
    readers.push(await BlockReader.open(join(root, meta.ulid)));
  }
  const q = (r: BlockReader) => r.selectMergeTree({ profileTypeId: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", matchers: parseSelector("{}"), start: 0, end: 0 });

  // Unbounded: every block stays resident.
  setResidentBlockBudget(Number.MAX_SAFE_INTEGER);
  const want = [];
  for (const r of readers) want.push(collapsed(await q(r)));
  expect(readers.every((r) => r.isResident)).toBe(true);
  // The budget is the process's: other test files' blocks may be in it too, so measure ours by difference.
  const before = residentBlockBytes();
  for (const r of readers) r.close();
  const perBlock = (before - residentBlockBytes()) / readers.length;
  expect(perBlock).toBeGreaterThan(0);

  // A budget of about two and a half blocks: querying all six leaves at most three resident.
  setResidentBlockBudget(Math.ceil(perBlock * 2.5));
  for (let round = 0; round < 2; round++)
    for (let i = 0; i < readers.length; i++) expect(collapsed(await q(readers[i]))).toEqual(want[i]);
  const kept = readers.filter((r) => r.isResident).length;
  expect(kept).toBeGreaterThanOrEqual(1);
  expect(kept).toBeLessThanOrEqual(3);
  expect(readers.at(-1)!.isResident).toBe(true);

  // A block in use is not released under its query, even when over budget.
  setResidentBlockBudget(1);
  const running = readers.map((r) => q(r));
  const got = await Promise.all(running);
  for (let i = 0; i < readers.length; i++) expect(collapsed(got[i])).toEqual(want[i]);
  for (const r of readers) r.close();
});
