// Each bench part runs in its own Bun process: RSS then belongs to that part alone, and start-up
// is measured in a process that has done nothing else. A child reports one JSON line on stdout.

import { printTable, Table } from "./table.ts";

const RESULT = "HEARTH-BENCH-RESULT ";
const BUN = process.execPath;

/** Runs `bun <file> ...args` (a file in test/bench/) and returns the JSON value it reported. */
export async function runChild<T>(file: string, args: string[] = []): Promise<T> {
  const path = new URL(file, import.meta.url).pathname;
  const proc = Bun.spawn([BUN, path, ...args], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, HEARTH_BENCH_CHILD: "1" },
  });
  let result: string | null = null;
  // Anything else the child prints is progress: pass it on to stderr as it comes.
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of proc.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith(RESULT)) result = line.slice(RESULT.length);
      else process.stderr.write(line + "\n");
    }
  }
  const code = await proc.exited;
  if (code !== 0) throw new Error(`bench part ${file} ${args.join(" ")} exited with status ${code}`);
  if (result === null) throw new Error(`bench part ${file} ${args.join(" ")} reported no result`);
  return JSON.parse(result) as T;
}

/** The child side: report `value` to the parent; written out before it resolves, so the child may exit. */
export async function report(value: unknown): Promise<void> {
  await Bun.write(Bun.stdout, RESULT + JSON.stringify(value) + "\n");
}

export const isChild = () => process.env.HEARTH_BENCH_CHILD === "1";

/**
 * Entry of a bench part file: fills a table; reports its rows when run by `run.ts`, prints them
 * when run by hand (`bun test/bench/soak.ts`).
 */
export async function partMain(fill: (t: Table) => Promise<void>): Promise<void> {
  const t = new Table();
  await fill(t);
  if (isChild()) await report(t.rows);
  else printTable(t.rows);
}

/** Progress for a long part, on stderr so it never mixes with the result line. */
export function progress(msg: string): void {
  process.stderr.write(`  [bench] ${msg}\n`);
}
