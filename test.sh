#!/usr/bin/env bash
# Runs the whole test suite: unit and integration tests on a real SQLite file and a real PostgreSQL server.
# Installs what the tests need (PostgreSQL's Debian packages, Node.js for the SDK test, Chromium for the browser test) when it is missing; the test fixture then starts a
# throwaway cluster of its own (set MERIDIAN_TEST_PG to a connection string to use an existing server instead).
# Ends with one line: "N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [ -z "${MERIDIAN_TEST_PG:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "test.sh: installing PostgreSQL from Debian packages for the integration tests..."
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null \
    || { echo "test.sh: could not install PostgreSQL" >&2; exit 1; }
fi

# Node.js runs the official Segment SDK against Meridian in the compatibility test.
if ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: installing Node.js from Debian packages for the SDK compatibility test..."
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null \
    || { echo "test.sh: could not install Node.js" >&2; exit 1; }
fi
# Debian's Chromium, driven by Playwright, signs a customer in through the hosted pages in the browser test.
if [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing Chromium from Debian packages for the browser tests..."
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
    || { echo "test.sh: could not install Chromium" >&2; exit 1; }
fi
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error) || { echo "test.sh: npm ci failed in tests/sdk" >&2; exit 1; }

log=$(mktemp)
# A test that hangs fails after 12 minutes (the slowest test takes under 4 on a loaded 2-core machine) instead of
# stalling the run; the test host's output then names it.
dotnet test Meridian.slnx -c Release --logger "console;verbosity=normal" --blame-hang-timeout 12m --blame-hang-dump-type none "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# One totals line over every test assembly. With normal verbosity each assembly ends with
# "Total tests: N" followed by "     Passed: N", "     Failed: N" and "     Skipped: N" (a zero count may be left out).
totals=$(awk '/^ +Passed: +[0-9]+ *$/ {p+=$2} /^ +Failed: +[0-9]+ *$/ {f+=$2} /^ +Skipped: +[0-9]+ *$/ {s+=$2}
              END {printf "%d passed, %d failed, %d skipped", p, f, s}' "$log")
# The failed tests again, with their messages, just above the totals (CI shows the end of the output).
failures=$(awk '/^  Failed [^ ]/ {n=16} n>0 {print; n--}' "$log" | head -c 20000)
if [ -n "$failures" ]; then
  echo "----- failed tests -----"
  echo "$failures"
  echo "------------------------"
fi
rm -f "$log"
[ -n "$totals" ] || totals="0 passed, 0 failed, 0 skipped"
echo "$totals"
if [ "$status" -eq 0 ] && [ "${totals%% *}" = "0" ]; then
  echo "test.sh: no test ran" >&2
  exit 1
fi
exit "$status"
