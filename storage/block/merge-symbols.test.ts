// MergeSymbols against the SymbolTable path it replaces in merges: on blocks cut from real pprof
// fixtures, both must intern the same stacks to the same ids and write the same symbols.bin byte
// for byte; the merged stacks must read back as the fixtures' own stacks (an independent pprof
// decoder's collapse).

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { collapse, FIXTURES, readPprof } from "../../test/helpers/pprof-oracle.ts";
import { Head } from "../head/head.ts";
import { SymbolTable } from "../head/symbols.ts";
import { sortLabels } from "../model/labels.ts";
import type { Profile } from "../model/profile.ts";
import { BlockSource } from "./block-source.ts";
import { decodeBlockSymbols, type BlockSymbols } from "./block-symbols.ts";
import { encodeBlockSymbols } from "./symbols-file-writer.ts";
import { MergeSymbols } from "./merge-symbols.ts";
import { StackRemap } from "./stack-remap.ts";
import { writeBlock } from "./writer.ts";

const tmp = mkdtempSync(join(tmpdir(), "hearth-merge-symbols-"));
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

/** Interns every stack of every source through both tables; returns both files and the ids. */
function internBoth(sources: BlockSymbols[]) {
  const table = new SymbolTable();
  const merge = new MergeSymbols();
  const ids: { table: number[]; merge: number[] }[] = [];
  sources.forEach((sym, k) => {
    const a = new StackRemap(sym, table);
    const b = new StackRemap(sym, merge);
    const order = shuffled(sym.stackCount, k + 1);
    ids.push({ table: order.map((s) => a.map(s)), merge: order.map((s) => b.map(s)) });
  });
  const all = new Uint8Array(table.stackCount).fill(1);
  return { table, merge, ids, tableFile: encodeBlockSymbols(table, all).bytes, mergeFile: merge.encode() };
}

describe("MergeSymbols", () => {
  test("real fixtures: the same ids and symbols.bin as the SymbolTable path; stacks read back as the fixtures'", async () => {
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
    const got = internBoth(syms);
    for (const s of sources) s.close();

    expect(got.merge.stackCount).toBe(got.table.stackCount);
    expect(got.merge.functionCount).toBe(got.table.functions.length);
    expect(got.merge.locationCount).toBe(got.table.locations.length);
    expect(got.merge.stackCount).toBeGreaterThan(1000);
    for (const x of got.ids) expect(x.merge).toEqual(x.table);
    expect(Buffer.from(got.mergeFile).equals(Buffer.from(got.tableFile))).toBe(true);

    // Every source stack reads the same from the merged file.
    const out = decodeBlockSymbols(got.mergeFile);
    syms.forEach((sym, k) => {
      const order = shuffled(sym.stackCount, k + 1);
      order.forEach((s, i) => {
        if (frames(sym, s) !== frames(out, got.ids[k].merge[i])) throw new Error(`source ${k} stack ${s}: ${frames(sym, s)} != ${frames(out, got.ids[k].merge[i])}`);
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

  test("mappings, wide addresses, folded and inlined locations: the same file as the SymbolTable path", async () => {
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
    const got = internBoth(syms);
    for (const x of got.ids) expect(x.merge).toEqual(x.table);
    expect(Buffer.from(got.mergeFile).equals(Buffer.from(got.tableFile))).toBe(true);
    const out = decodeBlockSymbols(got.mergeFile);
    expect(out.locations.map((l) => l.address).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual([0n, 0x1234n, 2n ** 53n + 3n, big + 1n]);
    expect(out.mappings.map((m) => m.memoryStart)).toEqual([0x1000n, big]);
  });

  test("nothing interned: the empty stack alone, readable", () => {
    const out = decodeBlockSymbols(new MergeSymbols().encode());
    expect(out.stackCount).toBe(1);
    expect(out.functions).toEqual([]);
  });
});
