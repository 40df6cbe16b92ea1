// The scripting-spy rename (Pyroscope's FixFunctionNamesForScriptingLanguages) on real py-spy,
// Python and Ruby profiles; the expected stacks come from the protobuf-es oracle.

import { describe, expect, test } from "bun:test";
import { collapseProfile } from "../../../storage/model/collapse.ts";
import { collapse, readPprof } from "../../../test/helpers/pprof-oracle.ts";
import { fixScriptingFunctionNames, isScriptingSpy } from "./scripting-names.ts";
import { loadProfile, SHARED_PPROF } from "./testing.ts";

/** The oracle's collapse with every function named "<file> <name>" (unless keep(file)). */
function expected(file: string, v: number, keep: (filename: string) => boolean = () => false) {
  const o = readPprof(file);
  for (const f of o.function) {
    const filename = o.stringTable[Number(f.filename)];
    if (keep(filename)) continue;
    o.stringTable.push(`${filename} ${o.stringTable[Number(f.name)]}`);
    f.name = BigInt(o.stringTable.length - 1);
  }
  return collapse(o, v);
}

describe("fixScriptingFunctionNames", () => {
  for (const [file, spy] of [
    ["pyspy-1.pb.gz", "scripting"],
    ["profile_python", "pyspy"],
    ["profile_ruby", "rbspy"],
  ]) {
    test(`${file} with spyName=${spy}`, () => {
      const p = loadProfile(SHARED_PPROF + file);
      const q = fixScriptingFunctionNames(p, spy);
      expect(q).not.toBe(p);
      expect(collapseProfile(q, 0)).toEqual(expected(SHARED_PPROF + file, 0));
      // New functions are appended; the old ones stay where they were.
      expect(q.functions.slice(0, p.functions.length)).toEqual(p.functions);
    });
  }

  test("pyspy keeps frames of absolute paths; rbspy and scripting do not", () => {
    const p = loadProfile(SHARED_PPROF + "pyspy-1.pb.gz");
    const abs = (f: string) => f.startsWith("/");
    // Make every other function's file absolute.
    const mixed = { ...p, functions: p.functions.map((f, i) => (i % 2 ? { ...f, filename: `/srv/app/${f.filename}` } : f)) };
    const names = (q: typeof p) => new Set(q.locations.flatMap((l) => l.lines.map((x) => q.functions[x.fn].name)));
    const py = names(fixScriptingFunctionNames(mixed, "pyspy"));
    const rb = names(fixScriptingFunctionNames(mixed, "rbspy"));
    for (const f of mixed.functions) {
      const renamed = `${f.filename} ${f.name}`;
      if (!names(mixed).has(f.name)) continue;
      expect(py.has(abs(f.filename) ? f.name : renamed)).toBe(true);
      expect(rb.has(renamed)).toBe(true);
    }
  });

  test("functions with the same new name become one; other spies change nothing", () => {
    const p = loadProfile(SHARED_PPROF + "pyspy-1.pb.gz");
    const dup = { ...p, functions: [...p.functions, { ...p.functions[0], startLine: 99 }] };
    dup.locations = [...p.locations, { ...p.locations[0], lines: [{ fn: p.functions.length, line: 7 }] }];
    const q = fixScriptingFunctionNames(dup, "scripting");
    const newName = `${p.functions[0].filename} ${p.functions[0].name}`;
    expect(q.functions.filter((f) => f.name === newName).length).toBe(1);
    expect(fixScriptingFunctionNames(p, "gospy")).toBe(p);
    expect(isScriptingSpy("pyspy") && isScriptingSpy("rbspy") && isScriptingSpy("scripting")).toBe(true);
    expect(isScriptingSpy("unknown")).toBe(false);
  });
});
