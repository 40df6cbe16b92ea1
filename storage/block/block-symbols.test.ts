// BlockSymbols reads symbols.bin lazily: every symbol must come back equal to the head's, and a
// flame graph of one service must decode only that service's names.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { FIXTURES } from "../../test/helpers/pprof-oracle.ts";
import { compactBlocks } from "../compact.ts";
import { Head } from "../head/head.ts";
import { SymbolTable } from "../head/symbol-table.ts";
import { sortLabels } from "../model/labels.ts";
import { parseSelector } from "../model/selector.ts";
import { collapsed } from "../model/tree.ts";
import { BlockReader } from "./reader.ts";
import { writeBlock } from "./writer.ts";
import type { Profile } from "../model/profile.ts";
import { decodeBlockSymbols, type BlockSymbols } from "./block-symbols.ts";
import { encodeBlockSymbols, readSymbolsCounts, symbolsLayout, SYMBOLS_COUNT_KEYS } from "./symbols-file-writer.ts";

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

/** Every stack's frames, locations, functions and mappings of `b` equal `want`'s (same ids). */
function expectSameSymbols(b: BlockSymbols, want: BlockSymbols) {
  expect(b.stackCount).toBe(want.stackCount);
  expect(b.functionCount).toBe(want.functionCount);
  expect(b.mappings).toEqual(want.mappings);
  for (let id = 1; id < want.stackCount; id++) {
    expect(b.stackParent[id]).toBe(want.stackParent[id]);
    expect(b.stackNameIds(id, []).map((n) => b.names.get(n))).toEqual(want.stackNameIds(id, []).map((n) => want.names.get(n)));
    expect(b.location(b.stackLoc[id])).toEqual(want.location(want.stackLoc[id]));
  }
  for (let i = 0; i < want.functionCount; i++) expect(b.func(i)).toEqual(want.func(i));
}

/** A version 2 file's body, changed by `edit` (given the body and its layout), packed again. */
function damaged(bytes: Uint8Array, edit: (body: Uint8Array, at: ReturnType<typeof symbolsLayout>) => void): Uint8Array {
  const body = new Uint8Array(Bun.zstdDecompressSync(bytes.subarray(5)));
  edit(body, symbolsLayout(readSymbolsCounts(body)));
  const z = Bun.zstdCompressSync(body);
  const out = new Uint8Array(5 + z.length);
  out.set(bytes.subarray(0, 5));
  out.set(z, 5);
  return out;
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
    // Ids pointing past their tables, in each kind of section.
    const u32At = (body: Uint8Array, off: number) => new DataView(body.buffer, body.byteOffset + off, 4);
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.lineFn).setUint32(0, 1e9, true)))).toThrow("function id 1000000000 out of range");
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.fnName).setUint32(0, 1e9, true)))).toThrow("string id 1000000000 out of range");
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.stackBack + 4).setUint32(0, 2, true)))).toThrow("stack 1 is malformed");
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.stackLoc + 4).setUint32(0, 1e9, true)))).toThrow("stack 1 is malformed");
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.locMapping).setInt32(0, 1e6, true)))).toThrow("mapping id 1000000 out of range");
    expect(() => decodeBlockSymbols(damaged(bytes, (b, at) => u32At(b, at.strEnd).setUint32(0, 1e9, true)))).toThrow("string 0 out of range");
    // A count that does not match the body: the layout no longer fits.
    expect(() => decodeBlockSymbols(damaged(bytes, (b) => u32At(b, 4 * SYMBOLS_COUNT_KEYS.indexOf("stacks")).setUint32(0, 1e6, true)))).toThrow(/truncated/);
    // The undamaged body, repacked the same way, still reads.
    expect(decodeBlockSymbols(damaged(bytes, () => {})).stackCount).toBe(sym.stackCount);
  });

  test("the arrays are views of the decompressed file: opening copies nothing but the mappings", () => {
    const b = decodeBlockSymbols(bytes);
    const body = Bun.zstdDecompressSync(bytes.subarray(5)).byteLength;
    const buf = b.stackParent.buffer;
    expect(buf.byteLength).toBe(body);
    for (const a of [b.stackLoc, b.packed.address, b.packed.lineFn, b.packed.lineStart, b.packed.mapping]) expect(a.buffer).toBe(buf);
    expect(b.bytes).toBeLessThan(body * 1.25);
  });

  test("a version 1 file (blocks written before version 2) reads as the same symbols", () => {
    // testdata/symbols-v1.bin was written by the version 1 encoder from these three fixtures.
    const v1 = readFileSync(join(import.meta.dir, "testdata", "symbols-v1.bin"));
    expect(v1[4]).toBe(1);
    const { sym: t } = table(["cpu.pb.gz", "profile_python", "profile_rust"]);
    const v2 = encodeBlockSymbols(t, null).bytes;
    expect(v2[4]).toBe(2);
    const old = decodeBlockSymbols(v1);
    expect(old.stackCount).toBe(t.stackCount);
    expectSameSymbols(old, decodeBlockSymbols(v2));
    // Damage to a version 1 file is still named.
    const inner = Bun.zstdDecompressSync(v1.subarray(5));
    const z = Bun.zstdCompressSync(inner.subarray(0, inner.length - 3));
    const cut = new Uint8Array(5 + z.length);
    cut.set(v1.subarray(0, 5));
    cut.set(z, 5);
    expect(() => decodeBlockSymbols(cut)).toThrow(/truncated|malformed|out of range/);
  });
});

