// OTLP attribute values as label strings, and the service name of a resource, by Pyroscope's
// rules: only string and int values (or a one-element array of them) count; the rest is dropped.

import type { AnyValue, KeyValue } from "../../api/gen/opentelemetry/proto/common/v1/common_pb.ts";
import type { ProfilesDictionary } from "../../api/gen/opentelemetry/proto/profiles/v1development/profiles_pb.ts";

export const SERVICE_NAME_ATTR = "service.name";
const EXECUTABLE_NAME_ATTR = "process.executable.name";
export const UNKNOWN_SERVICE = "unknown_service";

function scalarString(v: AnyValue | undefined): string {
  switch (v?.value.case) {
    case "stringValue":
      return v.value.value;
    case "intValue":
      return v.value.value.toString();
    default:
      return "";
  }
}

/** The value as a label value; "" means "not usable as a label". */
export function anyValueString(v: AnyValue | undefined): string {
  const s = scalarString(v);
  if (s !== "" || v?.value.case !== "arrayValue") return s;
  const vs = v.value.value.values;
  return vs.length === 1 ? scalarString(vs[0]) : "";
}

/**
 * `service.name`, else `unknown_service` (with `:<process.executable.name>` appended when the
 * resource names its executable), as the OpenTelemetry semantic conventions say.
 */
export function resourceServiceName(attrs: KeyValue[]): string {
  let fallback = UNKNOWN_SERVICE;
  for (const a of attrs) {
    const v = anyValueString(a.value);
    if (v === "") continue;
    if (a.key === SERVICE_NAME_ATTR) return v;
    if (a.key === EXECUTABLE_NAME_ATTR) fallback += ":" + v;
  }
  return fallback;
}

/** An entry of a dictionary table, or an error naming the table and the index. */
export function at<T>(table: T[], i: number, what: string): T {
  if (i >= 0 && i < table.length) return table[i];
  throw new Error(`${what} index ${i} is out of range (the table has ${table.length} entries)`);
}

/** The label value of attribute `key` among `indices` of the dictionary's attribute table; "" if absent. */
export function dictAttribute(indices: number[], dict: ProfilesDictionary, key: string): string {
  for (const i of indices) {
    const a = at(dict.attributeTable, i, "attribute");
    if (at(dict.stringTable, a.keyStrindex, "attribute key string") === key) return anyValueString(a.value);
  }
  return "";
}
