// Collapsed ("folded") stacks of a profile: `root;…;leaf value` per distinct stack, the form
// Pyroscope's tests compare profiles in and the text format's native shape.

import type { Profile } from "./profile.ts";
import { compareUtf8 } from "./tree.ts";

export interface CollapseOptions {
  /**
   * How a location's inline lines are ordered. "caller-first" (default) lists them last to first,
   * caller before inlined callee, as Pyroscope's query path builds flame graphs. "stored" keeps
   * pprof order (callee first), as Pyroscope's test helper StackCollapseProto does.
   */
  inlineOrder?: "caller-first" | "stored";
}

/**
 * Sums sample column `valueIndex` by stack: frames root → leaf joined with `;`, each location
 * contributing its lines' function names. Locations without lines contribute nothing, zero values
 * are dropped and duplicate stacks summed.
 */
export function collapseProfile(p: Profile, valueIndex: number, opts: CollapseOptions = {}): Map<string, number> {
  const k = p.sampleTypes.length;
  if (valueIndex < 0 || valueIndex >= k) throw new Error(`value index ${valueIndex} out of range: the profile has ${k} sample types`);
  const callerFirst = (opts.inlineOrder ?? "caller-first") === "caller-first";
  // Each location's frames, joined once: most locations appear in many samples.
  // null: a location without lines.
  const locFrames: (string | null | undefined)[] = new Array(p.locations.length);
  const frameOf = (li: number): string | null => {
    let s = locFrames[li];
    if (s === undefined) {
      const lines = p.locations[li]?.lines ?? [];
      const names = lines.map((l) => p.functions[l.fn]?.name ?? "");
      if (callerFirst) names.reverse();
      s = locFrames[li] = names.length ? names.join(";") : null;
    }
    return s;
  };

  const out = new Map<string, number>();
  const { count, locStart, locs, values } = p.samples;
  for (let i = 0; i < count; i++) {
    const v = values[i * k + valueIndex];
    if (v === 0) continue;
    let stack: string | null = null;
    // locs are leaf first; walk them backwards for root → leaf.
    for (let j = locStart[i + 1] - 1; j >= locStart[i]; j--) {
      const f = frameOf(locs[j]);
      if (f === null) continue;
      stack = stack === null ? f : stack + ";" + f;
    }
    stack ??= "";
    out.set(stack, (out.get(stack) ?? 0) + v);
  }
  return out;
}

/** `stack value` lines sorted by stack (byte order, as Go sorts), each ending in a newline. */
export function formatCollapsed(map: Map<string, number>): string {
  const keys = [...map.keys()].sort(compareUtf8);
  let out = "";
  for (const key of keys) out += `${key} ${map.get(key)}\n`;
  return out;
}
