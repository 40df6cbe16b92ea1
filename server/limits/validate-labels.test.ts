// Series-label rules: each refusal names the problem and carries Pyroscope's discard reason.

import { describe, expect, test } from "bun:test";
import { DiscardError } from "./discard.ts";
import { labelsString, validateLabels, type LabelLimits } from "./validate-labels.ts";

const limits: LabelLimits = { maxLabelNamesPerSeries: 30, maxLabelNameLength: 1024, maxLabelValueLength: 2048 };
const base = [
  { name: "__name__", value: "process_cpu" },
  { name: "service_name", value: "svc" },
];
const sorted = (ls: { name: string; value: string }[]) => [...ls].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

function reasonOf(ls: { name: string; value: string }[], l: LabelLimits = limits): [string, string] {
  try {
    validateLabels(sorted(ls), l);
  } catch (e) {
    expect(e).toBeInstanceOf(DiscardError);
    expect((e as DiscardError).code).toBe("invalid_argument");
    return [(e as DiscardError).reason, (e as DiscardError).message];
  }
  return ["ok", ""];
}

describe("validateLabels", () => {
  test("a good series passes", () => {
    expect(reasonOf([...base, { name: "env", value: "prod" }])).toEqual(["ok", ""]);
  });

  test("each rule has its reason", () => {
    expect(reasonOf([])[0]).toBe("missing_labels");
    expect(reasonOf([{ name: "service_name", value: "x" }])[0]).toBe("invalid_labels");
    expect(reasonOf([{ name: "__name__", value: "process_cpu" }])).toEqual(["missing_labels", expect.stringContaining("service name is not provided")]);
    expect(reasonOf([...base, { name: "bad-name", value: "x" }])).toEqual(["invalid_labels", expect.stringContaining('invalid label name "bad-name"')]);
    expect(reasonOf([...base, { name: "a", value: "1" }, { name: "a", value: "2" }])[0]).toBe("duplicate_label_names");
    expect(reasonOf([...base, { name: "long", value: "x".repeat(2049) }])).toEqual(["label_value_too_long", expect.stringContaining("max_label_value_length")]);
    expect(reasonOf([...base, { name: "n".repeat(1025), value: "x" }])).toEqual(["label_name_too_long", expect.stringContaining("max_label_name_length")]);
    const many = Array.from({ length: 29 }, (_, i) => ({ name: `l${i}`, value: "v" }));
    expect(reasonOf([...base, ...many])).toEqual(["max_label_names_per_series", expect.stringContaining("has 31 labels, more than the limit of 30 (max_label_names_per_series)")]);
  });

  test("per-tenant values apply, and 0 turns a limit off", () => {
    const tight = { maxLabelNamesPerSeries: 3, maxLabelNameLength: 4, maxLabelValueLength: 4 };
    expect(reasonOf([...base, { name: "a", value: "1" }, { name: "b", value: "2" }], tight)[0]).toBe("max_label_names_per_series");
    expect(reasonOf([...base, { name: "env", value: "production" }], { ...tight, maxLabelNameLength: 0 })[0]).toBe("label_value_too_long");
    const off = { maxLabelNamesPerSeries: 0, maxLabelNameLength: 0, maxLabelValueLength: 0 };
    const many = Array.from({ length: 50 }, (_, i) => ({ name: `label_${i}`, value: "v".repeat(5000) }));
    expect(reasonOf([...base, ...many], off)).toEqual(["ok", ""]);
  });

  test("labelsString cuts long values", () => {
    expect(labelsString([{ name: "a", value: "1" }, { name: "b", value: "x".repeat(100) }])).toBe(`{a="1", b="${"x".repeat(64)}…"}`);
  });
});
