import { describe, expect, test } from "bun:test";
import { labelsFromRecord } from "./labels.ts";
import { SelectorError, compileRegex, formatSelector, matches, matchesLabels, newMatcher, parseQuery, parseSelector } from "./selector.ts";

const plain = (s: string) => parseSelector(s).map(({ name, type, value }) => [name, type, value]);

describe("parseSelector", () => {
  test("all four operators", () => {
    expect(plain(`{a="x", b!="y", c=~"re.*", d!~"re"}`)).toEqual([
      ["a", "=", "x"],
      ["b", "!=", "y"],
      ["c", "=~", "re.*"],
      ["d", "!~", "re"],
    ]);
    const ms = parseSelector(`{c=~"re.*"}`);
    expect(ms[0].re).toBeInstanceOf(RegExp);
    expect(parseSelector(`{a="x"}`)[0].re).toBeUndefined();
  });

  test("empty forms select everything", () => {
    expect(parseSelector("")).toEqual([]);
    expect(parseSelector("  \n")).toEqual([]);
    expect(parseSelector("{}")).toEqual([]);
    expect(parseSelector(" { } ")).toEqual([]);
  });

  test("whitespace, newlines, comments and a trailing comma", () => {
    expect(plain(`\t{ a = "x" ,\n b=~ 'y' , }\n`)).toEqual([
      ["a", "=", "x"],
      ["b", "=~", "y"],
    ]);
    expect(plain(`{a="x", # the service\n b="y"}`)).toEqual([
      ["a", "=", "x"],
      ["b", "=", "y"],
    ]);
  });

  test("quoted (UTF-8) label names and quoted metric names", () => {
    expect(plain(`{"service.name"="x", "サービス"!="y"}`)).toEqual([
      ["service.name", "=", "x"],
      ["サービス", "!=", "y"],
    ]);
    expect(plain(`{"my.metric", a="b"}`)).toEqual([
      ["__name__", "=", "my.metric"],
      ["a", "=", "b"],
    ]);
  });

  test("string escapes and quote styles", () => {
    expect(parseSelector(String.raw`{a="q\"x\\y\nz\t"}`)[0].value).toBe('q"x\\y\nz\t');
    expect(parseSelector(String.raw`{a='it\'s "ok"'}`)[0].value).toBe(`it's "ok"`);
    expect(parseSelector("{a=`raw\\d+\"`}")[0].value).toBe('raw\\d+"');
    expect(parseSelector(String.raw`{a="\xc3\xa9|\u00e9|\U0001F600|\101"}`)[0].value).toBe("é|é|\u{1F600}|A");
    expect(parseSelector(String.raw`{a="\a\b\f\r\v"}`)[0].value).toBe("\x07\b\f\r\v");
    expect(parseSelector(`{a="日本語 ✓"}`)[0].value).toBe("日本語 ✓");
  });

  test("a metric name becomes a trailing __name__ matcher", () => {
    expect(plain(`foo:bar{a="b"}`)).toEqual([
      ["a", "=", "b"],
      ["__name__", "=", "foo:bar"],
    ]);
    expect(plain(`foo`)).toEqual([["__name__", "=", "foo"]]);
    expect(plain(`foo {}`)).toEqual([["__name__", "=", "foo"]]);
  });

  test.each([
    [`{a="b"`, "1:7:", "end of input"],
    [`{a=b}`, "1:4:", "expected string"],
    [`{a}`, "1:3:", "expected label matching operator"],
    [`{,}`, "1:2:", "expected identifier"],
    [`{a="x",,}`, "1:8:", "expected identifier"],
    [`{a=~"("}`, "1:5:", "invalid regex"],
    [String.raw`{a="x\q"}`, "1:6:", "unknown escape sequence"],
    [String.raw`{a="x\'"}`, "1:6:", "unknown escape sequence"],
    [String.raw`{a="\xZZ"}`, "1:5:", "illegal character"],
    [String.raw`{a="\uD800"}`, "1:5:", "invalid Unicode code point"],
    [`{a:b="x"}`, "1:3:", "expected label matching operator"],
    [`foo bar`, "1:5:", "after the selector"],
    [`{a="x"} junk`, "1:9:", "after the selector"],
    [`{a="x}`, "1:4:", "unterminated quoted string"],
    ["{a=`x}", "1:4:", "unterminated raw string"],
    [`{a="x\ny"}`, "1:4:", "unterminated quoted string"],
    [`{a!"x"}`, "1:4:", "unexpected character after '!'"],
    [`{a="x" b="y"}`, "1:8:", `expected "," or "}"`],
    [`{""="x"}`, "1:2:", "invalid empty label name"],
    [`{a="x"}{b="y"}`, "1:8:", "after the selector"],
    [`"foo"`, "1:1:", `expected a metric name or "{"`],
    [`{a="b",\n c~"d"}`, "2:3:", "expected label matching operator"],
  ])("rejects %j", (input, at, problem) => {
    let err: unknown;
    try {
      parseSelector(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorError);
    const msg = (err as Error).message;
    expect(msg.startsWith(at)).toBe(true);
    expect(msg).toContain(problem);
    expect(msg).toContain("parse error");
  });
});

describe("parseQuery", () => {
  test("the render form: profile type in the metric-name position", () => {
    const q = parseQuery(`process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"}`);
    expect(q.profileTypeId).toBe("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    expect(q.matchers.map((m) => [m.name, m.type, m.value])).toEqual([["service_name", "=", "x"]]);
  });

  test("empty period parts and no braces", () => {
    expect(parseQuery("block:contentions:count::{}")).toEqual({ profileTypeId: "block:contentions:count::", matchers: [] });
    expect(parseQuery("goroutines:goroutine:count:goroutine:count").profileTypeId).toBe("goroutines:goroutine:count:goroutine:count");
  });

  test("a __name__ matcher also carries the type; the metric name wins", () => {
    expect(parseQuery(`{__name__="memory:alloc_space:bytes:space:bytes", a="b"}`).profileTypeId).toBe(
      "memory:alloc_space:bytes:space:bytes",
    );
    const q = parseQuery(`x:y:z:p:q{__name__="other", a="b"}`);
    expect(q.profileTypeId).toBe("x:y:z:p:q");
    expect(q.matchers.map((m) => m.name)).toEqual(["a"]);
  });

  test("no profile type", () => {
    expect(parseQuery(`{service_name="x"}`).profileTypeId).toBeUndefined();
    expect(parseQuery("")).toEqual({ profileTypeId: undefined, matchers: [] });
  });
});

describe("matching", () => {
  const m = (s: string) => parseSelector(s)[0];

  test("a missing label matches as the empty string", () => {
    expect(matches(m(`{a=""}`), undefined)).toBe(true);
    expect(matches(m(`{a!=""}`), undefined)).toBe(false);
    expect(matches(m(`{a!="x"}`), undefined)).toBe(true);
    expect(matches(m(`{a=~".*"}`), undefined)).toBe(true);
    expect(matches(m(`{a=~".+"}`), undefined)).toBe(false);
    expect(matches(m(`{a!~"x"}`), undefined)).toBe(true);
  });

  test("regexes are fully anchored", () => {
    expect(matches(m(`{a=~"foo"}`), "foo")).toBe(true);
    expect(matches(m(`{a=~"foo"}`), "foobar")).toBe(false);
    expect(matches(m(`{a=~"foo|bar"}`), "bar")).toBe(true);
    expect(matches(m(`{a=~"foo|bar"}`), "xbar")).toBe(false);
    expect(matches(m(`{a!~"foo.*"}`), "foobar")).toBe(false);
    expect(matches(m(`{a!~"foo.*"}`), "xfoo")).toBe(true);
  });

  test("RE2 syntax: dot matches newline, (?i), POSIX classes, named groups, \\z", () => {
    expect(matches(m(`{a=~"a.b"}`), "a\nb")).toBe(true);
    expect(matches(m(`{a=~"(?i)foo"}`), "FoO")).toBe(true);
    // (?i) holds for the rest of its group, across alternatives, and no further.
    expect(matches(m(`{a=~"x(?i)b|c"}`), "C")).toBe(true);
    expect(matches(m(`{a=~"x(?i)b|c"}`), "xB")).toBe(true);
    expect(matches(m(`{a=~"x(?i)b|c"}`), "XB")).toBe(false);
    expect(matches(m(`{a=~"(a(?i)b)c"}`), "aBc")).toBe(true);
    expect(matches(m(`{a=~"(a(?i)b)c"}`), "aBC")).toBe(false);
    expect(matches(m(`{a=~"(?i:A)b"}`), "ab")).toBe(true);
    expect(() => compileRegex("(?U)a*")).toThrow(SelectorError);
    expect(matches(m(`{a=~"[[:alpha:]]+[[:digit:]]"}`), "abc1")).toBe(true);
    expect(matches(m(`{a=~"[^[:space:]]+"}`), "a b")).toBe(false);
    expect(matches(m(`{a=~"(?P<x>ab)+"}`), "abab")).toBe(true);
    // Regex escapes need a raw string or a doubled backslash in "…".
    expect(matches(m("{a=~`\\Afoo\\z`}"), "foo")).toBe(true);
    expect(matches(m(String.raw`{a=~"\\pL+"}`), "héllo")).toBe(true);
    expect(matches(m("{a=~`\\Q1.5*\\E`}"), "1.5*")).toBe(true);
    expect(matches(m("{a=~`\\Q1.5*\\E`}"), "105")).toBe(false);
    expect(matches(m(`{a=~"[]a]+"}`), "]a")).toBe(true);
    expect(matches(m(`{a=~"."}`), "\u{1F600}")).toBe(true);
    expect(matches(m("{a=~`\\-x`}"), "-x")).toBe(true);
  });

  test("matchers built without a compiled regex compile on first use", () => {
    const raw = { name: "a", type: "=~" as const, value: "x+" };
    expect(matches(raw, "xxx")).toBe(true);
    expect(newMatcher("a", "!~", "y").re).toBeInstanceOf(RegExp);
    expect(() => newMatcher("a", "=~", "(")).toThrow(SelectorError);
    expect(compileRegex("").test("")).toBe(true);
  });

  test("matchesLabels", () => {
    const ls = labelsFromRecord({ service_name: "api", env: "prod" });
    expect(matchesLabels(parseSelector(`{service_name="api", env=~"prod|dev"}`), ls)).toBe(true);
    expect(matchesLabels(parseSelector(`{service_name="api", region=""}`), ls)).toBe(true);
    expect(matchesLabels(parseSelector(`{service_name="api", env!="prod"}`), ls)).toBe(false);
    expect(matchesLabels([], ls)).toBe(true);
  });
});

test("formatSelector prints Prometheus-style and parses back", () => {
  const s = `{a="x",b!="q\\"\\n",c=~"re.*","service.name"!~"y"}`;
  const ms = parseSelector(s);
  expect(formatSelector(ms)).toBe(s);
  expect(formatSelector(parseSelector(formatSelector(ms)))).toBe(s);
  expect(formatSelector([])).toBe("{}");
});
