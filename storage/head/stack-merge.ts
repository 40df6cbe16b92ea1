// Turns per-stack sums into answers, for the head and for blocks alike: a name-keyed tree, or a
// pprof-shaped profile with only the symbols it references, renumbered densely.

import type { Func, Location, Mapping, Profile } from "../model/profile.ts";
import { parseProfileTypeId } from "../model/profile-type.ts";
import { StringTable, Tree } from "../model/tree.ts";
import type { SelectQuery } from "./read.ts";

/**
 * What both the head's symbol table and a block's symbols offer. Symbols are asked for one by
 * one: a block builds only the objects an answer uses.
 */
export interface StackSymbols {
  readonly names: StringTable;
  readonly stackParent: Uint32Array;
  readonly stackLoc: Uint32Array;
  stackNameIds(stackId: number, out: number[]): number[];
  location(i: number): Location;
  func(i: number): Func;
  mapping(i: number): Mapping;
}

/** A tree of the stacks `ids` (ascending block stack ids) with values `sums`; zeros skipped. */
export function treeFromStackSums(sym: StackSymbols, ids: Uint32Array, sums: Float64Array): Tree {
  const tree = new Tree(sym.names);
  const frames: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const v = sums[i];
    if (v !== 0) tree.insertStackIds(sym.stackNameIds(ids[i], frames), v, true);
  }
  return tree;
}

/** One sample per non-empty stack with a non-zero sum; symbols copied and renumbered densely. */
export function profileFromStackSums(q: SelectQuery, sym: StackSymbols, ids: Uint32Array, sums: Float64Array): Profile {
  const locMap = new Map<number, number>();
  const fnMap = new Map<number, number>();
  const mapMap = new Map<number, number>();
  const locations: Location[] = [];
  const functions: Func[] = [];
  const mappings: Mapping[] = [];
  const locStart: number[] = [0];
  const locs: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const v = sums[i];
    if (v === 0 || id === 0) continue;
    for (let node = id; node !== 0; node = sym.stackParent[node]) {
      const g = sym.stackLoc[node];
      let li = locMap.get(g);
      if (li === undefined) {
        const loc = sym.location(g);
        let mi = -1;
        if (loc.mapping >= 0) {
          mi = mapMap.get(loc.mapping) ?? -1;
          if (mi < 0) {
            mi = mappings.length;
            mappings.push(sym.mapping(loc.mapping));
            mapMap.set(loc.mapping, mi);
          }
        }
        const lines = loc.lines.map((l) => {
          let fi = fnMap.get(l.fn);
          if (fi === undefined) {
            fi = functions.length;
            functions.push(sym.func(l.fn));
            fnMap.set(l.fn, fi);
          }
          return { fn: fi, line: l.line };
        });
        li = locations.length;
        locations.push({ mapping: mi, address: loc.address, lines, isFolded: loc.isFolded });
        locMap.set(g, li);
      }
      locs.push(li);
    }
    locStart.push(locs.length);
    values.push(v);
  }
  return {
    ...mergedProfileShell(q),
    mappings,
    functions,
    locations,
    samples: {
      count: values.length,
      locStart: Uint32Array.from(locStart),
      locs: Uint32Array.from(locs),
      values: Float64Array.from(values),
      labels: null,
    },
  };
}

/**
 * A merged profile with no samples and the metadata Pyroscope sets on SelectMergeProfile output:
 * one sample type, the query's period type, period 1e9 for process_cpu, 524288 for memory, else 1.
 */
export function mergedProfileShell(q: SelectQuery): Profile {
  const pt = parseProfileTypeId(q.profileTypeId);
  const period = pt.name === "process_cpu" ? 1e9 : pt.name === "memory" ? 524288 : 1;
  return {
    sampleTypes: [{ type: pt.sampleType, unit: pt.sampleUnit }],
    periodType: { type: pt.periodType, unit: pt.periodUnit },
    period,
    timeNanos: BigInt(q.start) * 1000000n,
    durationNanos: q.end > q.start ? (q.end - q.start) * 1e6 : 0,
    defaultSampleType: pt.sampleType,
    comments: [],
    dropFrames: "",
    keepFrames: "",
    mappings: [],
    functions: [],
    locations: [],
    samples: { count: 0, locStart: new Uint32Array(1), locs: new Uint32Array(0), values: new Float64Array(0), labels: null },
  };
}
