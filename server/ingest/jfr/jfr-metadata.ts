// The metadata event of a JFR chunk: the type descriptors (classes and their fields) that say how
// every event and constant-pool entry is laid out, plus generic skipping of any value by type.

import * as r from "./jfr-reader.ts";
import { JfrFormatError } from "./jfr-reader.ts";

// How a value is encoded on the wire.
export const K_VARINT = 0; // char, short, int, long (compressed integers)
export const K_BYTE = 1; // boolean, byte
export const K_F32 = 2;
export const K_F64 = 3;
export const K_STRING = 4;
export const K_CPREF = 5; // a constant-pool key (varint)
export const K_STRUCT = 6; // the fields of another class, inline
export const K_UNKNOWN = 7; // a type id the metadata never declared

const PRIMITIVES: Record<string, number> = {
  boolean: K_BYTE,
  byte: K_BYTE,
  char: K_VARINT,
  short: K_VARINT,
  int: K_VARINT,
  long: K_VARINT,
  float: K_F32,
  double: K_F64,
  "java.lang.String": K_STRING,
};

export interface FieldDesc {
  name: string;
  typeId: number;
  array: boolean;
  /** Encoding of one element: K_CPREF when the field points into a constant pool. */
  kind: number;
  /** The field's class (for K_STRUCT), resolved once every class is known. */
  cls: ClassDesc | null;
}

export interface ClassDesc {
  id: number;
  name: string;
  fields: FieldDesc[];
  /** Encoding of a value of this class when it is not a pool reference. */
  kind: number;
}

export interface JfrMetadata {
  byId: Map<number, ClassDesc>;
  byName: Map<string, ClassDesc>;
}

const MAX_DEPTH = 32;

/** Reads the metadata event at `start` (chunk-absolute offset); `end` bounds it. */
export function readMetadata(start: number, end: number): JfrMetadata {
  r.seek(start);
  const size = r.varint();
  if (size <= 0 || start + size > end) throw new JfrFormatError(`metadata event at offset ${start} has bad size ${size}`);
  const typeId = r.varint();
  if (typeId !== 0) throw new JfrFormatError(`metadata offset ${start} points at an event of type ${typeId}, not the metadata event (type 0)`);
  r.varint(); // start time
  r.varint(); // duration
  r.varint(); // metadata id
  const nStrings = r.length();
  const strings: string[] = new Array(nStrings);
  for (let i = 0; i < nStrings; i++) strings[i] = r.string() ?? "";
  const meta: JfrMetadata = { byId: new Map(), byName: new Map() };
  const str = (i: number) => {
    if (i >= strings.length) throw new JfrFormatError(`metadata string index ${i} out of range (${strings.length} strings)`);
    return strings[i];
  };
  const root = readElementHead(str, false);
  if (root.name !== "root") throw new JfrFormatError(`metadata starts with element "${root.name}", expected "root"`);
  for (let i = 0; i < root.children; i++) {
    const el = readElementHead(str, false);
    if (el.name === "metadata") {
      for (let j = 0; j < el.children; j++) readClass(str, meta);
    } else {
      skipChildren(str, el.children, 1);
    }
  }
  if (r.pos > start + size) throw new JfrFormatError(`metadata event at offset ${start} is longer than its size ${size}`);
  resolve(meta);
  return meta;
}

interface ElementHead {
  name: string;
  attrs: Record<string, string> | null;
  children: number;
}

function readElementHead(str: (i: number) => string, wantAttrs: boolean): ElementHead {
  const name = str(r.varint());
  const n = r.length();
  let attrs: Record<string, string> | null = null;
  if (wantAttrs) attrs = {};
  for (let i = 0; i < n; i++) {
    const k = str(r.varint());
    const v = str(r.varint());
    if (attrs) attrs[k] = v;
  }
  return { name, attrs, children: r.length() };
}

function skipChildren(str: (i: number) => string, n: number, depth: number) {
  if (depth > MAX_DEPTH) throw new JfrFormatError("metadata elements nested too deeply");
  for (let i = 0; i < n; i++) {
    const el = readElementHead(str, false);
    skipChildren(str, el.children, depth + 1);
  }
}

function readClass(str: (i: number) => string, meta: JfrMetadata) {
  const el = readElementHead(str, true);
  const a = el.attrs!;
  const id = Number(a.id);
  if (el.name !== "class" || !a.name || !Number.isSafeInteger(id)) {
    throw new JfrFormatError(`metadata class element "${el.name}" lacks a valid name or id`);
  }
  const cls: ClassDesc = { id, name: a.name, fields: [], kind: PRIMITIVES[a.name] ?? K_STRUCT };
  for (let k = 0; k < el.children; k++) {
    const f = readElementHead(str, true);
    if (f.name === "field") {
      const fa = f.attrs!;
      const typeId = Number(fa.class);
      if (!fa.name || !Number.isSafeInteger(typeId)) throw new JfrFormatError(`field of class ${cls.name} lacks a valid name or class`);
      const dim = fa.dimension;
      if (dim !== undefined && dim !== "" && dim !== "0" && dim !== "1") {
        throw new JfrFormatError(`field ${cls.name}.${fa.name} has unsupported dimension ${dim}`);
      }
      cls.fields.push({ name: fa.name, typeId, array: dim === "1", kind: fa.constantPool === "true" ? K_CPREF : K_UNKNOWN, cls: null });
    }
    skipChildren(str, f.children, 1);
  }
  meta.byId.set(id, cls);
  meta.byName.set(cls.name, cls);
}

function resolve(meta: JfrMetadata) {
  for (const cls of meta.byId.values()) {
    for (const f of cls.fields) {
      const t = meta.byId.get(f.typeId) ?? null;
      f.cls = t;
      if (f.kind === K_CPREF) continue;
      f.kind = t ? t.kind : K_UNKNOWN;
    }
  }
}

/** Skips one value of field `f` (all elements when it is an array). */
export function skipField(f: FieldDesc, depth = 0) {
  if (f.array) {
    const n = r.length();
    for (let i = 0; i < n; i++) skipOne(f, depth);
  } else {
    skipOne(f, depth);
  }
}

function skipOne(f: FieldDesc, depth: number) {
  switch (f.kind) {
    case K_VARINT:
    case K_CPREF:
      r.skipVarint();
      return;
    case K_BYTE:
      r.skip(1);
      return;
    case K_F32:
      r.skip(4);
      return;
    case K_F64:
      r.skip(8);
      return;
    case K_STRING:
      r.skipString();
      return;
    case K_STRUCT:
      skipStruct(f.cls!, depth + 1);
      return;
    default:
      throw new JfrFormatError(`field ${f.name} has type id ${f.typeId}, which the metadata does not declare`);
  }
}

/** Skips one inline value of class `cls`. */
export function skipStruct(cls: ClassDesc, depth = 0) {
  if (depth > MAX_DEPTH) throw new JfrFormatError(`class ${cls.name} nests itself more than ${MAX_DEPTH} levels deep`);
  if (cls.kind !== K_STRUCT) {
    skipOne({ name: cls.name, typeId: cls.id, array: false, kind: cls.kind, cls }, depth);
    return;
  }
  const fs = cls.fields;
  for (let i = 0; i < fs.length; i++) skipField(fs[i], depth);
}

/** Reads one integer-like field value (varint, byte or pool key) as a number; skips others, giving 0. */
export function readNumber(f: FieldDesc): number {
  if (!f.array) {
    if (f.kind === K_VARINT || f.kind === K_CPREF) return r.varint();
    if (f.kind === K_BYTE) return r.u8();
  }
  skipField(f);
  return 0;
}
