// The constant pools of one JFR chunk, read from its chain of checkpoint events: symbols, classes,
// methods, stack traces, thread states and strings. Every other pool type is skipped by its
// metadata layout; a pool whose type the metadata does not declare ends that checkpoint early.

import { K_CPREF, K_STRING, K_STRUCT, K_VARINT, readNumber, skipField, skipStruct, type ClassDesc, type JfrMetadata } from "./jfr-metadata.ts";
import * as r from "./jfr-reader.ts";
import { JfrFormatError } from "./jfr-reader.ts";
import { IdIndex } from "./id-index.ts";
import { normalizeSymbol } from "./jfr-symbols.ts";

const CHECKPOINT_TYPE = 1;
const MAX_CHECKPOINTS = 1 << 20;

// Frame scratch shared by every chunk and parse: parsing is synchronous and a chunk's frames are
// only read while that chunk is current, so the buffers are reused instead of regrown each time.
let scratchMethod = new Float64Array(65536);
let scratchLine = new Int32Array(65536);

export class ConstantPools {
  /** Symbol id → index into symbolStrings, which are already normalized. */
  readonly symbols = new IdIndex();
  readonly symbolStrings: string[] = [];
  /** Class id → index into classNameSymbol (the symbol id of the class name). */
  readonly classes = new IdIndex();
  readonly classNameSymbol: number[] = [];
  /** Method id → index into methodClass / methodName (class id, name symbol id). */
  readonly methods = new IdIndex();
  readonly methodClass: number[] = [];
  readonly methodName: number[] = [];
  /** Stack trace id → index into stackStart / stackLen; frames live in frameMethod / frameLine. */
  readonly stacks = new IdIndex();
  stackStart = new Int32Array(1024);
  stackLen = new Int32Array(1024);
  nStacks = 0;
  frameMethod = scratchMethod;
  frameLine = scratchLine;
  nFrames = 0;
  readonly threadStates = new Map<number, string>();
  readonly strings = new Map<number, string>();

  /** The name of symbol `id`, "" when the pool lacks it (as Pyroscope's parser reads a missing one). */
  symbol(id: number): string {
    const i = this.symbols.get(id);
    return i < 0 ? "" : this.symbolStrings[i];
  }

  /** Follows the checkpoint chain that starts `firstOffset` bytes into the chunk at `chunkStart`. */
  read(meta: JfrMetadata, chunkStart: number, chunkEnd: number, firstOffset: number) {
    r.setStringPool(this.strings);
    let at = chunkStart + firstOffset;
    const seen = new Set<number>();
    for (;;) {
      if (at < chunkStart || at >= chunkEnd) throw new JfrFormatError(`checkpoint offset ${at} lies outside its chunk [${chunkStart}, ${chunkEnd})`);
      if (seen.has(at) || seen.size > MAX_CHECKPOINTS) throw new JfrFormatError(`checkpoint chain loops back to offset ${at}`);
      seen.add(at);
      const delta = this.readCheckpoint(meta, at, chunkEnd);
      if (delta === 0) return;
      at += delta;
    }
  }

  /** Reads one checkpoint event; returns the offset to the next one (0 = last). */
  private readCheckpoint(meta: JfrMetadata, at: number, chunkEnd: number): number {
    r.seek(at);
    const size = r.varint();
    if (size <= 0 || at + size > chunkEnd) throw new JfrFormatError(`checkpoint event at offset ${at} has bad size ${size}`);
    const end = at + size;
    const type = r.varint();
    if (type !== CHECKPOINT_TYPE) throw new JfrFormatError(`constant pool offset ${at} points at an event of type ${type}, not a checkpoint (type 1)`);
    r.varint(); // start time
    r.varint(); // duration
    const delta = r.varlongSigned();
    r.varint(); // flush flag / type mask
    const nPools = r.varint();
    for (let i = 0; i < nPools; i++) {
      const cls = meta.byId.get(r.varint());
      if (!cls) break; // no layout to skip it by: the rest of this checkpoint is unreadable, the next one is fine
      this.readPool(cls);
      if (r.pos > end) throw new JfrFormatError(`constant pool ${cls.name} runs past the end of its checkpoint at offset ${at}`);
    }
    return delta;
  }

  private readPool(cls: ClassDesc) {
    const n = r.length();
    switch (cls.name) {
      case "jdk.types.Symbol":
        return this.readSymbols(cls, n);
      case "java.lang.Class":
        return this.readClasses(cls, n);
      case "jdk.types.Method":
        return this.readMethods(cls, n);
      case "jdk.types.StackTrace":
        return this.readStackTraces(cls, n);
      case "jdk.types.ThreadState":
        return this.readStringField(cls, n, "name", this.threadStates);
      case "java.lang.String":
        for (let i = 0; i < n; i++) {
          const key = r.varint();
          this.strings.set(key, r.string() ?? "");
        }
        return;
      default:
        for (let i = 0; i < n; i++) {
          r.skipVarint();
          skipStruct(cls);
        }
    }
  }

  private readSymbols(cls: ClassDesc, n: number) {
    const fs = cls.fields;
    for (let i = 0; i < n; i++) {
      const key = r.varint();
      let s = "";
      for (let j = 0; j < fs.length; j++) {
        const f = fs[j];
        if (f.name === "string" && f.kind === K_STRING && !f.array) s = r.string() ?? "";
        else skipField(f);
      }
      upsert(this.symbols, key, this.symbolStrings, normalizeSymbol(s));
    }
  }

