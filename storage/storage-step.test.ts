// The storage hooks the server's heap governor hangs on: a block write and a merge each report
// that they finished exactly once, after their steps.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtureProfile } from "../test/helpers/query-battery.ts";
import { writeBlock } from "./block/writer.ts";
import { compactBlocks } from "./compact.ts";
import { Head } from "./head/head.ts";
import { sortLabels } from "./model/labels.ts";
import { onStorageDone, onStorageStep } from "./storage-step.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-storage-step-"));
afterAll(() => {
  onStorageStep(null);
  onStorageDone(null);
  rmSync(tmp, { recursive: true, force: true });
});

test("writeBlock and a merge each call the done hook once, after their steps", async () => {
  const events: string[] = [];
  onStorageStep(() => events.push("step"));
  onStorageDone(() => events.push("done"));
  const head = (t: number) => {
    const h = new Head();
    const p = fixtureProfile("profile_java");
    h.append(sortLabels([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: "java" }]), { ...p, timeNanos: BigInt(t) * 1000000n });
    return h;
  };
  const a = await writeBlock(head(1_000), tmp);
  expect(events.filter((e) => e === "done")).toHaveLength(1);
  expect(events.at(-1)).toBe("done");
  expect(events).toContain("step");
  const b = await writeBlock(head(2_000), tmp);
  events.length = 0;
  await compactBlocks([join(tmp, a.ulid), join(tmp, b.ulid)], tmp);
  expect(events.filter((e) => e === "done")).toHaveLength(1);
  expect(events.at(-1)).toBe("done");
  expect(events).toContain("step");
});
