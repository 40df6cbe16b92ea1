// Language detection on the fixtures Pyroscope's Test_GetProfileLanguage_* use, and the spy map.

import { describe, expect, test } from "bun:test";
import { languageFromSpy, languageFromSymbols, profileLanguage } from "./profile-language.ts";
import { loadProfile, SHARED_PPROF } from "./testing.ts";

describe("languageFromSymbols", () => {
  for (const [file, lang] of [
    ["go.cpu.labels.pprof", "go"],
    ["heap", "go"],
    ["dotnet.labels.pprof", "dotnet"],
    ["profile_java", "java"],
    ["profile_python", "python"],
    ["profile_ruby", "ruby"],
    ["profile_nodejs", "nodejs"],
    ["profile_rust", "rust"],
  ]) {
    test(`${file} → ${lang}`, () => expect(languageFromSymbols(loadProfile(SHARED_PPROF + file))).toBe(lang));
  }

  test("no matching symbol → unknown", () => {
    const p = loadProfile(SHARED_PPROF + "go.cpu.labels.pprof");
    const bare = { ...p, functions: p.functions.map((f) => ({ ...f, filename: "", name: "x", systemName: "x" })), mappings: [] };
    expect(languageFromSymbols(bare)).toBe("unknown");
  });
});

describe("profileLanguage", () => {
  test("a known spy decides; unknown spies fall back to the symbols", () => {
    const java = loadProfile(SHARED_PPROF + "profile_java");
    expect(profileLanguage("gospy", java)).toBe("go");
    expect(profileLanguage("grafana-agent.java", java)).toBe("java");
    expect(profileLanguage("unknown", java)).toBe("java");
    expect(profileLanguage(undefined, java)).toBe("java");
    expect(profileLanguage("ebpfspy", loadProfile(SHARED_PPROF + "heap"))).toBe("go");
  });

  test("Pyroscope's spy table", () => {
    expect(languageFromSpy("dotnetspy")).toBe("dotnet");
    expect(languageFromSpy("phpspy")).toBe("php");
    expect(languageFromSpy("pyspy")).toBe("python");
    expect(languageFromSpy("rbspy")).toBe("ruby");
    expect(languageFromSpy("nodespy")).toBe("nodejs");
    expect(languageFromSpy("javaspy")).toBe("java");
    expect(languageFromSpy("pyroscope-rs")).toBe("rust");
    expect(languageFromSpy("toString")).toBe("");
    expect(languageFromSpy("")).toBe("");
  });
});
