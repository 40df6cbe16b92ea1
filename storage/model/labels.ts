// Label sets of series: sorted name/value pairs, hashed the way Pyroscope hashes them.

export interface LabelPair {
  name: string;
  value: string;
}

/** A label set sorted by name, names unique. */
export type Labels = LabelPair[];

// Reserved label names (Pyroscope's).
export const LABEL_NAME = "__name__";
export const LABEL_PROFILE_TYPE = "__profile_type__";
export const LABEL_TYPE = "__type__";
export const LABEL_UNIT = "__unit__";
export const LABEL_PERIOD_TYPE = "__period_type__";
export const LABEL_PERIOD_UNIT = "__period_unit__";
export const LABEL_DELTA = "__delta__";
export const LABEL_SERVICE_NAME = "service_name";

export function sortLabels(ls: Labels): Labels {
  return ls.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Builds a sorted label set from a record; later keys win. */
export function labelsFromRecord(r: Record<string, string>): Labels {
  return sortLabels(Object.entries(r).map(([name, value]) => ({ name, value })));
}

export function getLabel(ls: Labels, name: string): string | undefined {
  for (const l of ls) if (l.name === name) return l.value;
  return undefined;
}

/** Returns a new sorted set with `name` set to `value` (replacing any existing pair). */
export function withLabel(ls: Labels, name: string, value: string): Labels {
  const out = ls.filter((l) => l.name !== name);
  out.push({ name, value });
  return sortLabels(out);
}

const SEP = "\xff";
const enc = new TextEncoder();

/** Canonical string key of a sorted label set (used for maps). */
export function labelsKey(ls: Labels): string {
  let s = "";
  for (const l of ls) s += l.name + SEP + l.value + SEP;
  return s;
}

/**
 * Pyroscope's Labels.Hash: xxhash64 (seed 0) over `name 0xFF value 0xFF` for each label in order.
 * The separator is the byte 0xFF, not the UTF-8 encoding of U+00FF, so the bytes are built by hand.
 */
export function labelsHash(ls: Labels): bigint {
  const parts: Uint8Array[] = [];
  let n = 0;
  for (const l of ls) {
    const a = enc.encode(l.name);
    const b = enc.encode(l.value);
    parts.push(a, b);
    n += a.length + b.length + 2;
  }
  const buf = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    buf.set(parts[i], o);
    o += parts[i].length;
    buf[o++] = 0xff;
  }
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(buf, 0n)));
}
