// Pyroscope's default ingestion relabel rules (pkg/validation/relabeling.go).

import { describe, expect, test } from "bun:test";
import { labelsFromRecord } from "../../../storage/model/labels.ts";
import { applyDefaultRelabelRules } from "./default-relabel.ts";

describe("applyDefaultRelabelRules", () => {
  test("godeltaprof_memory → memory, __delta__=false, __name_replaced__", () => {
    const ls = labelsFromRecord({ __name__: "godeltaprof_memory", service_name: "app" });
    expect(applyDefaultRelabelRules(ls)).toEqual(
      labelsFromRecord({ __name__: "memory", __delta__: "false", __name_replaced__: "godeltaprof_memory", service_name: "app" }),
    );
  });

  test("every godeltaprof_ name, and an existing __delta__ is overridden", () => {
    const ls = labelsFromRecord({ __name__: "godeltaprof_mutex", __delta__: "true", service_name: "app" });
    expect(applyDefaultRelabelRules(ls)).toEqual(
      labelsFromRecord({ __name__: "mutex", __delta__: "false", __name_replaced__: "godeltaprof_mutex", service_name: "app" }),
    );
  });

  test("wall with __type__=cpu becomes process_cpu", () => {
    const ls = labelsFromRecord({ __name__: "wall", __type__: "cpu", service_name: "app" });
    expect(applyDefaultRelabelRules(ls)).toEqual(labelsFromRecord({ __name__: "process_cpu", __name_replaced__: "wall", __type__: "cpu", service_name: "app" }));
  });

  test("other sets come back as the same object", () => {
    const sets: Record<string, string>[] = [{ __name__: "memory" }, { __name__: "wall", __type__: "wall" }, { __name__: "xgodeltaprof_memory" }, { service_name: "a" }];
    for (const r of sets) {
      const ls = labelsFromRecord(r);
      expect(applyDefaultRelabelRules(ls)).toBe(ls);
    }
  });

  test("an empty replacement deletes the label, as Prometheus does", () => {
    const out = applyDefaultRelabelRules(labelsFromRecord({ __name__: "godeltaprof_", service_name: "a" }));
    expect(out.find((l) => l.name === "__name__")).toBeUndefined();
  });
});
