import { describe, expect, test } from "bun:test";
import * as r from "./jfr-reader.ts";
import { JfrFormatError } from "./jfr-reader.ts";
import { ByteSink } from "./jfr-test-writer.ts";

const bytes = (s: ByteSink) => new Uint8Array(s.bytes);

describe("jfr-reader", () => {
  test("varint: LEB128 up to 64 bits, the ninth byte carrying 8 bits", () => {
    const values = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 32 + 5, 2 ** 53 - 1];
    const s = new ByteSink();
    for (const v of values) s.varint(v);
    r.reset(bytes(s));
    for (const v of values) expect(r.varint()).toBe(v);
    expect(r.pos).toBe(s.bytes.length);
    // a padded varint (the JDK pads event sizes to four bytes) reads as its value
    r.reset(new Uint8Array([0x85, 0x80, 0x80, 0x00]));
    expect(r.varint()).toBe(5);
    expect(r.pos).toBe(4);
  });

  test("varlongParts and varlongSigned are exact across all 64 bits", () => {
    const s = new ByteSink().varint(0xfedcba9876543210n).varint(-2n).varint(-1234567n).varint(0xffffffffffffffffn);
    r.reset(bytes(s));
    expect(r.varlongParts()).toBe(0x76543210);
    expect(r.hi).toBe(0xfedcba98);
    expect(r.varlongSigned()).toBe(-2);
    expect(r.varlongSigned()).toBe(-1234567);
    expect(r.varlongParts()).toBe(0xffffffff);
    expect(r.hi).toBe(0xffffffff);
  });

  test("skipVarint steps over values of any length", () => {
    r.reset(bytes(new ByteSink().varint(2n ** 63n).varint(7)));
    r.skipVarint();
    expect(r.varint()).toBe(7);
  });

  test("strings in every JFR encoding", () => {
    const s = new ByteSink();
    s.raw([0]); // null
    s.raw([1]); // empty
    s.string("héllo wörld ✓"); // UTF-8
    s.raw([4]).varint(3).varint(0x4a).varint(0x20ac).varint(0x21); // char array
    s.raw([5, 3, 0x63, 0xe9, 0x9f]); // Latin-1 (0x9f stays U+009F, not windows-1252)
    s.raw([2]).varint(42); // constant pool reference
    r.reset(bytes(s));
    r.setStringPool(new Map([[42, "pooled"]]));
    expect(r.string()).toBeNull();
    expect(r.string()).toBe("");
    expect(r.string()).toBe("héllo wörld ✓");
    expect(r.string()).toBe("J€!");
    expect(r.string()).toBe("cé\u009f");
    expect(r.string()).toBe("pooled");
    r.reset(bytes(s));
    for (let i = 0; i < 6; i++) r.skipString();
    expect(r.pos).toBe(s.bytes.length);
  });

  test("an unknown string encoding or an impossible length throws JfrFormatError", () => {
    r.reset(new Uint8Array([9]));
    expect(() => r.string()).toThrow(/unknown string encoding 9/);
    r.reset(new Uint8Array([3, 0x7f, 0x61]));
    expect(() => r.string()).toThrow(JfrFormatError);
    r.reset(new Uint8Array([5, 0xff, 0xff, 0x03]));
    expect(() => r.skipString()).toThrow(/runs past the end/);
  });

  test("big-endian header fields", () => {
    r.reset(new Uint8Array([0x46, 0x4c, 0x52, 0x00, 0, 0, 0, 1, 0, 0, 0, 2]));
    expect(r.u32At(0)).toBe(0x464c5200);
    expect(r.u64At(4)).toBe(2 ** 32 + 2);
  });
});
