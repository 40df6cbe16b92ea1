// BlockSymbols reads symbols.bin lazily: every symbol must come back equal to the head's, and a
// flame graph of one service must decode only that service's names.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { FIXTURES } from "../../test/helpers/pprof-oracle.ts";
import { SymbolTable } from "../head/symbol-table.ts";
import type { Profile } from "../model/profile.ts";
import { decodeBlockSymbols } from "./block-symbols.ts";
import { encodeBlockSymbols } from "./symbols-file-writer.ts";

function fixture(name: string): Profile {
  let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", name));
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return decodePprof(b);
}

/** A head symbol table holding the stacks of `files`, and each file's stack ids. */
function table(files: string[]): { sym: SymbolTable; stacks: number[][] } {
  const sym = new SymbolTable();
  const stacks = files.map((f) => {
    const p = fixture(f);
    const g = sym.internLocations(p);
    const ids: number[] = [];
    for (let i = 0; i < p.samples.count; i++) ids.push(sym.internSampleStack(p.samples.locs, p.samples.locStart[i], p.samples.locStart[i + 1], g));
    return ids;
  });
  return { sym, stacks };
}

describe("BlockSymbols", () => {
  const { sym, stacks } = table(["profile_java", "heap", "profile_python"]);
  const { bytes, stackMap } = encodeBlockSymbols(sym, new Uint8Array(sym.stackCount).fill(1));

  test("every stack, location, function and mapping reads back as the head holds it", () => {
    const b = decodeBlockSymbols(bytes);
    expect(b.stackCount).toBe(sym.stackCount);
    for (let id = 1; id < sym.stackCount; id++) {
      const frames = b.stackNameIds(stackMap[id], []).map((n) => b.names.get(n));
      expect(frames).toEqual(sym.stackNameIds(id, []).map((n) => sym.names.get(n)));
      const loc = b.location(b.stackLoc[stackMap[id]]);
      const want = sym.location(sym.stackLoc[id]);
      expect(loc.address).toBe(want.address);
      expect(loc.isFolded).toBe(want.isFolded);
      expect(loc.lines.map((l) => [b.func(l.fn), l.line])).toEqual(want.lines.map((l) => [sym.func(l.fn), l.line]));
      if (want.mapping >= 0) expect(b.mapping(loc.mapping)).toEqual(sym.mapping(want.mapping));
    }
  });

  test("a flame graph of one service decodes that service's names only", () => {
    const b = decodeBlockSymbols(bytes);
    const before = b.bytes;
    const python = new Set<number>();
    for (const id of stacks[2]) for (const n of b.stackNameIds(stackMap[id], [])) python.add(n);
    // Every name interned so far belongs to the python stacks, and the Java and Go ones are many more.
    expect(b.names.size).toBe(python.size);
    expect(b.functionCount).toBeGreaterThan(5 * python.size);
    expect(b.bytes).toBeGreaterThan(before);
  });

  test("damage is an error naming what is wrong, never a silent partial table", () => {
    const inner = Bun.zstdDecompressSync(bytes.subarray(5));
    const repack = (body: Uint8Array) => {
      const z = Bun.zstdCompressSync(body);
      const out = new Uint8Array(5 + z.length);
      out.set(bytes.subarray(0, 5));
      out.set(z, 5);
      return out;
    };
    expect(() => decodeBlockSymbols(repack(inner.subarray(0, inner.length - 3)))).toThrow(/truncated|malformed|out of range/);
    const extra = new Uint8Array(inner.length + 1);
    extra.set(inner);
    expect(() => decodeBlockSymbols(repack(extra))).toThrow("trailing bytes");
    expect(() => decodeBlockSymbols(new Uint8Array([1, 2, 3, 4, 5, 6]))).toThrow("bad magic");
  });
});
