#!/bin/bash
# ci/sanitize.sh - every unit test under ASan+UBSan, the threaded ones under
# TSan, and the command-line tools under valgrind memcheck.  Fails on any
# sanitizer report or memcheck error.
#   JOBS=n (default nproc)
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
fail=0
step() { echo "== $*"; }

# The tools under memcheck on a throwaway SoftHSM2 token, and the probe
# against a local `openssl s_server` (loopback, started and stopped by PID).
valgrind_tools() {
    command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)"; return 1; }
    local d rc=0 port spid
    d=$(mktemp -d /tmp/hsmkeys-vg-XXXXXX)
    mkdir -p "$d/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$d" > "$d/softhsm2.conf"
    (umask 077; printf 'vg-pin-%s' "$RANDOM$RANDOM" > "$d/pin"; printf 'vg-so-%s' "$RANDOM$RANDOM" > "$d/so-pin")
    export SOFTHSM2_CONF=$d/softhsm2.conf
    local vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
              --show-leak-kinds=definite --log-file="$d/vg.%p.log")
    local T=build/hsmkeys-tool
    run() { # name, command...
        local name=$1; shift
        "${vg[@]}" "$@" >"$d/$name.out" 2>&1; local r=$?
        if [ $r = 99 ]; then echo "memcheck errors in: $name"; cat "$d"/vg.*.log; rc=1
        elif [ $r != 0 ]; then echo "failed (exit $r): $name"; tail -5 "$d/$name.out"; rc=1
        else echo "memcheck clean: $name"; fi
    }
    run "tool init" $T init --token VG --so-pin-source "$d/so-pin" --pin-source "$d/pin"
    run "tool create" $T create --token VG --pin-source "$d/pin"
    run "tool rotate" $T rotate --token VG --pin-source "$d/pin" --activate-at 2000000000
    run "tool verify" $T verify --token VG --pin-source "$d/pin"
    run "tool status" $T status --token VG --pin-source "$d/pin"
    "${vg[@]}" $T create --token VG --pin-source "$d/nonexistent" >"$d/neg.out" 2>&1
    [ $? = 99 ] && { echo "memcheck errors in: tool create (missing PIN file)"; cat "$d"/vg.*.log; rc=1; } \
        || echo "memcheck clean: tool create (missing PIN file, error path)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vg \
        -keyout "$d/key.pem" -out "$d/cert.pem" -days 1 >/dev/null 2>&1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    openssl s_server -quiet -www -accept "127.0.0.1:$port" -cert "$d/cert.pem" -key "$d/key.pem" \
        >"$d/s_server.log" 2>&1 </dev/null &
    spid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    run "probe 10 reconnects" build/hsmkeys-probe -n 10 "127.0.0.1:$port"
    run "probe 2 clients TLS 1.2" build/hsmkeys-probe -n 5 -c 2 --tls1.2 "127.0.0.1:$port"
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    rm -rf "$d"
    return $rc
}

step "ASan+UBSan: make SAN=asan check-unit"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    make --no-print-directory -j"$JOBS" SAN=asan check-unit || { echo "ASan/UBSan: FAILED"; fail=1; }

step "TSan: make SAN=tsan check-unit"
# SoftHSM2 is not built with TSan; its internal locking is invisible to it.
# die_after_fork=0: fork_test forks while the parent's key maintainer thread
# runs and the child starts its own; TSan refuses new threads after a
# multi-threaded fork unless told (the library's fork handlers make it safe).
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0} \
    make --no-print-directory -j"$JOBS" SAN=tsan check-unit || { echo "TSan: FAILED"; fail=1; }

step "valgrind memcheck: hsmkeys-tool and hsmkeys-probe"
make --no-print-directory -j"$JOBS" build-all >/dev/null || { echo "build failed"; exit 1; }
valgrind_tools || { echo "valgrind: FAILED"; fail=1; }

[ $fail = 0 ] && echo "ci/sanitize.sh: clean" || echo "ci/sanitize.sh: FAILED"
exit $fail
