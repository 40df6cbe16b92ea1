// stackKeys: equal stacks get equal keys (across separately decoded copies); different ones don't.

import { describe, expect, test } from "bun:test";
import { stackKeys } from "./stack-keys.ts";
import { FIXES, loadProfile, SHARED_PPROF } from "./testing.ts";

/** A stack as text: every frame's mapping, address and lines. */
function stackText(p: ReturnType<typeof loadProfile>, i: number): string {
  const parts: string[] = [];
  for (let j = p.samples.locStart[i]; j < p.samples.locStart[i + 1]; j++) {
    const l = p.locations[p.samples.locs[j]];
    const m = l.mapping >= 0 ? p.mappings[l.mapping] : null;
    parts.push(`${m?.filename}|${m?.buildId}|${l.address}|${l.lines.map((x) => { const f = p.functions[x.fn]; return `${f.name}/${f.systemName}/${f.filename}/${f.startLine}:${x.line}`; }).join(",")}`);
  }
  return parts.join(";");
}

describe("stackKeys", () => {
  for (const f of [SHARED_PPROF + "heap", FIXES + "heap_go_truncated_4.pb.gz", SHARED_PPROF + "profile_java"]) {
    test(`${f.split("/").pop()}: one key per distinct stack, stable across decodes, exact integers`, () => {
      const p = loadProfile(f);
      const keys = stackKeys(p);
      const byText = new Map<string, number>();
      const texts = new Set<string>();
      for (let i = 0; i < p.samples.count; i++) {
        const t = stackText(p, i);
        texts.add(t);
        const k = byText.get(t);
        if (k === undefined) byText.set(t, keys[i]);
        else expect(keys[i]).toBe(k);
        expect(Number.isSafeInteger(keys[i])).toBe(true);
      }
      expect(new Set(keys).size).toBe(texts.size);
      expect(stackKeys(loadProfile(f))).toEqual(keys);
    });
  }
});
