// Pyroscope's series-label rules (ValidateLabels), per tenant, each refusal tagged with its
// discard reason. Runs on labels already sanitized (dots → underscores) and sorted.

import { LABEL_NAME, LABEL_SERVICE_NAME, getLabel, type Labels } from "../../storage/model/labels.ts";
import { invalid } from "./discard.ts";

export interface LabelLimits {
  /** 0 = off, as every limit here. */
  maxLabelNamesPerSeries: number;
  maxLabelNameLength: number;
  maxLabelValueLength: number;
}

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `{a="1", b="2"}`, values cut short, for naming a series in an error. */
export function labelsString(ls: Labels): string {
  const cut = (v: string) => (v.length > 64 ? v.slice(0, 64) + "…" : v);
  return `{${ls.map((l) => `${cut(l.name)}=${JSON.stringify(cut(l.value))}`).join(", ")}}`;
}

/** Throws a DiscardError naming the first broken rule; `ls` must be sorted by name. */
export function validateLabels(ls: Labels, limits: LabelLimits): void {
  if (ls.length === 0) throw invalid("missing_labels", "profile series has no labels; at least service_name and __name__ are needed");
  const max = limits.maxLabelNamesPerSeries;
  if (max > 0 && ls.length > max)
    throw invalid("max_label_names_per_series", `profile series ${labelsString(ls)} has ${ls.length} labels, more than the limit of ${max} (max_label_names_per_series)`);
  const name = getLabel(ls, LABEL_NAME);
  if (!name) throw invalid("invalid_labels", `profile series ${labelsString(ls)} has no __name__ label (invalid metric name)`);
  if (!getLabel(ls, LABEL_SERVICE_NAME)) throw invalid("missing_labels", `service name is not provided (label service_name is empty) in ${labelsString(ls)}`);
  let prev = "";
  for (const l of ls) {
    if (limits.maxLabelNameLength > 0 && l.name.length > limits.maxLabelNameLength)
      throw invalid("label_name_too_long", `label name ${JSON.stringify(l.name.slice(0, 64))}… is longer than ${limits.maxLabelNameLength} characters (max_label_name_length)`);
    if (limits.maxLabelValueLength > 0 && l.value.length > limits.maxLabelValueLength)
      throw invalid("label_value_too_long", `value of label ${JSON.stringify(l.name)} is ${l.value.length} characters, longer than ${limits.maxLabelValueLength} (max_label_value_length)`);
    if (!LABEL_NAME_RE.test(l.name)) throw invalid("invalid_labels", `invalid label name ${JSON.stringify(l.name)}: names are letters, digits and _, not starting with a digit`);
    if (l.name === prev) throw invalid("duplicate_label_names", `duplicate label name ${JSON.stringify(l.name)} in ${labelsString(ls)}`);
    prev = l.name;
  }
}
