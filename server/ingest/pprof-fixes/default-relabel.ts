// Pyroscope's default ingestion relabeling rules (pkg/validation/relabeling.go), applied to the
// series labels of every push before anything else:
//   __name__="godeltaprof_X" → __name__="X", __delta__="false", __name_replaced__="godeltaprof_X"
//     (godeltaprof already sends deltas, so the head must not diff them again);
//   __name__="wall" with __type__="cpu" → __name__="process_cpu", __name_replaced__="wall".

import { sortLabels, type Labels } from "../../../storage/model/labels.ts";

export const LABEL_NAME_REPLACED = "__name_replaced__";

// Prometheus relabel regexes are anchored; RE2's `.` does not match a newline, nor does JS's.
const GODELTAPROF = /^godeltaprof_(.*)$/;

/** The relabeled set (sorted), or `ls` itself when no rule applies. `ls` is not modified. */
export function applyDefaultRelabelRules(ls: Labels): Labels {
  const name = get(ls, "__name__");
  let out: Map<string, string> | null = null;
  const set = (k: string, v: string) => {
    out ??= new Map(ls.map((l) => [l.name, l.value]));
    // A replacement that expands to "" deletes the target label, as in Prometheus.
    if (v === "") out.delete(k);
    else out.set(k, v);
  };
  const current = (k: string) => (out ? (out.get(k) ?? "") : get(ls, k));

  const m = GODELTAPROF.exec(name);
  if (m) set(LABEL_NAME_REPLACED, name);
  if (GODELTAPROF.test(current(LABEL_NAME_REPLACED))) set("__delta__", "false");
  if (m) set("__name__", m[1]);
  if (`${current("__name__")}/${current("__type__")}` === "wall/cpu") {
    set(LABEL_NAME_REPLACED, "wall");
    set("__name__", "process_cpu");
  }
  if (out === null) return ls;
  return sortLabels([...(out as Map<string, string>)].map(([n, value]) => ({ name: n, value })));
}

function get(ls: Labels, name: string): string {
  for (const l of ls) if (l.name === name) return l.value;
  return "";
}
