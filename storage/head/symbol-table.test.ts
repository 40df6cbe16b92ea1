// SymbolTable on real pprof fixtures, through both ways stacks reach it: a head's ingest (a
// profile's locations and samples) and a merge's (block stacks remapped node by node, in row
// order). What it writes must read back as the fixtures' own stacks (an independent pprof
// decoder's collapse), interning must be idempotent, and a table fed a block's symbols in order
// must write that block's symbols.bin byte for byte.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { collapse, FIXTURES, readPprof } from "../../test/helpers/pprof-oracle.ts";
import { BlockSource } from "../block/block-source.ts";
import { decodeBlockSymbols, type BlockSymbols } from "../block/block-symbols.ts";
import { StackRemap } from "../block/stack-remap.ts";
import { encodeBlockSymbols } from "../block/symbols-file-writer.ts";
import { writeBlock } from "../block/writer.ts";
import { sortLabels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { Head } from "./head.ts";
import { SymbolTable } from "./symbol-table.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-symbol-table-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function fixture(name: string): Profile {
  let b: Uint8Array = readFileSync(join(FIXTURES, "pprof", name));
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  return decodePprof(b);
}

const labels = (service: string) =>
  sortLabels([
    { name: "__name__", value: "process_cpu" },
    { name: "service_name", value: service },
  ]);

/** A block cut from a head holding `profiles`, opened as a merge source. */
async function block(profiles: [service: string, p: Profile][]): Promise<BlockSource> {
  const h = new Head();
  for (const [s, p] of profiles) h.append(labels(s), p);
  const meta = await writeBlock(h, tmp);
  return BlockSource.open(join(tmp, meta.ulid));
}

