// Prometheus-style label selectors as Pyroscope accepts them (promql's ParseMetricSelector), and
// label matching with Prometheus semantics: a label the series lacks matches as "".

import { LABEL_NAME, getLabel, type Labels } from "./labels.ts";

export type MatchType = "=" | "!=" | "=~" | "!~";

export interface Matcher {
  name: string;
  type: MatchType;
  value: string;
  /** The compiled, fully anchored regex of `=~` / `!~` matchers. */
  re?: RegExp;
}

/** A malformed selector; the server maps it to 400 / invalid_argument. */
export class SelectorError extends Error {
  /** 0-based offset into the input where the problem was found. */
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.name = "SelectorError";
    this.position = position;
  }
}

/** Builds a matcher, compiling regexes; throws SelectorError on a bad regex. */
export function newMatcher(name: string, type: MatchType, value: string): Matcher {
  const m: Matcher = { name, type, value };
  if (type === "=~" || type === "!~") m.re = compileRegex(value);
  return m;
}

/**
 * Parses `{a="x", b!="y", c=~"re.*", d!~"re"}`, optionally preceded by a metric name, which
 * becomes a trailing `__name__="…"` matcher as in Prometheus. An empty (or blank) input selects
 * everything and yields no matchers.
 */
export function parseSelector(s: string): Matcher[] {
  return new SelectorParser(s).parse();
}

/**
 * Parses the render form `<profileTypeID>{…}`. The profile type comes from the metric-name
 * position or a `__name__` matcher (the last one wins, as in Pyroscope's parseQuery); all
 * `__name__` matchers are removed. The ID is not validated here: see parseProfileTypeId.
 */
export function parseQuery(s: string): { profileTypeId: string | undefined; matchers: Matcher[] } {
  let profileTypeId: string | undefined;
  const matchers: Matcher[] = [];
  for (const m of parseSelector(s)) {
    if (m.name === LABEL_NAME) profileTypeId = m.value;
    else matchers.push(m);
  }
  return { profileTypeId, matchers };
}

export function matches(m: Matcher, value: string | undefined): boolean {
  const v = value ?? "";
  switch (m.type) {
    case "=":
      return v === m.value;
    case "!=":
      return v !== m.value;
    case "=~":
      return (m.re ??= compileRegex(m.value)).test(v);
    case "!~":
      return !(m.re ??= compileRegex(m.value)).test(v);
  }
}

export function matchesLabels(ms: Matcher[], labels: Labels): boolean {
  for (const m of ms) if (!matches(m, getLabel(labels, m.name))) return false;
  return true;
}

/** Prints matchers back as a selector, the way Prometheus' Matcher.String does (`{a="x",b=~"y"}`). */
export function formatSelector(ms: Matcher[]): string {
  let out = "{";
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i];
    if (i > 0) out += ",";
    out += (LEGACY_NAME.test(m.name) ? m.name : goQuote(m.name)) + m.type + goQuote(m.value);
  }
  return out + "}";
}

const LEGACY_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

