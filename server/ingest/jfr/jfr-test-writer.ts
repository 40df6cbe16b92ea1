// Test helper: writes small JFR chunks from a description (classes, pools, events), so tests can
// exercise layouts the fixtures lack: unknown event and pool types, every string encoding,
// several chunks and checkpoints.

export type FieldSpec = { name: string; type: string; cp?: boolean; array?: boolean };
export type ClassSpec = { name: string; fields?: FieldSpec[] };
/** A value: number (varint), bigint (varint, 64-bit), string, boolean, raw bytes, or nested values. */
export type Value = number | bigint | string | boolean | null | Uint8Array | Value[];

export class ByteSink {
  bytes: number[] = [];
  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      if (x < 0x80n) {
        this.bytes.push(Number(x));
        return this;
      }
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x & 0xffn));
    return this;
  }
  raw(b: ArrayLike<number>) {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
    return this;
  }
  /** A JFR string: null, "" and UTF-8 (encoding 3). */
  string(s: string | null) {
    if (s === null) return this.raw([0]);
    if (s === "") return this.raw([1]);
    const b = new TextEncoder().encode(s);
    return this.raw([3]).varint(b.length).raw(b);
  }
}

const PRIMS = ["boolean", "byte", "char", "short", "int", "long", "float", "double", "java.lang.String"];

export class JfrWriter {
  private ids = new Map<string, number>();
  private classes: ClassSpec[] = [];

  constructor(classes: ClassSpec[]) {
    for (const p of PRIMS) this.define({ name: p });
    for (const c of classes) this.define(c);
  }

  private define(c: ClassSpec) {
    this.ids.set(c.name, this.ids.size + 1);
    this.classes.push(c);
  }

  id(name: string): number {
    const id = this.ids.get(name);
    if (id === undefined) throw new Error(`no class ${name}`);
    return id;
  }

  private spec(name: string): ClassSpec {
    return this.classes.find((c) => c.name === name)!;
  }

  /** Encodes one value of class `type` (fields in order) into `s`. */
  value(s: ByteSink, type: string, v: Value, cp = false) {
    if (cp) return s.varint(v as number | bigint);
    switch (type) {
      case "boolean":
      case "byte":
        return s.raw([v ? Number(v) & 0xff : 0]);
      case "float":
        return s.raw([0, 0, 0, 0]);
      case "double":
        return s.raw([0, 0, 0, 0, 0, 0, 0, 0]);
      case "java.lang.String":
        return v instanceof Uint8Array ? s.raw(v) : s.string(v as string | null);
      case "char":
      case "short":
      case "int":
      case "long":
        return s.varint(v as number | bigint);
    }
    const fields = this.spec(type).fields ?? [];
    const vs = (Array.isArray(v) ? v : [v]) as Value[]; // a one-field class may be given bare
    fields.forEach((f, i) => {
      if (f.array) {
        const arr = vs[i] as Value[];
        s.varint(arr.length);
        for (const x of arr) this.value(s, f.type, x, f.cp);
      } else {
        this.value(s, f.type, vs[i], f.cp);
      }
    });
    return s;
  }

  private metadata(): number[] {
    const strings: string[] = [];
    const str = (x: string) => {
      let i = strings.indexOf(x);
      if (i < 0) i = strings.push(x) - 1;
      return i;
    };
    const body = new ByteSink();
    const el = (name: string, attrs: Record<string, string>, children: (() => void)[]) => {
      body.varint(str(name)).varint(Object.keys(attrs).length);
      for (const [k, v] of Object.entries(attrs)) body.varint(str(k)).varint(str(v));
      body.varint(children.length);
      for (const c of children) c();
    };
    el("root", {}, [
      () =>
        el(
          "metadata",
          {},
          this.classes.map((c) => () =>
            el(
              "class",
              { id: String(this.id(c.name)), name: c.name },
              (c.fields ?? []).map((f) => () => {
                const a: Record<string, string> = { name: f.name, class: String(this.id(f.type)) };
                if (f.cp) a.constantPool = "true";
                if (f.array) a.dimension = "1";
                el("field", a, [() => el("annotation", { class: "1" }, [])]);
              }),
            ),
          ),
        ),
      () => el("region", { locale: "en_US" }, []),
    ]);
    const head = new ByteSink().varint(0).varint(0).varint(0).varint(1).varint(strings.length);
    for (const x of strings) head.string(x);
    return sized([...head.bytes, ...body.bytes]);
  }

  /**
   * One chunk. `pools`: type name → [key, value][]; `events`: [type name, field values][].
   * `splitPools` puts each pool in its own checkpoint, chained by negative deltas as the JDK does;
   * `rawPools` are appended, pre-encoded, to every checkpoint.
   */
  chunk(pools: Record<string, [number, Value][]>, events: [string, Value[]][], opts: { splitPools?: boolean; rawPools?: number[][] } = {}): Uint8Array {
    const out: number[] = new Array(68).fill(0);
    for (const [type, fields] of events) {
      const s = new ByteSink().varint(this.id(type));
      this.value(s, type, fields);
      out.push(...sized(s.bytes));
    }
    const groups = opts.splitPools ? Object.entries(pools).map((e) => [e]) : [Object.entries(pools)];
    let cpOffset = 0;
    let prev = 0;
    for (const g of groups) {
      const at = out.length;
      const s = new ByteSink().varint(1).varint(0).varint(0).varint(prev ? prev - at : 0).raw([0]).varint(g.length + (opts.rawPools?.length ?? 0));
      for (const [type, entries] of g) {
        s.varint(this.id(type)).varint(entries.length);
        for (const [k, v] of entries) {
          s.varint(k);
          this.value(s, type, v);
        }
      }
      for (const raw of opts.rawPools ?? []) s.raw(raw); // after the known pools: may end the checkpoint
      out.push(...sized(s.bytes));
      prev = at;
      cpOffset = at;
    }
    const metaOffset = out.length;
    out.push(...this.metadata());
    const dv = new DataView(new ArrayBuffer(68));
    dv.setUint32(0, 0x464c5200);
    dv.setUint32(4, 0x20000);
    dv.setBigUint64(8, BigInt(out.length));
    dv.setBigUint64(16, BigInt(cpOffset));
    dv.setBigUint64(24, BigInt(metaOffset));
    dv.setBigUint64(56, 1000000000n);
    dv.setUint32(64, 1);
    const b = new Uint8Array(out);
    b.set(new Uint8Array(dv.buffer), 0);
    return b;
  }
}

/** Prefixes an event's bytes with its total size, as a padded 4-byte varint like the JDK's. */
function sized(body: number[]): number[] {
  const n = body.length + 4;
  return [(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, ((n >> 14) & 0x7f) | 0x80, (n >> 21) & 0x7f, ...body];
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