describe("blocks written before symbols.bin version 2", () => {
  const tmp = mkdtempSync(join(tmpdir(), "hearth-symbols-v1-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const files = ["cpu.pb.gz", "profile_python", "profile_rust"];

  /** A block of the three fixtures (one series each), as written today. */
  async function block(t: number): Promise<string> {
    const h = new Head();
    for (const f of files) h.append(sortLabels([{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: f }]), { ...fixture(f), timeNanos: BigInt(t) * 1000000n });
    return join(tmp, (await writeBlock(h, tmp)).ulid);
  }

  /** Every fixture's flame graph (frames → value), every profile type, from the blocks in `dirs`. */
  async function answers(dirs: string[]) {
    const out: Record<string, Record<string, number>> = {};
    for (const dir of dirs) {
      const r = await BlockReader.open(dir);
      for (const pt of await r.profileTypes({ start: 0, end: 0 }))
        for (const f of files) {
          const tree = await r.selectMergeTree({ profileTypeId: pt, matchers: parseSelector(`{service_name="${f}"}`), start: 0, end: 0 });
          const acc = (out[`${pt} ${f}`] ??= {});
          for (const [stack, v] of collapsed(tree)) acc[stack] = (acc[stack] ?? 0) + v;
        }
      r.close();
    }
    return out;
  }

  test("a block holding a version 1 file answers and compacts as one holding version 2", async () => {
    const a = await block(1_000);
    const b = await block(2_000);
    // The head interns the fixtures as table() does, so the block's stack ids are the v1 file's.
    const v2 = readFileSync(join(a, "symbols.bin"));
    expect(v2[4]).toBe(2);
    expectSameSymbols(decodeBlockSymbols(v2), decodeBlockSymbols(encodeBlockSymbols(table(files).sym, null).bytes));
    const want = await answers([a, b]);
    // Each fixture's own profile types have stacks.
    for (const f of files) expect(Object.entries(want).some(([k, x]) => k.endsWith(" " + f) && Object.keys(x).length >= 6)).toBe(true);

    // Block a now holds the version 1 file, with meta.json saying so.
    const v1 = readFileSync(join(import.meta.dir, "testdata", "symbols-v1.bin"));
    writeFileSync(join(a, "symbols.bin"), v1);
    const meta = JSON.parse(readFileSync(join(a, "meta.json"), "utf8"));
    meta.files.find((f: { relPath: string }) => f.relPath === "symbols.bin").sizeBytes = v1.length;
    writeFileSync(join(a, "meta.json"), JSON.stringify(meta));
    expect(await answers([a, b])).toEqual(want);

    // Compacted with a version 2 block, the output is version 2 and answers the same.
    const merged = await compactBlocks([a, b], tmp);
    const out = join(tmp, merged.ulid);
    expect(readFileSync(join(out, "symbols.bin"))[4]).toBe(2);
    expect(await answers([out])).toEqual(want);
  });
});