function isAlpha(c: string): boolean {
  return c === "_" || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

class SelectorParser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Matcher[] {
    this.skipSpace();
    if (this.pos >= this.src.length) return [];
    const out: Matcher[] = [];
    let name: string | undefined;
    const c = this.src[this.pos];
    if (isAlpha(c) || c === ":") {
      name = this.identifier(true);
      this.skipSpace();
    }
    if (this.src[this.pos] === "{") this.braces(out);
    else if (name === undefined) this.fail(`unexpected ${this.describe()}, expected a metric name or "{"`);
    this.skipSpace();
    if (this.pos < this.src.length) this.fail(`unexpected ${this.describe()} after the selector`);
    if (name !== undefined) out.push({ name: LABEL_NAME, type: "=", value: name });
    return out;
  }

  private braces(out: Matcher[]) {
    this.pos++; // {
    this.skipSpace();
    if (this.src[this.pos] === "}") {
      this.pos++;
      return;
    }
    for (;;) {
      this.matcher(out);
      this.skipSpace();
      const c = this.src[this.pos];
      if (c === ",") {
        this.pos++;
        this.skipSpace();
        // A trailing comma is allowed: {a="b",}
        if (this.src[this.pos] === "}") {
          this.pos++;
          return;
        }
        continue;
      }
      if (c === "}") {
        this.pos++;
        return;
      }
      this.fail(`unexpected ${this.describe()} in label matching, expected "," or "}"`);
    }
  }

  private matcher(out: Matcher[]) {
    const at = this.pos;
    const c = this.src[at];
    let name: string;
    if (c === '"' || c === "'" || c === "`") {
      name = this.string();
      this.skipSpace();
      const n = this.src[this.pos];
      // A quoted name alone is a metric name (Prometheus 3): {"my.metric", a="b"}
      if (n === "," || n === "}") {
        out.push({ name: LABEL_NAME, type: "=", value: name });
        return;
      }
    } else if (isAlpha(c ?? "")) {
      name = this.identifier(false);
      this.skipSpace();
    } else {
      this.fail(`unexpected ${this.describe()} in label matching, expected identifier or "}"`);
    }
    if (name === "") this.fail(`invalid empty label name`, at);
    const type = this.operator();
    this.skipSpace();
    const q = this.src[this.pos];
    if (q !== '"' && q !== "'" && q !== "`") this.fail(`unexpected ${this.describe()} in label matching, expected string`);
    const valueAt = this.pos;
    const value = this.string();
    try {
      out.push(newMatcher(name, type, value));
    } catch (e) {
      if (e instanceof SelectorError) this.fail(e.message, valueAt);
      throw e;
    }
  }

  private operator(): MatchType {
    const c = this.src[this.pos];
    const n = this.src[this.pos + 1];
    if (c === "=") {
      if (n === "~") {
        this.pos += 2;
        return "=~";
      }
      this.pos++;
      return "=";
    }
    if (c === "!") {
      if (n === "=" || n === "~") {
        this.pos += 2;
        return n === "=" ? "!=" : "!~";
      }
      this.pos++;
      this.fail(`unexpected character after '!' inside braces: ${n === undefined ? "end of input" : JSON.stringify(n)}`);
    }
    this.fail(`unexpected ${this.describe()} in label matching, expected label matching operator`);
  }

  private identifier(allowColon: boolean): string {
    const start = this.pos;
    let i = this.pos + 1;
    for (; i < this.src.length; i++) {
      const c = this.src[i];
      if (!(isAlpha(c) || isDigit(c) || (allowColon && c === ":"))) break;
    }
    this.pos = i;
    return this.src.slice(start, i);
  }

  /** Reads a "…", '…' or `…` string with Go-style escapes (raw strings have none). */
  private string(): string {
    const src = this.src;
    const start = this.pos;
    const quote = src[start];
    let i = start + 1;
    if (quote === "`") {
      const end = src.indexOf("`", i);
      if (end < 0) this.fail("unterminated raw string", start);
      this.pos = end + 1;
      return src.slice(i, end);
    }
    let out = "";
    let run = i;
    // \x and octal escapes denote bytes, decoded as UTF-8 together.
    let bytes: number[] | null = null;
    const flushBytes = () => {
      if (bytes) {
        out += utf8.decode(new Uint8Array(bytes));
        bytes = null;
      }
    };
    for (;;) {
      const c = src[i];
      if (c === undefined || c === "\n") this.fail("unterminated quoted string", start);
      if (c === quote) break;
      if (c !== "\\") {
        i++;
        continue;
      }
      if (i > run) {
        flushBytes();
        out += src.slice(run, i);
      }
      const escAt = i;
      const e = src[i + 1];
      i += 2;
      let cp = -1;
      let byte = -1;
      switch (e) {
        case "a": cp = 7; break;
        case "b": cp = 8; break;
        case "f": cp = 12; break;
        case "n": cp = 10; break;
        case "r": cp = 13; break;
        case "t": cp = 9; break;
        case "v": cp = 11; break;
        case "\\": cp = 92; break;
        case undefined:
          this.fail("escape sequence not terminated", escAt);
        default:
          if (e === quote) {
            cp = quote.charCodeAt(0);
          } else if (e >= "0" && e <= "7") {
            byte = this.digits(src, i - 1, 3, 8, escAt);
            if (byte > 255) this.fail("octal escape value > 255", escAt);
            i += 2;
          } else if (e === "x") {
            byte = this.digits(src, i, 2, 16, escAt);
            i += 2;
          } else if (e === "u" || e === "U") {
            const n = e === "u" ? 4 : 8;
            cp = this.digits(src, i, n, 16, escAt);
            i += n;
            if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) this.fail("escape sequence is an invalid Unicode code point", escAt);
          } else {
            this.fail(`unknown escape sequence ${JSON.stringify("\\" + e)}`, escAt);
          }
      }
      if (byte >= 0) (bytes ??= []).push(byte);
      else {
        flushBytes();
        out += String.fromCodePoint(cp);
      }
      run = i;
    }
    flushBytes();
    out += src.slice(run, i);
    this.pos = i + 1;
    return out;
  }

  private digits(src: string, from: number, n: number, base: number, escAt: number): number {
    let x = 0;
    for (let k = 0; k < n; k++) {
      const c = src[from + k];
      const d = c === undefined ? 99 : parseInt(c, 16);
      if (!(d < base)) {
        this.fail(c === undefined ? "escape sequence not terminated" : `illegal character ${JSON.stringify(c)} in escape sequence`, escAt);
      }
      x = x * base + d;
    }
    return x;
  }

  private skipSpace() {
    const src = this.src;
    let i = this.pos;
    while (i < src.length) {
      const c = src[i];
      if (isSpace(c)) i++;
      else if (c === "#") {
        // Line comments, as PromQL's lexer allows them.
        while (i < src.length && src[i] !== "\n" && src[i] !== "\r") i++;
      } else break;
    }
    this.pos = i;
  }

  private describe(): string {
    const c = this.src[this.pos];
    return c === undefined ? "end of input" : `character ${JSON.stringify(c)}`;
  }

  private fail(msg: string, at = this.pos): never {
    // Prometheus style `line:col: parse error: …`, 1-based.
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src[i] === "\n") {
        line++;
        lineStart = i + 1;
      }
    }
    throw new SelectorError(`${line}:${at - lineStart + 1}: parse error: ${msg}`, at);
  }
}

