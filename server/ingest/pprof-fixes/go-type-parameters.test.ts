// dropGoTypeParameters against Pyroscope's go_type_parameters.txt → .expected.txt, and the
// profile-level rename + merge on a real Go 1.21 heap profile full of generic functions.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import { collapse, readPprof } from "../../../test/helpers/pprof-oracle.ts";
import { dropGoTypeParameters, dropGoTypeParametersFromProfile, renameFunctions } from "./go-type-parameters.ts";
import { columnSum, FIXES, loadProfile, SHARED_PPROF } from "./testing.ts";

describe("dropGoTypeParameters", () => {
  test("matches Pyroscope's go_type_parameters fixture line by line", () => {
    const input = readFileSync(FIXES + "go_type_parameters.txt", "utf8").split("\n");
    const expected = readFileSync(FIXES + "go_type_parameters.expected.txt", "utf8").split("\n");
    expect(input.length).toBe(expected.length);
    expect(input.length).toBeGreaterThan(10);
    for (let i = 0; i < input.length; i++) expect(dropGoTypeParameters(input[i])).toBe(expected[i]);
  });

  test("shapes nest, repeat, and are only dropped after [go.shape.", () => {
    expect(dropGoTypeParameters("pkg.(*T[go.shape.struct { F []uint8 }]).Method")).toBe("pkg.(*T).Method");
    expect(dropGoTypeParameters("pkg.Func[go.shape.int].Method[go.shape.string]")).toBe("pkg.Func.Method");
    expect(dropGoTypeParameters("pkg.Func[go.shape.int,go.shape.string]")).toBe("pkg.Func");
    expect(dropGoTypeParameters("pkg.Func[int]")).toBe("pkg.Func[int]");
    expect(dropGoTypeParameters("go.shape.int")).toBe("go.shape.int");
    expect(dropGoTypeParameters("")).toBe("");
  });

  test("an unclosed shape is kept as it is", () => {
    // Pyroscope's loop writes the prefix twice here ("aa[go.shape.int"); we keep the input.
    expect(dropGoTypeParameters("a[go.shape.int")).toBe("a[go.shape.int");
    expect(dropGoTypeParameters("x[go.shape.int].y[go.shape.z")).toBe("x.y[go.shape.z");
  });
});

describe("dropGoTypeParametersFromProfile", () => {
  test("a profile without shapes comes back as the same object", () => {
    const p = loadProfile(SHARED_PPROF + "go.cpu.labels.pprof");
    expect(dropGoTypeParametersFromProfile(p)).toBe(p);
  });

  for (const name of ["heap_go_truncated_4", "cpu_go_truncated_1"]) {
    test(`${name}: names lose their shapes, stacks keep their values`, () => {
      const file = `${FIXES}${name}.pb.gz`;
      const p = loadProfile(file);
      const q = dropGoTypeParametersFromProfile(p);
      expect(q).not.toBe(p);
      expect(q.functions.some((f) => f.name.includes("[go.shape."))).toBe(false);
      // Expected: the oracle's collapse of the input with its string table rewritten, which is
      // what Pyroscope does (names may hold ";" inside a shape, so stacks are not split here).
      const oracle = readPprof(file);
      oracle.stringTable = oracle.stringTable.map(dropGoTypeParameters);
      for (let v = 0; v < p.sampleTypes.length; v++) {
        const want = collapse(oracle, v);
        expect(collapseProfile(q, v)).toEqual(want);
        expect(columnSum(q, v)).toBe(columnSum(p, v));
      }
    });
  }

  test("heap_go_truncated_4: the counts Pyroscope's Test_FixGoProfile expects", () => {
    const file = FIXES + "heap_go_truncated_4.pb.gz";
    const p = loadProfile(file);
    const q = dropGoTypeParametersFromProfile(p);
    expect(p.samples.count - q.samples.count).toBe(2988);
    expect(p.locations.length - q.locations.length).toBe(168);
    expect(p.functions.length - q.functions.length).toBe(77);
    // Pyroscope's merged string table holds each distinct string once.
    expect(readPprof(file).stringTable.length - distinctStrings(q)).toBe(78);
  });

  test("renameFunctions merges functions that become equal, and the locations using them", () => {
    const p = loadProfile(SHARED_PPROF + "go.cpu.labels.pprof");
    const rename = (s: string) => (s.startsWith("runtime.") ? "runtime" : s);
    const q = renameFunctions(p, rename);
    const distinct = new Set(p.functions.map((f) => [rename(f.name), rename(f.systemName), rename(f.filename), f.startLine].join("|")));
    expect(q.functions.length).toBe(distinct.size);
    expect(q.functions.length).toBeLessThan(p.functions.length);
    expect(q.locations.length).toBeLessThanOrEqual(p.locations.length);
    for (let v = 0; v < 2; v++) expect(collapseProfile(q, v)).toEqual(collapseWith(p, v, rename));
  });
});

// Our own collapse of `p` with frame names mapped; a reference for renaming that keeps ";" out.
function collapseWith(p: ReturnType<typeof loadProfile>, v: number, rename: (s: string) => string) {
  return collapseProfile({ ...p, functions: p.functions.map((f) => ({ ...f, name: rename(f.name) })) }, v);
}

function distinctStrings(p: ReturnType<typeof loadProfile>): number {
  const s = new Set<string>([""]);
  for (const t of p.sampleTypes) s.add(t.type).add(t.unit);
  if (p.periodType) s.add(p.periodType.type).add(p.periodType.unit);
  for (const f of p.functions) s.add(f.name).add(f.systemName).add(f.filename);
  for (const m of p.mappings) s.add(m.filename).add(m.buildId);
  for (const c of p.comments) s.add(c);
  s.add(p.defaultSampleType).add(p.dropFrames).add(p.keepFrames);
  for (const ls of p.samples.labels ?? []) for (const l of ls) s.add(l.key).add(l.str).add(l.numUnit);
  return s.size;
}
