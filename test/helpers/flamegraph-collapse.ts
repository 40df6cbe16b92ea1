// Collapsed stacks of a querier.v1 FlameGraph as it arrives in JSON (levels of [x delta, total,
// self, name] tuples), for comparing a response with an oracle's collapsed stacks.

export function collapsedFromFlamegraph(fg: { names: string[]; levels: { values?: (string | number)[] }[] }): Map<string, number> {
  const levels = fg.levels.map((l) => {
    const v = (l.values ?? []).map(Number);
    for (let i = 0, end = 0; i < v.length; i += 4) {
      v[i] += end;
      end = v[i] + v[i + 1];
    }
    return v;
  });
  const out = new Map<string, number>();
  for (let d = 1; d < levels.length; d++)
    for (let j = 0; j < levels[d].length; j += 4) {
      const self = levels[d][j + 2];
      if (self === 0) continue;
      const stack = [fg.names[levels[d][j + 3]]];
      let x = levels[d][j];
      for (let up = d - 1; up >= 1; up--) {
        const row = levels[up];
        let k = 0;
        while (k + 4 < row.length && row[k + 4] <= x) k += 4;
        stack.unshift(fg.names[row[k + 3]]);
        x = row[k];
      }
      const key = stack.join(";");
      out.set(key, (out.get(key) ?? 0) + self);
    }
  return out;
}