const utf8 = new TextDecoder();

const POSIX_CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

/**
 * Compiles a Go RE2 pattern as Prometheus does: fully anchored, `.` matching newlines
 * (`^(?s:re)$`). RE2-only syntax seen in practice is translated: flag groups `(?i)` (scoped to
 * the rest of their group, as RE2 scopes them), `(?P<name>`, `\A`, `\z`, `\pL`, `\Q…\E` and
 * POSIX classes such as `[[:alpha:]]`.
 */
export function compileRegex(re: string): RegExp {
  let i = 0;
  let out = "";
  let inClass = false;
  // Per open group, the `(?flags:` groups opened inside it, which its `)` (or a `|`) must close.
  const pending: string[][] = [[]];
  while (i < re.length) {
    const c = re[i];
    if (c === "\\") {
      const n = re[i + 1];
      if (n === undefined) throw new SelectorError(`invalid regex ${JSON.stringify(re)}: trailing backslash`, 0);
      if (n === "Q") {
        // \Q…\E quotes everything up to \E (or the end).
        const end = re.indexOf("\\E", i + 2);
        const lit = re.slice(i + 2, end < 0 ? re.length : end);
        out += lit.replace(/[\\^$.*+?()[\]{}|\/]/g, "\\$&");
        i = end < 0 ? re.length : end + 2;
        continue;
      }
      if (!inClass && n === "A") out += "^";
      else if (!inClass && n === "z") out += "$";
      else if ((n === "p" || n === "P") && re[i + 2] !== "{" && re[i + 2] !== undefined) {
        out += `\\${n}{${re[i + 2]}}`;
        i += 3;
        continue;
      } else out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === "[" && re[i + 1] === ":") {
        const end = re.indexOf(":]", i + 2);
        const name = end < 0 ? undefined : re.slice(i + 2, end);
        if (name !== undefined && name in POSIX_CLASSES) {
          out += POSIX_CLASSES[name];
          i = end + 2;
          continue;
        }
      }
      if (c === "[") out += "\\[";
      else {
        if (c === "]") inClass = false;
        out += c;
      }
      i++;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += "[";
      i++;
      if (re[i] === "^") {
        out += "^";
        i++;
      }
      // RE2 takes a leading ] as a literal member; JS would end the class.
      if (re[i] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(") {
      if (re.startsWith("(?P<", i)) {
        out += "(?<";
        i += 4;
        pending.push([]);
        continue;
      }
      const flags = /^\(\?([a-zA-Z]*(?:-[a-zA-Z]*)?)\)/.exec(re.slice(i, i + 16));
      if (flags) {
        // (?flags) applies to the rest of the enclosing group: open a scoped modifier group.
        if (/U/.test(flags[1])) throw new SelectorError(`invalid regex ${JSON.stringify(re)}: the U flag is not supported`, 0);
        out += `(?${flags[1]}:`;
        pending[pending.length - 1].push(flags[1]);
        i += flags[0].length;
        continue;
      }
      pending.push([]);
    } else if (c === ")") {
      out += ")".repeat(pending.pop()?.length ?? 0);
      if (pending.length === 0) pending.push([]);
    } else if (c === "|") {
      // The flags still hold in the next alternative, but the alternation must stay at this level.
      const open = pending[pending.length - 1];
      out += ")".repeat(open.length) + "|" + open.map((f) => `(?${f}:`).join("");
      i++;
      continue;
    }
    out += c;
    i++;
  }
  out += ")".repeat(pending.reduce((a, b) => a + b.length, 0));
  const flags = "s";
  const source = `^(?:${out})$`;
  try {
    // `u` makes `.` match a code point, as RE2 does; some RE2-valid escapes need it off.
    return new RegExp(source, flags + "u");
  } catch {
    try {
      return new RegExp(source, flags);
    } catch (e) {
      throw new SelectorError(`invalid regex ${JSON.stringify(re)}: ${e instanceof Error ? e.message : e}`, 0);
    }
  }
}

/** Go's strconv.Quote for the characters label values commonly hold. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case "\\": out += "\\\\"; continue;
      case "\x07": out += "\\a"; continue;
      case "\b": out += "\\b"; continue;
      case "\f": out += "\\f"; continue;
      case "\n": out += "\\n"; continue;
      case "\r": out += "\\r"; continue;
      case "\t": out += "\\t"; continue;
      case "\v": out += "\\v"; continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += "\\x" + cp.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}
