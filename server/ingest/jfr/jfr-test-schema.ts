// Test helper: an async-profiler-like JFR schema for JfrWriter, plus a few extra types the parser
// must step over (a pool type and an event type it does not know, with every field encoding).

import { JfrWriter, type ClassSpec, type Value } from "./jfr-test-writer.ts";

const STACK = { name: "stackTrace", type: "jdk.types.StackTrace", cp: true };
const CORRELATION = [
  { name: "contextId", type: "long" },
  { name: "spanId", type: "long" },
  { name: "spanName", type: "long" },
];

export const TEST_CLASSES: ClassSpec[] = [
  { name: "jdk.types.Symbol", fields: [{ name: "string", type: "java.lang.String" }] },
  {
    name: "java.lang.Class",
    fields: [
      { name: "classLoader", type: "long" },
      { name: "name", type: "jdk.types.Symbol", cp: true },
      { name: "modifiers", type: "int" },
    ],
  },
  {
    name: "jdk.types.Method",
    fields: [
      { name: "type", type: "java.lang.Class", cp: true },
      { name: "name", type: "jdk.types.Symbol", cp: true },
      { name: "descriptor", type: "jdk.types.Symbol", cp: true },
      { name: "modifiers", type: "int" },
      { name: "hidden", type: "boolean" },
    ],
  },
  { name: "jdk.types.FrameType", fields: [{ name: "description", type: "java.lang.String" }] },
  {
    name: "jdk.types.StackFrame",
    fields: [
      { name: "method", type: "jdk.types.Method", cp: true },
      { name: "lineNumber", type: "int" },
      { name: "bytecodeIndex", type: "int" },
      { name: "type", type: "jdk.types.FrameType", cp: true },
    ],
  },
  {
    name: "jdk.types.StackTrace",
    fields: [
      { name: "truncated", type: "boolean" },
      { name: "frames", type: "jdk.types.StackFrame", array: true },
    ],
  },
  { name: "jdk.types.ThreadState", fields: [{ name: "name", type: "java.lang.String" }] },
  {
    name: "x.UnknownPool",
    fields: [
      { name: "a", type: "double" },
      { name: "b", type: "java.lang.String" },
      { name: "c", type: "float" },
      { name: "d", type: "long", array: true },
      { name: "e", type: "jdk.types.FrameType" },
    ],
  },
  { name: "jdk.ExecutionSample", fields: [{ name: "startTime", type: "long" }, STACK, { name: "state", type: "jdk.types.ThreadState", cp: true }, ...CORRELATION] },
  {
    name: "profiler.WallClockSample",
    fields: [{ name: "startTime", type: "long" }, STACK, { name: "state", type: "jdk.types.ThreadState", cp: true }, { name: "samples", type: "int" }, ...CORRELATION],
  },
  {
    name: "jdk.ObjectAllocationInNewTLAB",
    fields: [
      { name: "startTime", type: "long" },
      STACK,
      { name: "objectClass", type: "java.lang.Class", cp: true },
      { name: "allocationSize", type: "long" },
      { name: "tlabSize", type: "long" },
      ...CORRELATION,
    ],
  },
  { name: "jdk.ThreadPark", fields: [{ name: "startTime", type: "long" }, { name: "duration", type: "long" }, STACK, { name: "contextId", type: "long" }] },
  { name: "profiler.LiveObject", fields: [{ name: "startTime", type: "long" }, STACK, { name: "allocationSize", type: "long" }] },
  {
    name: "jdk.ActiveSetting",
    fields: [
      { name: "startTime", type: "long" },
      { name: "id", type: "long" },
      { name: "name", type: "java.lang.String" },
      { name: "value", type: "java.lang.String" },
    ],
  },
  {
    name: "x.OtherEvent",
    fields: [
      { name: "v", type: "double" },
      { name: "s", type: "java.lang.String" },
      { name: "f", type: "float" },
    ],
  },
];

export const STATE_RUNNABLE = 1;
export const STATE_SLEEPING = 2;

/**
 * Pools for two classes and three methods: stack 1 = Main.main ← App$$Lambda$12/0x..run (leaf),
 * stack 2 = Main.main ← Main.work, stack 3 has an unknown method (its frame is dropped).
 */
export function testPools(): Record<string, [number, Value][]> {
  return {
    "jdk.types.Symbol": [
      [1, "com/example/Main"],
      [2, "main"],
      [3, "com/example/App$$Lambda$12/0x0000000800c01220"],
      [4, "run"],
      [5, "work"],
      [6, "()V"],
    ],
    "java.lang.Class": [
      [10, [0, 1, 1]],
      [11, [0, 3, 1]],
    ],
    "jdk.types.Method": [
      [20, [10, 2, 6, 9, false]],
      [21, [11, 4, 6, 1, false]],
      [22, [10, 5, 6, 1, true]],
    ],
    "jdk.types.FrameType": [[1, "Interpreted"]],
    "jdk.types.StackTrace": [
      [1, [false, [[21, 7, 0, 1], [20, 3, 1, 1]]]],
      [2, [false, [[22, 40, 2, 1], [20, 3, 1, 1]]]],
      [3, [true, [[22, 41, 2, 1], [99, 1, 1, 1], [20, 3, 1, 1]]]],
    ],
    "jdk.types.ThreadState": [
      [STATE_RUNNABLE, "STATE_RUNNABLE"],
      [STATE_SLEEPING, "STATE_SLEEPING"],
    ],
    "x.UnknownPool": [[1, [0, "skip me", 0, [1, 2, 3], ["nested"]]]],
  };
}

export function testWriter() {
  return new JfrWriter(TEST_CLASSES);
}

/** Event field values in TEST_CLASSES order. */
export const ev = {
  exec: (stack: number, state: number, ctx = 0, span: bigint = 0n, spanName = 0): [string, Value[]] => ["jdk.ExecutionSample", [0, stack, state, ctx, span, spanName]],
  wallClock: (stack: number, state: number, samples: number, ctx = 0): [string, Value[]] => ["profiler.WallClockSample", [0, stack, state, samples, ctx, 0, 0]],
  tlab: (stack: number, tlabSize: number, ctx = 0): [string, Value[]] => ["jdk.ObjectAllocationInNewTLAB", [0, stack, 10, 16, tlabSize, ctx, 0, 0]],
  park: (stack: number, duration: number, ctx = 0): [string, Value[]] => ["jdk.ThreadPark", [0, duration, stack, ctx]],
  live: (stack: number): [string, Value[]] => ["profiler.LiveObject", [0, stack, 24]],
  setting: (name: string, value: string): [string, Value[]] => ["jdk.ActiveSetting", [0, 1, name, value]],
  other: (): [string, Value[]] => ["x.OtherEvent", [0, "not ours", 0]],
};
