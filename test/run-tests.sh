#!/usr/bin/env bash
# Runs `bun test "$@"` from the project root and closes with one `N passed, N failed` line,
# the summary CI reads; the exit code stays bun's.
set -uo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# bun writes only its banner to stdout and everything else to stderr; merge them so the
# counts can be read back. With no path, bun finds every *.test.ts except under node_modules.
# bunfig.toml's [test] timeout is not applied by this bun, so the per-test timeout is given here.
node_modules/.bin/bun test --timeout 60000 "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

pass=$(grep -E '^ *[0-9]+ pass$' "$out" | tail -1 | awk '{print $1}')
fail=$(grep -E '^ *[0-9]+ fail$' "$out" | tail -1 | awk '{print $1}')
pass=${pass:-0}
fail=${fail:-0}

# A failed run with no failed test (no tests found, an error outside any test, a crash)
# must not read as green, so it counts as one failure.
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
  echo "bun test exited with status $rc without a failing test; counting the run as 1 failure"
  fail=1
fi

echo "${pass} passed, ${fail} failed"
exit "$rc"
