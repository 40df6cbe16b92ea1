// Go 1.21+ writes generic functions with their type shape, e.g. `pkg.F[go.shape.int]`, and may
// name any instance for every call site (golang/go#64528). Pyroscope drops the shapes and merges
// the symbols and samples that become identical; so do we.

import type { Profile } from "../../../storage/model/profile.ts";
import { mergeDuplicateSymbols } from "./merge-duplicates.ts";

const SHAPE = "[go.shape.";

/** `name` without its `[go.shape.…]` groups (brackets nest); an unclosed group is kept as is. */
export function dropGoTypeParameters(name: string): string {
  let start = name.indexOf(SHAPE);
  if (start < 0) return name;
  let out = "";
  let i = 0;
  while (start >= 0) {
    out += name.slice(i, start);
    let depth = 0;
    let j = start;
    for (; j < name.length; j++) {
      const c = name.charCodeAt(j);
      if (c === 0x5b) depth++;
      else if (c === 0x5d && --depth === 0) break;
    }
    if (depth !== 0) return out + name.slice(start);
    i = j + 1;
    start = name.indexOf(SHAPE, i);
  }
  return out + name.slice(i);
}

/**
 * Applies `rename` to every function's name, system name and file name (Pyroscope rewrites its
 * whole string table; only these hold Go symbols). Returns `p` itself when nothing changed,
 * otherwise a new profile with duplicates merged as Pyroscope's self-merge does. `p` is not modified.
 */
export function renameFunctions(p: Profile, rename: (s: string) => string): Profile {
  const fns = p.functions;
  let out: Profile["functions"] | null = null;
  for (let i = 0; i < fns.length; i++) {
    const f = fns[i];
    const name = rename(f.name);
    const systemName = f.systemName === f.name ? name : rename(f.systemName);
    const filename = rename(f.filename);
    if (name === f.name && systemName === f.systemName && filename === f.filename) continue;
    out ??= fns.slice();
    out[i] = { ...f, name, systemName, filename };
  }
  if (out === null) return p;
  return mergeDuplicateSymbols({ ...p, functions: out });
}

/** Pyroscope's DropGoTypeParameters over our profile model. */
export function dropGoTypeParametersFromProfile(p: Profile): Profile {
  return renameFunctions(p, dropGoTypeParameters);
}
