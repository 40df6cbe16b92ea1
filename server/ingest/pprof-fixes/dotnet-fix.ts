// Pyroscope's /ingest fix-ups for the .NET profiler (dotnetspy): its sample types are named with
// dashes ("alloc-samples"), which validation rejects, so they become underscores. The other .NET
// fix, function ids that are all 0, is done by decodePprof for every profile.

import type { Profile } from "../../../storage/model/profile.ts";

/**
 * Whether an /ingest upload is from the .NET profiler: spyName=dotnetspy, or spyName=unknown with
 * a `sample_type_config` that has an "inuse-space" key.
 */
export function isDotnetspy(spyName: string, sampleTypeConfig: Record<string, unknown> | null): boolean {
  if (spyName === "dotnetspy") return true;
  return spyName === "unknown" && sampleTypeConfig !== null && sampleTypeConfig["inuse-space"] != null;
}

/**
 * Sample type names with "-" replaced by "_" (the default sample type follows, since in pprof it is
 * the same string). Returns `p` itself when no name has a dash. `p` is not modified.
 */
export function fixDotnetSampleTypes(p: Profile): Profile {
  if (!p.sampleTypes.some((t) => t.type.includes("-"))) return p;
  const renamed = new Set<string>();
  const sampleTypes = p.sampleTypes.map((t) => {
    if (!t.type.includes("-")) return t;
    renamed.add(t.type);
    return { type: t.type.replaceAll("-", "_"), unit: t.unit };
  });
  const defaultSampleType = renamed.has(p.defaultSampleType) ? p.defaultSampleType.replaceAll("-", "_") : p.defaultSampleType;
  return { ...p, sampleTypes, defaultSampleType };
}
