# stall.sh - a token that stops answering while servers serve: the fault
# module (tests/faultmod) holds every C_Sign for 8 s, across epoch
# boundaries (epochs of 2 s), while clients reconnect; the same run without
# the stall is the reference.  Sourced after tests/lib/lab.sh by
# tests/nginx/test_token_stall.sh and tests/apache/test_apache_stall.sh.
#
# The servers load libhsmkeys-faultmod.so (a copy in $LAB) in front of
# SoftHSM2 with the environment stall_env prints; the rule is switched
# through the control file $LAB/fault.rules, which every process re-reads on
# its next PKCS#11 call.  Each process writes its call counts to
# $LAB/counts/<pid>, so the suite can tell that the stall really held the
# derivations (at most one C_Sign per process completes while it is on).
# Threat handled by the suites: a hung HSM that freezes the threads serving
# connections (nginx's event loop, an Apache prefork child).
#
#   stall_setup                   copies the module, makes rules and counts
#   stall_env                     NAME=VALUE words for the servers
#   stall_run OUT STALL TARGET PROBE_ARGS...
#                                 12 s of reconnects; STALL=1: the C_Sign
#                                 stall from 1 s to 9 s; JSON in OUT.json;
#                                 sets STALL_SIGNS_DURING (C_Sign calls
#                                 completed by all processes while stalled)
#   stall_stats JSON              "connections failed median_ms max_ms"
#   stall_signs                   C_Sign calls of all processes so far

STALL_SECONDS=8
STALL_RUN_SECONDS=12

stall_setup() {
    cp "$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so" "$LAB/faultmod.so" || return 1
    chmod 0755 "$LAB/faultmod.so"
    : > "$LAB/fault.rules"; chmod 0644 "$LAB/fault.rules"
    mkdir -p "$LAB/counts"; chmod 0777 "$LAB/counts"
}

stall_env() {
    echo "HSMKEYS_FAULT_REAL_MODULE=$LAB_SOFTHSM_MODULE HSMKEYS_FAULT_CONTROL=$LAB/fault.rules HSMKEYS_FAULT_COUNTS=$LAB/counts/%p"
}

stall_signs() {
    cat "$LAB"/counts/* 2>/dev/null | awk '$1 == "C_Sign" { n += $2 } END { print n + 0 }'
}

stall_run() {
    local out=$1 stall=$2 target=$3 bg s0 s1; shift 3
    "$HSMKEYS_BUILD/hsmkeys-probe" --quiet --json "$out.json" --duration "$STALL_RUN_SECONDS" "$@" "$target" \
        >"$out.log" 2>&1 &
    bg=$!
    sleep 1
    if [ "$stall" = 1 ]; then
        s0=$(stall_signs)
        echo "C_Sign stall $((STALL_SECONDS * 1000))" > "$LAB/fault.rules"
        sleep "$STALL_SECONDS"
        s1=$(stall_signs)
        : > "$LAB/fault.rules"
        STALL_SIGNS_DURING=$((s1 - s0))
    fi
    wait $bg
}

stall_stats() {
    python3 - "$1" <<'PY'
import json, sys
try:
    conns = json.load(open(sys.argv[1]))["connections"]
except Exception:
    print("0 1 0 0"); sys.exit()
ok = sorted(c["handshake_ms"] for c in conns if c["ok"])
failed = sum(1 for c in conns if not c["ok"])
for c in [c for c in conns if not c["ok"]][:3]:
    print("# failed:", c["id"], c["backend"], c["error"], file=sys.stderr)
med = ok[len(ok) // 2] if ok else 0
print(len(conns), failed, "%.1f" % med, "%.1f" % (ok[-1] if ok else 0))
PY
}

# stall_compare TARGET PROBE_ARGS...: an unstalled run, then one with the
# token stalled, of the same length; checks (TAP) that the fault module held
# the derivations, 0 failed handshakes, no handshake more than 100 ms slower
# than the unstalled median, and >= 0.7x the unstalled connections (a margin
# a busy shared machine keeps).
stall_compare() {
    local target=$1; shift
    local n0 f0 med0 max0 n1 f1 med1 max1 ratio procs
    stall_run "$LAB/ref" 0 "$target" "$@"
    read -r n0 f0 med0 max0 < <(stall_stats "$LAB/ref.json")
    echo "# unstalled: $n0 connections, $f0 failed, median handshake $med0 ms, slowest $max0 ms"
    stall_run "$LAB/stall" 1 "$target" "$@"
    read -r n1 f1 med1 max1 < <(stall_stats "$LAB/stall.json")
    ratio=$(awk -v a="$n1" -v b="$n0" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
    echo "# stalled:   $n1 connections, $f1 failed, median handshake $med1 ms, slowest $max1 ms; throughput ${ratio}x the unstalled run"
    procs=$(ls "$LAB/counts" | wc -l)
    [ "$STALL_SIGNS_DURING" -le "$procs" ]
    tap_ok $? "the fault module held the derivations: $STALL_SIGNS_DURING C_Sign calls completed in $procs processes during the ${STALL_SECONDS} s stall"
    [ "$f0" = 0 ] && [ "$f1" = 0 ] && [ "$n1" -gt 0 ]
    tap_ok $? "0 failed handshakes while the token stalls ($f1 of $n1; unstalled $f0 of $n0)"
    awk -v m="$max1" -v r="$med0" 'BEGIN { exit !(m <= r + 100) }'
    tap_ok $? "no handshake more than 100 ms slower than the unstalled median: slowest $max1 ms vs median $med0 ms"
    awk -v r="$ratio" 'BEGIN { exit !(r >= 0.7) }'
    tap_ok $? "connections served while stalled: ${ratio}x the unstalled run (>= 0.7x)"
}
