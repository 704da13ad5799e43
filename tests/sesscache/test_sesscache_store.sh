#!/bin/bash
# test_sesscache_store.sh - the session cache's Redis client
# (engine/sesscache/sc_store.c) against a real Redis on 127.0.0.1: probe,
# reads and writes, and the bounds when the store is stopped (SIGSTOP):
# deadline, pending cap, breaker per process, recovery (t-sc-store.c).
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/sesscache/sc_lab.sh"
why=$(sc_missing)
[ -n "$why" ] || [ -x "$HSMKEYS_BUILD/tests/t-sc-store" ] || why="t-sc-store not built (make tests)"
if [ -n "$why" ]; then tap_skip "session cache store suite" "$why"; tap_done; exit; fi
lab_init
redis_start R >/dev/null || { tap_ok 1 "Redis starts"; tap_done; exit; }
"$HSMKEYS_BUILD/tests/t-sc-store" "$R_PORT" "$R_PW" "$R_SOCK" "$(lab_pid R)" 10
rc=$?
kill -CONT "$(lab_pid R)" 2>/dev/null
exit $rc
