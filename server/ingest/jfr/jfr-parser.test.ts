import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { FIXTURES } from "../../../test/helpers/pprof-oracle.ts";
import type { ConstantPools } from "./jfr-constant-pools.ts";
import { EV_ACTIVE_SETTING, EV_EXECUTION_SAMPLE, F_CONTEXT, F_SPAN_HI, F_SPAN_LO, F_STACK, F_STATE, parseJfr } from "./jfr-parser.ts";
import { JfrFormatError } from "./jfr-reader.ts";
import { ev, STATE_RUNNABLE, STATE_SLEEPING, testPools, testWriter } from "./jfr-test-schema.ts";
import { concat } from "./jfr-test-writer.ts";

interface Seen {
  kind: number;
  f: number[];
  name: string | null;
  value: string | null;
}

function collect(data: Uint8Array) {
  const events: Seen[] = [];
  const chunks: ConstantPools[] = [];
  parseJfr(data, {
    beginChunk: (p) => chunks.push(p),
    event: (kind, e) => events.push({ kind, f: [...e.f], name: e.name, value: e.value }),
  });
  return { events, chunks };
}

describe("parseJfr on written chunks", () => {
  const w = testWriter();
  const chunk = w.chunk(testPools(), [ev.setting("event", "wall"), ev.other(), ev.exec(1, STATE_RUNNABLE, 7, 0x0123456789abcdefn, 3), ev.other(), ev.exec(2, STATE_SLEEPING)]);

  test("delivers known events with their fields and steps over unknown event types", () => {
    const { events } = collect(chunk);
    expect(events.map((e) => e.kind)).toEqual([EV_ACTIVE_SETTING, EV_EXECUTION_SAMPLE, EV_EXECUTION_SAMPLE]);
    expect(events[0]).toMatchObject({ name: "event", value: "wall" });
    const a = events[1].f;
    expect([a[F_STACK], a[F_STATE], a[F_CONTEXT]]).toEqual([1, STATE_RUNNABLE, 7]);
    // the 64-bit span id arrives exactly, split in halves
    expect([a[F_SPAN_HI], a[F_SPAN_LO]]).toEqual([0x01234567, 0x89abcdef]);
    expect([events[2].f[F_STACK], events[2].f[F_STATE], events[2].f[F_CONTEXT]]).toEqual([2, STATE_SLEEPING, 0]);
  });

  test("reads the pools it needs and skips the others by their metadata", () => {
    const p = collect(chunk).chunks[0];
    expect(p.symbol(1)).toBe("com/example/Main");
    // lambda class names are normalized when the symbol is read
    expect(p.symbol(3)).toBe("com/example/App$$Lambda_");
    expect(p.threadStates.get(STATE_SLEEPING)).toBe("STATE_SLEEPING");
    const st = p.stacks.get(3);
    expect(p.stackLen[st]).toBe(3);
    expect(Array.from(p.frameMethod.subarray(p.stackStart[st], p.stackStart[st] + 3))).toEqual([22, 99, 20]);
    expect(Array.from(p.frameLine.subarray(p.stackStart[st], p.stackStart[st] + 3))).toEqual([41, 1, 3]);
  });

  test("follows a chain of checkpoints and reads several chunks", () => {
    const split = w.chunk(testPools(), [ev.exec(3, STATE_RUNNABLE)], { splitPools: true });
    const { events, chunks } = collect(concat(chunk, split));
    expect(chunks.length).toBe(2);
    expect(events.length).toBe(4);
    expect(chunks[1].symbol(5)).toBe("work");
    expect(chunks[1].stacks.get(3)).toBeGreaterThanOrEqual(0);
  });

  test("a pool type the metadata never declares ends its checkpoint without failing the parse", () => {
    const odd = w.chunk(testPools(), [ev.exec(1, STATE_RUNNABLE)], { rawPools: [[0x7f, 1, 1, 0xff, 0xff]] });
    const { events, chunks } = collect(odd);
    expect(events.length).toBe(1);
    expect(chunks[0].symbol(2)).toBe("main");
  });

  test("damaged recordings throw JfrFormatError naming the problem", () => {
    const zeroed = chunk.slice();
    zeroed[0] = 0;
    expect(() => collect(zeroed)).toThrow(/magic/);
    expect(() => collect(chunk.subarray(0, 40))).toThrow(/truncated/);
    expect(() => collect(chunk.subarray(0, chunk.length - 10))).toThrow(/truncated/);
    expect(() => collect(new Uint8Array(0))).toThrow(JfrFormatError);
    const badVersion = chunk.slice();
    badVersion[5] = 9; // major version 0x0009
    expect(() => collect(badVersion)).toThrow(/version/);
    // an event whose size runs past the chunk
    const badEvent = chunk.slice();
    badEvent[68] = 0xff;
    badEvent[69] = 0xff;
    badEvent[70] = 0xff;
    expect(() => collect(badEvent)).toThrow(JfrFormatError);
  });

  test("garbage anywhere never escapes as anything but JfrFormatError", () => {
    // Flip bytes across the chunk; the parse may succeed (the byte was in skipped data) or fail,
    // but it must not hang or throw a non-format error.
    for (let i = 68; i < chunk.length; i += 7) {
      const c = chunk.slice();
      c[i] ^= 0xa5;
      try {
        collect(c);
      } catch (e) {
        expect(e).toBeInstanceOf(JfrFormatError);
      }
    }
  });
});

describe("parseJfr on the fixtures", () => {
  for (const f of ["dump1", "dump2"]) {
    test(`${f}: every ExecutionSample points at a stack trace and thread state of its chunk`, () => {
      const data = new Uint8Array(gunzipSync(readFileSync(`${FIXTURES}jfr/${f}.jfr.gz`)));
      const { events, chunks } = collect(data);
      const samples = events.filter((e) => e.kind === EV_EXECUTION_SAMPLE);
      expect(samples.length).toBeGreaterThan(1000);
      const p = chunks[0];
      for (const s of samples) {
        expect(p.stacks.get(s.f[F_STACK])).toBeGreaterThanOrEqual(0);
        expect(p.threadStates.get(s.f[F_STATE])).toMatch(/^STATE_/);
      }
      expect(events.some((e) => e.kind === EV_ACTIVE_SETTING && e.name === "event")).toBe(true);
    });
  }
});
