#!/bin/bash
# Run every test suite and print one summary line "N passed, N failed".
#
# Suites:  BUILD/tests/*_test            C unit tests (from tests/unit/*_test.c)
#          tests/*/test_*.sh             integration tests (skipped when
#                                        HSMKEYS_UNIT_ONLY=1)
# Each suite prints TAP lines ("ok N - what", "not ok N - what",
# "ok N - what # SKIP why"); a suite that exits non-zero with no failing line
# counts as one failure, and so does one still running after SUITE_TIMEOUT
# seconds (default 600).  Logs go to BUILD/test-logs/.
set -uo pipefail
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HSMKEYS_ROOT=$ROOT HSMKEYS_BUILD=$ROOT/$B
LOGS=$ROOT/$B/test-logs
mkdir -p "$LOGS"
pass=0 fail=0 skip=0 failed_suites=()
run_suite() {
    local name=$1; shift
    local log=$LOGS/$name.log
    local start=$SECONDS
    mkdir -p "$(dirname "$log")"
    # a hung suite fails alone instead of holding the whole run
    timeout --kill-after=10 "${SUITE_TIMEOUT:-600}" "$@" >"$log" 2>&1 </dev/null
    local rc=$?
    [ "$rc" = 124 ] && echo "not ok - $name timed out after ${SUITE_TIMEOUT:-600} s" >>"$log"
    local p f s
    p=$(grep -cE '^ok [0-9]+' "$log" 2>/dev/null); p=${p:-0}
    s=$(grep -cE '^ok [0-9]+.*# SKIP' "$log" 2>/dev/null); s=${s:-0}
    f=$(grep -cE '^not ok' "$log" 2>/dev/null); f=${f:-0}
    p=$((p - s))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$log"; fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-40s %3d passed %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - start))
    if [ "$f" != 0 ]; then
        failed_suites+=("$name")
        grep -E '^not ok' "$log" | head -20 | sed 's/^/    /'
        echo "    --- last lines of $log:"; tail -15 "$log" | sed 's/^/    | /'
    fi
}
for t in "$ROOT/$B"/tests/*_test; do
    [ -x "$t" ] || continue
    run_suite "$(basename "$t")" "$t"
done
if [ -z "${HSMKEYS_UNIT_ONLY:-}" ]; then
    for t in $(ls "$ROOT"/tests/*/test_*.sh 2>/dev/null | sort); do
        n=$(basename "$(dirname "$t")")/$(basename "$t" .sh)
        run_suite "$n" bash "$t"
    done
fi
echo
[ ${#failed_suites[@]} -gt 0 ] && echo "failed suites: ${failed_suites[*]}"
if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"; else echo "$pass passed, $fail failed"; fi
[ "$fail" = 0 ]
