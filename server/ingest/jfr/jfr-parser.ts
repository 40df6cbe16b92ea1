// parseJfr: walks a JFR recording chunk by chunk (header → metadata → constant pools → events)
// and hands the profiling events it knows to a sink, their fields decoded into fixed slots.
// Events of any other type are stepped over by their size, so unknown events never fail a parse.

import { ConstantPools } from "./jfr-constant-pools.ts";
import { K_BYTE, K_CPREF, K_STRING, K_VARINT, readMetadata, skipField, type ClassDesc, type FieldDesc } from "./jfr-metadata.ts";
import * as r from "./jfr-reader.ts";
import { JfrFormatError } from "./jfr-reader.ts";

export const EV_EXECUTION_SAMPLE = 0;
export const EV_WALL_CLOCK_SAMPLE = 1;
export const EV_ALLOC_IN_NEW_TLAB = 2;
export const EV_ALLOC_OUTSIDE_TLAB = 3;
export const EV_ALLOC_SAMPLE = 4;
export const EV_MONITOR_ENTER = 5;
export const EV_THREAD_PARK = 6;
export const EV_LIVE_OBJECT = 7;
export const EV_MALLOC = 8;
export const EV_ACTIVE_SETTING = 9;

// Numeric slots of a decoded event (0 when the event type lacks the field).
export const F_STACK = 0;
export const F_STATE = 1;
export const F_CONTEXT = 2;
/** spanId is 64 bits: its low and high halves, exact. */
export const F_SPAN_LO = 3;
export const F_SPAN_HI = 4;
export const F_SPAN_NAME = 5;
/** The event's weight: samples, tlabSize, allocationSize, weight, duration or size. */
export const F_VALUE = 6;
const N_SLOTS = 7;
// String slots (ActiveSetting).
const S_NAME = 100;
const S_VALUE = 101;

export interface JfrEvent {
  f: Float64Array;
  name: string | null;
  value: string | null;
}

export interface JfrEventSink {
  /** A chunk starts; its constant pools are fully read. */
  beginChunk(pools: ConstantPools): void;
  /** One event of a known kind; `e` is reused for the next event. */
  event(kind: number, e: JfrEvent): void;
}

const CORRELATION = { contextId: F_CONTEXT, spanId: F_SPAN_LO, spanName: F_SPAN_NAME };
const EVENTS: [string, number, Record<string, number>][] = [
  ["jdk.ExecutionSample", EV_EXECUTION_SAMPLE, { stackTrace: F_STACK, state: F_STATE, ...CORRELATION }],
  ["profiler.WallClockSample", EV_WALL_CLOCK_SAMPLE, { stackTrace: F_STACK, state: F_STATE, samples: F_VALUE, ...CORRELATION }],
  ["jdk.ObjectAllocationInNewTLAB", EV_ALLOC_IN_NEW_TLAB, { stackTrace: F_STACK, tlabSize: F_VALUE, ...CORRELATION }],
  ["jdk.ObjectAllocationOutsideTLAB", EV_ALLOC_OUTSIDE_TLAB, { stackTrace: F_STACK, allocationSize: F_VALUE, ...CORRELATION }],
  ["jdk.ObjectAllocationSample", EV_ALLOC_SAMPLE, { stackTrace: F_STACK, weight: F_VALUE }],
  ["jdk.JavaMonitorEnter", EV_MONITOR_ENTER, { stackTrace: F_STACK, duration: F_VALUE, ...CORRELATION }],
  ["jdk.ThreadPark", EV_THREAD_PARK, { stackTrace: F_STACK, duration: F_VALUE }],
  ["profiler.LiveObject", EV_LIVE_OBJECT, { stackTrace: F_STACK }],
  ["profiler.Malloc", EV_MALLOC, { stackTrace: F_STACK, size: F_VALUE }],
  ["jdk.ActiveSetting", EV_ACTIVE_SETTING, { name: S_NAME, value: S_VALUE }],
];

interface EventPlan {
  kind: number;
  fields: FieldDesc[];
  /** Per field: the slot it fills, or -1 to skip it. */
  slots: Int32Array;
}

const HEADER_SIZE = 68;
const MAGIC = 0x464c5200; // "FLR\0"
const FEATURE_COMPRESSED_INTS = 1;