/** A deterministic shuffle: merges meet a source's stacks in row order, not id order. */
function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Frames of a stack, root first, inlined frames caller first (the oracle's collapse order). */
function frames(sym: BlockSymbols, id: number): string {
  const names = sym.stackNameIds(id, []).map((n) => sym.names.get(n));
  return names.reverse().join(";");
}

/** Interns every stack of every source (in a shuffled order) into one table; returns the ids. */
function internAll(sources: BlockSymbols[]) {
  const table = new SymbolTable();
  const ids = sources.map((sym, k) => {
    const r = new StackRemap(sym, table);
    return shuffled(sym.stackCount, k + 1).map((s) => r.map(s));
  });
  return { table, ids, file: encodeBlockSymbols(table, null).bytes };
}

describe("SymbolTable", () => {
  test("real fixtures merged: stacks read back as the fixtures', interning again adds nothing", async () => {
    // Overlapping sources, as merged blocks are: cpu.pb.gz and heap.pb.gz come back in later blocks.
    const groups: [string, string][][] = [
      [
        ["go", "cpu.pb.gz"],
        ["java", "profile_java"],
      ],
      [
        ["go", "cpu.pb.gz"],
        ["go", "heap.pb.gz"],
        ["node", "nodejs-wall.pb.gz"],
      ],
      [
        ["py", "profile_python"],
        ["ruby", "profile_ruby"],
        ["rust", "profile_rust"],
        ["dotnet", "dotnet-pprof-211.pb.gz"],
        ["go", "heap.pb.gz"],
        ["pyspy", "pyspy-1.pb.gz"],
        ["node", "profile_nodejs"],
      ],
    ];
    const sources: BlockSource[] = [];
    for (const g of groups) sources.push(await block(g.map(([s, f]) => [s, fixture(f)])));
    const syms = sources.map((s) => s.symbols());
    const got = internAll(syms);
    for (const s of sources) s.close();
    expect(got.table.stackCount).toBeGreaterThan(1000);

    // The same sources again, in another order: every stack maps to the id it got, nothing is added.
    const counts = [got.table.stackCount, got.table.locationCount, got.table.functionCount, got.table.names.size];
    syms.forEach((sym, k) => {
      const r = new StackRemap(sym, got.table);
      const again = shuffled(sym.stackCount, k + 1).map((s) => r.map(s));
      expect(again).toEqual(got.ids[k]);
    });
    expect([got.table.stackCount, got.table.locationCount, got.table.functionCount, got.table.names.size]).toEqual(counts);

    // Every source stack reads the same from the merged file.
    const out = decodeBlockSymbols(got.file);
    syms.forEach((sym, k) => {
      const order = shuffled(sym.stackCount, k + 1);
      order.forEach((s, i) => {
        if (frames(sym, s) !== frames(out, got.ids[k][i])) throw new Error(`source ${k} stack ${s}: ${frames(sym, s)} != ${frames(out, got.ids[k][i])}`);
      });
    });
    // And the fixtures' stacks, read by an independent decoder, are all there.
    const have = new Set<string>();
    for (let id = 1; id < out.stackCount; id++) have.add(frames(out, id));
    for (const g of groups)
      for (const [, f] of g) {
        const want = [...collapse(readPprof(join(FIXTURES, "pprof", f)), 0).keys()];
        expect(want.length).toBeGreaterThan(0);
        expect(want.filter((k) => !have.has(k))).toEqual([]);
      }
  });

  test("mappings, wide addresses, folded and inlined locations read back as given, from the head and from a merge", async () => {
    // A hand-made profile exercising what the fixtures may not: addresses past 2^53 (bigint
    // path), folded locations, several lines per location, mappings shared and not.
    const big = 0xfedcba9876543210n;
    const p: Profile = {
      sampleTypes: [{ type: "cpu", unit: "nanoseconds" }],
      periodType: { type: "cpu", unit: "nanoseconds" },
      period: 1,
      timeNanos: 1_000_000_000n,
      durationNanos: 0,
      defaultSampleType: "",
      comments: [],
      dropFrames: "",
      keepFrames: "",
      mappings: [
        { memoryStart: 0x1000n, memoryLimit: 0x2000n, fileOffset: 0n, filename: "a.so", buildId: "x1", hasFunctions: true, hasFilenames: false, hasLineNumbers: true, hasInlineFrames: false },
        { memoryStart: big, memoryLimit: big + 10n, fileOffset: 7n, filename: "b.so", buildId: "", hasFunctions: false, hasFilenames: true, hasLineNumbers: false, hasInlineFrames: true },
      ],
      functions: [
        { name: "f", systemName: "_f", filename: "f.c", startLine: 3 },
        { name: "g", systemName: "g", filename: "g.c", startLine: -1 },
        { name: "f", systemName: "_f", filename: "f2.c", startLine: 3 },
      ],
      locations: [
        { mapping: 0, address: 0x1234n, lines: [{ fn: 0, line: 10 }], isFolded: false },
        { mapping: 1, address: big + 1n, lines: [{ fn: 1, line: 5 }, { fn: 2, line: 6 }], isFolded: true },
        { mapping: -1, address: 0n, lines: [{ fn: 2, line: 0 }], isFolded: false },
        { mapping: 1, address: 2n ** 53n + 3n, lines: [], isFolded: false },
      ],
      samples: { count: 3, locStart: Uint32Array.of(0, 2, 5, 6), locs: Uint32Array.of(0, 1, 2, 1, 0, 3), values: Float64Array.of(1, 2, 3), labels: null },
    };
    const a = await block([["s", p]]);
    const b = await block([["s", { ...p, timeNanos: 2_000_000_000n, locations: [...p.locations].reverse(), samples: { ...p.samples, locs: Uint32Array.of(3, 2, 1, 2, 3, 0) } }]]);
    const syms = [a.symbols(), b.symbols()];
    a.close();
    b.close();
    // The head's way: every location reads back as given, by value; both orders intern alike.
    const head = new SymbolTable();
    const g1 = head.internLocations(p);
    const g2 = head.internLocations({ ...p, locations: [...p.locations].reverse() });
    expect([...g2]).toEqual([...g1].reverse());
    expect([head.locationCount, head.functionCount, head.mappings.length]).toEqual([4, 3, 2]);
    p.locations.forEach((want, i) => {
      const got = head.location(g1[i]);
      expect(got.address).toBe(want.address);
      expect(got.isFolded).toBe(want.isFolded);
      expect(got.mapping < 0 ? null : head.mapping(got.mapping)).toEqual(want.mapping < 0 ? null : p.mappings[want.mapping]);
      expect(got.lines.map((l) => [head.func(l.fn), l.line])).toEqual(want.lines.map((l) => [p.functions[l.fn], l.line]));
    });

    // The merge's way, from blocks of it.
    const got = internAll(syms);
    const out = decodeBlockSymbols(got.file);
    const view = (l: { address: bigint; isFolded: boolean; lines: { fn: number; line: number }[] }, fn: (i: number) => unknown) => JSON.stringify([String(l.address), l.isFolded, l.lines.map((x) => [fn(x.fn), x.line])]);
    expect(out.locations.map((l) => view(l, (i) => out.func(i))).sort()).toEqual(p.locations.map((l) => view(l, (i) => p.functions[i])).sort());
    expect(out.locations.map((l) => l.address).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual([0n, 0x1234n, 2n ** 53n + 3n, big + 1n]);
    expect(out.mappings.map((m) => m.memoryStart)).toEqual([0x1000n, big]);
  });

  test("a table fed a block's symbols in order writes the same symbols.bin", () => {
    const head = new SymbolTable();
    for (const f of ["cpu.pb.gz", "profile_java", "heap.pb.gz", "profile_python"]) {
      const p = fixture(f);
      const g = head.internLocations(p);
      for (let i = 0; i < p.samples.count; i++) head.internSampleStack(p.samples.locs, p.samples.locStart[i], p.samples.locStart[i + 1], g);
    }
    const first = encodeBlockSymbols(head, null).bytes;
    const again = new SymbolTable();
    const sym = decodeBlockSymbols(first);
    const r = new StackRemap(sym, again);
    for (let id = 0; id < sym.stackCount; id++) expect(r.map(id)).toBe(id);
    expect(again.stackCount).toBe(head.stackCount);
    expect(Buffer.from(encodeBlockSymbols(again, null).bytes).equals(Buffer.from(first))).toBe(true);
  });

  test("reserved up front: the same ids and bytes, and no array grows within the reservation", () => {
    const head = new SymbolTable();
    for (const f of ["cpu.pb.gz", "profile_java", "heap.pb.gz"]) {
      const p = fixture(f);
      const g = head.internLocations(p);
      for (let i = 0; i < p.samples.count; i++) head.internSampleStack(p.samples.locs, p.samples.locStart[i], p.samples.locStart[i + 1], g);
    }
    const first = encodeBlockSymbols(head, null).bytes;
    const sym = decodeBlockSymbols(first);
    // Half interned before the reservation, as a table already in use would be.
    const t = new SymbolTable();
    const r = new StackRemap(sym, t);
    for (let id = 0; id < sym.stackCount / 2; id++) r.map(id);
    t.reserve({ functions: sym.functionCount, locations: sym.packed.mapping.length, lines: sym.packed.lineFn.length, stacks: sym.stackCount });
    const arrays = [t.fnName, t.locMapping, t.lineFn, t.stackParent];
    for (let id = 0; id < sym.stackCount; id++) expect(r.map(id)).toBe(id);
    expect([t.fnName, t.locMapping, t.lineFn, t.stackParent].every((a, i) => a === arrays[i])).toBe(true);
    expect(Buffer.from(encodeBlockSymbols(t, null).bytes).equals(Buffer.from(first))).toBe(true);
    // Past it, the table grows as before.
    t.internStackNode(sym.stackCount - 1, 0);
    expect(t.stackParent).not.toBe(arrays[3]);
  });

  test("nothing interned: the empty stack alone, readable", () => {
    const out = decodeBlockSymbols(encodeBlockSymbols(new SymbolTable(), null).bytes);
    expect(out.stackCount).toBe(1);
    expect(out.functions).toEqual([]);
  });
});
