// The storage hooks the server's heap governor hangs on: a block write reports its working set
// released once, at its end; a merge after each source's symbols and footer, after its rows, and at
// its end; a block query steps after each row group it decodes.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtureProfile } from "../test/helpers/query-battery.ts";
import { BlockReader } from "./block/reader.ts";
import { writeBlock } from "./block/writer.ts";
import { compactBlocks } from "./compact.ts";
import { Head } from "./head/head.ts";
import { sortLabels } from "./model/labels.ts";
import { parseSelector } from "./model/selector.ts";
import { onStorageReleased, onStorageStep } from "./storage-step.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-storage-step-"));
afterAll(() => {
  onStorageStep(null);
  onStorageReleased(null);
  rmSync(tmp, { recursive: true, force: true });
});

test("writeBlock releases once, at its end; a merge after each source's symbols and footer, its rows, and at its end", async () => {
  const events: string[] = [];
  onStorageStep(() => events.push("step"));
  onStorageReleased(() => events.push("released"));
  const head = (t: number) => {
    const h = new Head();
    const p = fixtureProfile("profile_java");
    h.append(sortLabels([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "java" }]), { ...p, timeNanos: BigInt(t) * 1000000n });
    return h;
  };
  const a = await writeBlock(head(1_000), tmp);
  expect(events.filter((e) => e === "released")).toHaveLength(1);
  expect(events.at(-1)).toBe("released");
  expect(events).toContain("step");
  const b = await writeBlock(head(2_000), tmp);
  events.length = 0;
  await compactBlocks([join(tmp, a.ulid), join(tmp, b.ulid)], tmp);
  // Two sources' symbols, their footers, the rows, the end; steps (one per series) between the
  // footers and the rows.
  const released = events.flatMap((e, i) => (e === "released" ? [i] : []));
  expect(released).toHaveLength(6);
  expect(released.slice(0, 4)).toEqual([0, 1, 2, 3]);
  expect(events.slice(4, released[4])).toContain("step");
  expect(events.at(-1)).toBe("released");
});

test("a block query steps once per row group it decodes, and only for those", async () => {
  const h = new Head();
  const p = fixtureProfile("profile_java");
  for (const svc of ["a", "b"])
    for (let i = 0; i < 20; i++)
      h.append(sortLabels([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: svc }]), { ...p, timeNanos: BigInt(1_000 + i) * 1000000n });
  const meta = await writeBlock(h, tmp, { rowGroupSize: 1024 });
  const r = await BlockReader.open(join(tmp, meta.ulid));
  const pq = await (r as unknown as { openParquet(): Promise<{ groupStart: number[] }> }).openParquet();
  const groups = pq.groupStart.length - 1;
  expect(groups).toBeGreaterThan(4);
  let steps = 0;
  onStorageStep(() => steps++);
  const [profileTypeId] = await r.profileTypes({ start: 0, end: 0 });
  const q = (svc: string) => ({ profileTypeId, matchers: parseSelector(`{service_name="${svc}"}`), start: 0, end: 0 });
  const total = (await r.selectMergeTree(q("a"))).total();
  expect(total).toBeGreaterThan(0);
  // Service a's rows come first (series in label order) and fill about half the groups.
  expect(steps).toBeGreaterThanOrEqual(Math.floor(groups / 2));
  expect(steps).toBeLessThan(groups);
  steps = 0;
  await r.selectMergeTree(q("nobody"));
  expect(steps).toBe(0);
  r.close();
});
