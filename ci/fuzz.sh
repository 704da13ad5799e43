#!/bin/bash
# ci/fuzz.sh - build the libFuzzer targets (tests/fuzz) and run each for a
# bounded time from its kept seed corpus; fail on any crash, sanitizer
# report or broken invariant.  Prints the executions per target.
#   FUZZ_TIME=seconds per target (default 30)   BUILD=build dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_TIME=${FUZZ_TIME:-30}
if ! command -v clang >/dev/null; then
    echo "ci/fuzz.sh: clang is required (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
make --no-print-directory fuzz FUZZ_TIME="$FUZZ_TIME" 2>&1 | grep -v '^clang ' 
echo "ci/fuzz.sh: all targets ran ${FUZZ_TIME} s each without a finding"
