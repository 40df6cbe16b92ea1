import { describe, expect, test } from "bun:test";
import { HeapGovernor, processHeapUsage } from "./heap-governor.ts";

describe("HeapGovernor", () => {
  test("collects only once the heap grows the margin past what the last collection left", () => {
    let heap = 100;
    let live = 60;
    const g = new HeapGovernor({ marginBytes: 50, liveFraction: 0, checkEveryMs: 1e9, usage: () => ({ heap, external: 0 }), collect: () => (heap = live) });
    expect(g.check()).toBe(false); // floor 100, 100 < 150
    heap = 149;
    expect(g.check()).toBe(false);
    heap = 150;
    expect(g.check()).toBe(true);
    expect(heap).toBe(60);
    expect(g.collections).toBe(1);
    // The floor is now 60: growth to 109 is fine, 110 collects.
    heap = 109;
    expect(g.check()).toBe(false);
    heap = 110;
    live = 80;
    expect(g.check()).toBe(true);
    expect(heap).toBe(80);
    // The engine collecting on its own lowers the floor.
    heap = 40;
    expect(g.check()).toBe(false);
    heap = 89;
    expect(g.check()).toBe(false);
    heap = 90;
    expect(g.check()).toBe(true);
    g.close();
  });

  test("collectNow collects whatever the margin and resets the floor to what it left", () => {
    let heap = 100;
    const g = new HeapGovernor({ marginBytes: 50, checkEveryMs: 1e9, usage: () => ({ heap, external: 0 }), collect: () => (heap = 70) });
    heap = 110;
    expect(g.check()).toBe(false);
    g.collectNow();
    expect(heap).toBe(70);
    expect(g.collections).toBe(1);
    // The floor is 70 now: 120 collects, where the old floor (100) would have waited until 150.
    heap = 120;
    expect(g.check()).toBe(true);
    g.close();
  });

  test("a large live heap earns a margin of half its size; external memory has a margin of its own", () => {
    let use = { heap: 200, external: 10 };
    const g = new HeapGovernor({ marginBytes: 50, liveFraction: 0.5, externalMarginBytes: 100, checkEveryMs: 1e9, usage: () => ({ ...use }), collect: () => (use = { heap: 200, external: 10 }) });
    use = { heap: 299, external: 10 }; // under 200 + max(50, 100)
    expect(g.check()).toBe(false);
    use = { heap: 300, external: 10 };
    expect(g.check()).toBe(true);
    use = { heap: 200, external: 109 }; // external under 10 + 100
    expect(g.check()).toBe(false);
    use = { heap: 200, external: 110 };
    expect(g.check()).toBe(true);
    expect(g.collections).toBe(2);
    g.close();
  });

  test("block writes and merges look with the storage margin; other paths with theirs", () => {
    let use = { heap: 100, external: 10 };
    const g = new HeapGovernor({ marginBytes: 50, externalMarginBytes: 50, storageMarginBytes: 20, checkEveryMs: 1e9, usage: () => ({ ...use }), collect: () => (use = { heap: 100, external: 10 }) });
    use = { heap: 130, external: 10 }; // 30 over: under the margin, over the storage margin
    g.poke();
    expect(g.collections).toBe(0);
    // poke() and pokeStorage() share a 20 ms rate limit.
    const t = performance.now();
    while (performance.now() - t < 25);
    g.pokeStorage();
    expect(g.collections).toBe(1);
    use = { heap: 100, external: 29 }; // external 19 over: under the storage margin
    while (performance.now() - t < 50);
    g.pokeStorage();
    expect(g.collections).toBe(1);
    use = { heap: 100, external: 30 };
    while (performance.now() - t < 75);
    g.pokeStorage();
    expect(g.collections).toBe(2);
    g.close();
  });

  test("with Bun's real collector, garbage above the margin is reclaimed", () => {
    const g = new HeapGovernor({ marginBytes: 16 * 2 ** 20, checkEveryMs: 1e9 });
    let junk: number[][] | null = [];
    // Live while it is built, so the engine cannot collect it early: ~80 MB.
    for (let i = 0; i < 1000; i++) junk.push(Array.from({ length: 10_000 }, (_, j) => j + i + 0.5));
    junk = null;
    const before = process.memoryUsage().heapUsed;
    expect(g.check()).toBe(true);
    expect(process.memoryUsage().heapUsed).toBeLessThan(before - 16 * 2 ** 20);
    g.close();
  });

  test("the default usage sees the heap grow between collections, and fall after one", () => {
    Bun.gc(true);
    const before = processHeapUsage().heap;
    // ~50 MB of small objects, kept live until measured.
    const keep: { name: string; at: number[] }[] = [];
    for (let i = 0; i < 400_000; i++) keep.push({ name: `frame ${i}`, at: [i, i + 1] });
    const grown = processHeapUsage().heap;
    expect(grown - before).toBeGreaterThan(30e6);
    expect(keep.length).toBe(400_000);
    keep.length = 0;
    Bun.gc(true);
    expect(processHeapUsage().heap).toBeLessThan(grown - 30e6);
  });
});