  private readStringField(cls: ClassDesc, n: number, field: string, out: Map<number, string>) {
    const fs = cls.fields;
    for (let i = 0; i < n; i++) {
      const key = r.varint();
      let s = "";
      for (let j = 0; j < fs.length; j++) {
        const f = fs[j];
        if (f.name === field && f.kind === K_STRING && !f.array) s = r.string() ?? "";
        else skipField(f);
      }
      out.set(key, s);
    }
  }

  private readClasses(cls: ClassDesc, n: number) {
    const fs = cls.fields;
    const at = fs.findIndex((f) => f.name === "name");
    for (let i = 0; i < n; i++) {
      const key = r.varint();
      let v = 0;
      for (let j = 0; j < fs.length; j++) {
        if (j === at) v = readNumber(fs[j]);
        else skipField(fs[j]);
      }
      upsert(this.classes, key, this.classNameSymbol, v);
    }
  }

  private readMethods(cls: ClassDesc, n: number) {
    const fs = cls.fields;
    const tAt = fs.findIndex((f) => f.name === "type");
    const nAt = fs.findIndex((f) => f.name === "name");
    for (let i = 0; i < n; i++) {
      const key = r.varint();
      let type = 0;
      let name = 0;
      for (let j = 0; j < fs.length; j++) {
        if (j === tAt) type = readNumber(fs[j]);
        else if (j === nAt) name = readNumber(fs[j]);
        else skipField(fs[j]);
      }
      const idx = upsert(this.methods, key, this.methodClass, type);
      this.methodName[idx] = name;
    }
  }

  private readStackTraces(cls: ClassDesc, n: number) {
    const fs = cls.fields;
    const framesAt = fs.findIndex((f) => f.name === "frames" && f.array && f.kind === K_STRUCT);
    const frameCls = framesAt >= 0 ? fs[framesAt].cls! : null;
    const ffs = frameCls ? frameCls.fields : [];
    const mAt = ffs.findIndex((f) => f.name === "method" && f.kind === K_CPREF && !f.array);
    const lAt = ffs.findIndex((f) => f.name === "lineNumber" && f.kind === K_VARINT && !f.array);
    // The common layout (async-profiler and the JDK): method, lineNumber, bytecodeIndex, type, all varints.
    const simple = mAt === 0 && lAt === 1 && ffs.length === 4 && ffs.every((f) => !f.array && (f.kind === K_VARINT || f.kind === K_CPREF));
    for (let i = 0; i < n; i++) {
      const key = r.varint();
      const start = this.nFrames;
      for (let j = 0; j < fs.length; j++) {
        if (j !== framesAt) {
          skipField(fs[j]);
          continue;
        }
        const nf = r.length();
        this.reserveFrames(nf);
        const fm = this.frameMethod;
        const fl = this.frameLine;
        let o = this.nFrames;
        if (simple) {
          o = readSimpleFrames(nf, fm, fl, o);
        } else {
          for (let k = 0; k < nf; k++) {
            let m = 0;
            let line = 0;
            for (let q = 0; q < ffs.length; q++) {
              if (q === mAt) m = r.varint();
              else if (q === lAt) line = r.varint();
              else skipField(ffs[q]);
            }
            fm[o] = m;
            fl[o] = line;
            o++;
          }
        }
        this.nFrames = o;
      }
      this.addStack(key, start, this.nFrames - start);
    }
  }

  private reserveFrames(n: number) {
    const need = this.nFrames + n;
    if (need <= this.frameMethod.length) return;
    let cap = this.frameMethod.length * 2;
    while (cap < need) cap *= 2;
    const m = new Float64Array(cap);
    m.set(this.frameMethod.subarray(0, this.nFrames));
    const l = new Int32Array(cap);
    l.set(this.frameLine.subarray(0, this.nFrames));
    this.frameMethod = scratchMethod = m;
    this.frameLine = scratchLine = l;
  }

  private addStack(key: number, start: number, len: number) {
    let idx = this.stacks.get(key);
    if (idx < 0) {
      idx = this.nStacks++;
      if (idx >= this.stackStart.length) {
        const s = new Int32Array(this.stackStart.length * 2);
        s.set(this.stackStart);
        const l = new Int32Array(this.stackLen.length * 2);
        l.set(this.stackLen);
        this.stackStart = s;
        this.stackLen = l;
      }
      this.stacks.set(key, idx);
    }
    this.stackStart[idx] = start;
    this.stackLen[idx] = len;
  }
}

/** Sets `key` to `value` in a pool kept as an id index plus a value array; returns the slot. */
function upsert<T>(index: IdIndex, key: number, values: T[], value: T): number {
  let i = index.get(key);
  if (i < 0) {
    i = values.length;
    index.set(key, i);
  }
  values[i] = value;
  return i;
}

/**
 * The hot loop of a recording: nf frames of (method, lineNumber, bytecodeIndex, type), with the
 * varints decoded inline over local variables (about twice as fast as a call per value).
 */
function readSimpleFrames(nf: number, fm: Float64Array, fl: Int32Array, o: number): number {
  const b = r.buf;
  let p = r.pos;
  for (let k = 0; k < nf; k++) {
    // method id: usually 1-3 bytes; longer ones take the general path
    let x = b[p];
    if (x < 0x80) {
      fm[o] = x;
      p++;
    } else {
      r.seek(p);
      fm[o] = r.varint();
      p = r.pos;
    }
    x = b[p++];
    let v = x & 0x7f;
    let shift = 7;
    while (x >= 0x80 && shift < 35) {
      x = b[p++];
      v |= (x & 0x7f) << shift;
      shift += 7;
    }
    fl[o] = v;
    // bytecodeIndex and type: skipped
    for (let q = 0; q < 2; q++) {
      let guard = 0;
      while (b[p++] >= 0x80 && ++guard < 9);
    }
    o++;
  }
  r.seek(p);
  return o;
}
