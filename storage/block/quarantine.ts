// Wraps a block's reader so a block that fails to read (a corrupt or vanished file) is reported
// once and then answers as empty: the tenant's other blocks and head keep serving.

import type { ProfileReader, SelectQuery } from "../head/read.ts";
import { mergedProfileShell } from "../head/read.ts";
import { Tree } from "../model/tree.ts";

export function quarantinable(block: ProfileReader, onError: (e: unknown) => void): ProfileReader {
  let failed = false;
  async function guard<T>(run: () => Promise<T>, empty: () => T): Promise<T> {
    if (failed) return empty();
    try {
      return await run();
    } catch (e) {
      if (!failed) {
        failed = true;
        onError(e);
      }
      return empty();
    }
  }
  return {
    profileTypes: (r) => guard(() => block.profileTypes(r), () => []),
    labelNames: (m, r) => guard(() => block.labelNames(m, r), () => []),
    labelValues: (n, m, r) => guard(() => block.labelValues(n, m, r), () => []),
    series: (m, r) => guard(() => block.series(m, r), () => []),
    selectMergeTree: (q) => guard(() => block.selectMergeTree(q), () => new Tree()),
    selectMergeProfile: (q: SelectQuery) => guard(() => block.selectMergeProfile(q), () => mergedProfileShell(q)),
    selectMergeSpanTree: (q) => guard(() => block.selectMergeSpanTree(q), () => new Tree()),
    selectSeries: (q) => guard(() => block.selectSeries(q), () => []),
  };
}
