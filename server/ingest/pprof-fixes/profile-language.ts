// Which runtime produced a profile, as Pyroscope's distributor decides it: from the
// `pyroscope_spy` label when it names a known spy, else from the first symbol that looks like
// one language's (GetLanguage). The distributor runs the Go fix-ups when this says "go".

import type { Profile } from "../../../storage/model/profile.ts";

const SPY_LANGUAGE: Record<string, string> = {
  dotnetspy: "dotnet",
  gospy: "go",
  phpspy: "php",
  pyspy: "python",
  rbspy: "ruby",
  nodespy: "nodejs",
  javaspy: "java",
  "grafana-agent.java": "java",
  "pyroscope-rs": "rust",
};

// Checked in this order for each string; a string matches when it starts or ends with a pattern.
const MATCHERS: [string, string[]][] = [
  ["go", [".go", "/usr/local/go/"]],
  ["java", ["java/", "sun/"]],
  ["ruby", [".rb", "gems/"]],
  ["nodejs", ["./node_modules/", ".js"]],
  ["dotnet", ["System.", "Microsoft."]],
  ["python", [".py"]],
  ["rust", ["main.rs", "core.rs"]],
];

/** The language of a spy name, or "" for spies Pyroscope does not map (including "unknown"). */
export function languageFromSpy(spyName: string | undefined): string {
  return (spyName && Object.hasOwn(SPY_LANGUAGE, spyName) && SPY_LANGUAGE[spyName]) || "";
}

/**
 * The language suggested by the profile's strings, or "unknown". Pyroscope walks its string table
 * in order; we walk the strings in the order writers such as Go's runtime put them in that table:
 * sample types, period type, functions, sample labels, mappings, comments.
 */
export function languageFromSymbols(p: Profile): string {
  let hit = "";
  const check = (s: string): boolean => {
    if (s.length < 3) return false; // every pattern is at least 3 characters long
    for (const [lang, patterns] of MATCHERS) {
      for (const pat of patterns) {
        if (s.startsWith(pat) || s.endsWith(pat)) {
          hit = lang;
          return true;
        }
      }
    }
    return false;
  };
  for (const t of p.sampleTypes) if (check(t.type) || check(t.unit)) return hit;
  if (p.periodType && (check(p.periodType.type) || check(p.periodType.unit))) return hit;
  for (const f of p.functions) {
    if (check(f.name)) return hit;
    if (f.systemName !== f.name && check(f.systemName)) return hit;
    if (check(f.filename)) return hit;
  }
  const labels = p.samples.labels;
  if (labels) for (const ls of labels) for (const l of ls) if (check(l.key) || check(l.str) || check(l.numUnit)) return hit;
  for (const m of p.mappings) if (check(m.filename) || check(m.buildId)) return hit;
  for (const c of p.comments) if (check(c)) return hit;
  return "unknown";
}

/** Pyroscope's GetProfileLanguage: the spy's language if known, else the symbols'. */
export function profileLanguage(spyName: string | undefined, p: Profile): string {
  return languageFromSpy(spyName) || languageFromSymbols(p);
}
