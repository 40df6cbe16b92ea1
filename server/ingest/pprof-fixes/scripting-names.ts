// Pyroscope's /ingest rewrite for scripting-language spies (FixFunctionNamesForScriptingLanguages):
// each frame's function becomes "<filename> <name>", so flame graphs tell same-named functions of
// different files apart. py-spy frames with an absolute file name are left alone.

import type { Func, Location, Profile } from "../../../storage/model/profile.ts";

/** Whether `/ingest?spyName=…` asks for the rewrite. */
export function isScriptingSpy(spyName: string): boolean {
  return spyName === "pyspy" || spyName === "rbspy" || spyName === "scripting";
}

/**
 * The profile with every function referenced by a location line replaced by one named
 * "<filename> <name>" (one new function per distinct new name, appended after the old ones, which
 * stay unreferenced). Returns `p` itself for other spies. `p` is not modified.
 */
export function fixScriptingFunctionNames(p: Profile, spyName: string): Profile {
  if (!isScriptingSpy(spyName)) return p;
  const pyspy = spyName === "pyspy";
  const functions = p.functions.slice();
  const byName = new Map<string, number>();
  // old function → its replacement (-2: not yet seen, -1: kept as is)
  const repl = new Int32Array(p.functions.length).fill(-2);
  let changed = false;
  const locations: Location[] = p.locations.map((loc) => {
    let lines = loc.lines;
    for (let j = 0; j < loc.lines.length; j++) {
      const fi = loc.lines[j].fn;
      let r = repl[fi];
      if (r === -2) {
        const f = p.functions[fi];
        // Pyroscope uses Go's filepath.IsAbs, which on Linux means a leading slash.
        if (pyspy && f.filename.startsWith("/")) r = -1;
        else {
          const name = `${f.filename} ${f.name}`;
          let n = byName.get(name);
          if (n === undefined) {
            n = functions.length;
            const nf: Func = { name, systemName: f.systemName, filename: f.filename, startLine: f.startLine };
            functions.push(nf);
            byName.set(name, n);
          }
          r = n;
        }
        repl[fi] = r;
      }
      if (r < 0) continue;
      if (lines === loc.lines) lines = loc.lines.slice();
      lines[j] = { fn: r, line: loc.lines[j].line };
    }
    if (lines === loc.lines) return loc;
    changed = true;
    return { ...loc, lines };
  });
  return changed ? { ...p, functions, locations } : p;
}
