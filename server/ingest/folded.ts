// The folded ("collapsed") and lines text formats: `a;b;c 42` per line, or one stack per line.

import { unprocessable } from "../errors.ts";

const MAX_LINE = 64 * 1024;

/** Parses folded text: the value follows the last space; lines without a space are skipped. */
export function parseFolded(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let lineNo = 0;
  for (const raw of text.split("\n")) {
    lineNo++;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.length > MAX_LINE) break; // Pyroscope's scanner stops at 64 KiB lines; so do we
    const sp = line.lastIndexOf(" ");
    if (sp < 0) continue;
    const vs = line.slice(sp + 1);
    if (!/^[+-]?\d+$/.test(vs)) throw unprocessable(`folded: line ${lineNo}: value ${JSON.stringify(vs.slice(0, 40))} is not an integer`);
    const stack = line.slice(0, sp);
    out.set(stack, (out.get(stack) ?? 0) + Number(vs));
  }
  return out;
}

/** Parses the lines format: each non-empty line is a stack counted once. */
export function parseLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") continue;
    out.set(line, (out.get(line) ?? 0) + 1);
  }
  return out;
}