/** Parses every chunk of `data`; throws JfrFormatError when the recording is damaged. */
export function parseJfr(data: Uint8Array, sink: JfrEventSink) {
  r.reset(data);
  const ev: JfrEvent = { f: new Float64Array(N_SLOTS), name: null, value: null };
  let at = 0;
  if (data.length === 0) throw new JfrFormatError("the recording is empty");
  try {
    while (at < data.length) at = parseChunk(data, at, sink, ev);
  } finally {
    r.reset(new Uint8Array(0)); // drop the reference to the caller's buffer, even on failure
  }
}

function parseChunk(data: Uint8Array, start: number, sink: JfrEventSink, ev: JfrEvent): number {
  const left = data.length - start;
  if (left < HEADER_SIZE) throw new JfrFormatError(`truncated: the chunk header at offset ${start} needs ${HEADER_SIZE} bytes, only ${left} remain`);
  const magic = r.u32At(start);
  if (magic !== MAGIC) throw new JfrFormatError(`not a JFR chunk at offset ${start}: magic is 0x${magic.toString(16).padStart(8, "0")}, expected 0x464c5200 ("FLR\\0")`);
  const major = r.u32At(start + 4) >>> 16;
  if (major !== 2) throw new JfrFormatError(`chunk at offset ${start} has JFR format version ${major}, only version 2 is supported`);
  const size = r.u64At(start + 8);
  const cpOffset = r.u64At(start + 16);
  const metaOffset = r.u64At(start + 24);
  const features = r.u32At(start + 64);
  if (size < HEADER_SIZE) throw new JfrFormatError(`chunk at offset ${start} declares an impossible size of ${size} bytes`);
  if (size > left) throw new JfrFormatError(`truncated: the chunk at offset ${start} declares ${size} bytes, only ${left} remain`);
  if (cpOffset < HEADER_SIZE || cpOffset >= size || metaOffset < HEADER_SIZE || metaOffset >= size) {
    throw new JfrFormatError(`chunk at offset ${start} has constant pool offset ${cpOffset} / metadata offset ${metaOffset} outside the chunk (${size} bytes)`);
  }
  if ((features & FEATURE_COMPRESSED_INTS) === 0) throw new JfrFormatError(`chunk at offset ${start} uses uncompressed integers, which are not supported`);
  const end = start + size;

  const meta = readMetadata(start + metaOffset, end);
  const pools = new ConstantPools();
  pools.read(meta, start, end, cpOffset);
  sink.beginChunk(pools);

  const plans = new Map<number, EventPlan>();
  for (const [name, kind, slots] of EVENTS) {
    const cls = meta.byName.get(name);
    if (cls) plans.set(cls.id, makePlan(cls, kind, slots));
  }

  const f = ev.f;
  r.seek(start + HEADER_SIZE);
  while (r.pos < end) {
    const at = r.pos;
    const evSize = r.varint();
    if (evSize <= 0 || at + evSize > end) throw new JfrFormatError(`event at offset ${at} has bad size ${evSize} (chunk ends at ${end})`);
    const type = r.varint();
    const plan = type > 1 ? plans.get(type) : undefined;
    if (plan !== undefined) {
      f.fill(0);
      ev.name = null;
      ev.value = null;
      readEvent(plan, ev);
      if (r.pos > at + evSize) throw new JfrFormatError(`event at offset ${at} (type ${type}) is longer than its size ${evSize}`);
      sink.event(plan.kind, ev);
    }
    r.seek(at + evSize);
  }
  return end;
}

function makePlan(cls: ClassDesc, kind: number, want: Record<string, number>): EventPlan {
  const slots = new Int32Array(cls.fields.length).fill(-1);
  cls.fields.forEach((fd, i) => {
    const s = want[fd.name];
    if (s === undefined || fd.array) return;
    const numeric = fd.kind === K_VARINT || fd.kind === K_CPREF || fd.kind === K_BYTE;
    if (s >= S_NAME ? fd.kind === K_STRING : numeric && (s !== F_SPAN_LO || fd.kind !== K_BYTE)) slots[i] = s;
  });
  return { kind, fields: cls.fields, slots };
}

function readEvent(plan: EventPlan, ev: JfrEvent) {
  const fs = plan.fields;
  const slots = plan.slots;
  const f = ev.f;
  for (let i = 0; i < fs.length; i++) {
    const s = slots[i];
    if (s < 0) {
      skipField(fs[i]);
    } else if (s === F_SPAN_LO) {
      f[F_SPAN_LO] = r.varlongParts();
      f[F_SPAN_HI] = r.hi;
    } else if (s < S_NAME) {
      f[s] = fs[i].kind === K_BYTE ? r.u8() : r.varint();
    } else if (s === S_NAME) {
      ev.name = r.string();
    } else {
      ev.value = r.string();
    }
  }
}
