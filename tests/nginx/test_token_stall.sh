#!/bin/bash
# test_token_stall.sh - a token that stops answering does not slow nginx.
#
# Two nginx servers (2 workers each, epochs of 2 s) behind HAProxy round
# robin, their tokens behind the fault module.  Reference: 12 s of
# reconnects by two clients.  Then the same 12 s while every C_Sign (every
# derivation) is held for 8 s, across four epoch boundaries
# (tests/lib/stall.sh).  The token work belongs to each worker's key
# maintainer thread, so: no failed handshake, no handshake more than 100 ms
# slower than the reference's median, and at least 0.7x the reference's
# connections (a generous margin: the machine is shared).  With the old
# refresh timer on the worker's event loop the workers froze for 8 s.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/stall.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
[ -z "$why" ] && [ ! -f "$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so" ] && why="fault module not built (make tests)"
if [ -n "$why" ]; then tap_skip "nginx token stall" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=6s
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init && stall_setup
tap_ok $? "two tokens with the same master, the fault module in front of each"

# shellcheck disable=SC2046 # stall_env: NAME=VALUE words
export $(stall_env)
P1=$(lab_port) P2=$(lab_port) PL=$(lab_port)
for s in S1 S2; do
    uri=${s}_URI port=P${s#S}
    ngx_conf "$s" 127.0.0.1 "${!port}" "${!uri/module-path=$LAB_SOFTHSM_MODULE/module-path=$LAB/faultmod.so}"
    sed -i 's/^env SOFTHSM2_CONF;/env SOFTHSM2_CONF;\nenv HSMKEYS_FAULT_REAL_MODULE;\nenv HSMKEYS_FAULT_CONTROL;\nenv HSMKEYS_FAULT_COUNTS;/' "$LAB/$s/nginx.conf"
done
ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 (2 workers each, tokens behind the fault module) behind HAProxy round robin"
grep -q "$LAB/faultmod.so" "$LAB/S1/nginx.conf" && sleep 1 && [ "$(stall_signs)" -gt 0 ]
tap_ok $? "the servers' token calls go through the fault module ($(stall_signs) C_Sign so far)"

stall_compare "127.0.0.1:$PL" -c 2 -i 20

# A worker that starts while the token hangs (the master respawns a killed
# one; the master holds no key to hand down): it waits 1 s for its
# maintainer, warns naming the domain, and serves with full handshakes.
sleep 9   # the stalled calls of the run above return
echo "C_Sign stall $((STALL_SECONDS * 1000))" > "$LAB/fault.rules"
before=$(pgrep -P "$(lab_pid S1)" | sort)
victim=$(echo "$before" | head -1)
kill -KILL "$victim"
new=""
for _ in $(seq 1 50); do
    new=$(comm -13 <(echo "$before") <(pgrep -P "$(lab_pid S1)" | sort) | head -1)
    [ -n "$new" ] && grep -q "$new#.*no ticket key for domain \"$NGX_DOMAIN\" after 1000 ms" "$LAB/S1/error.log" && break
    sleep 0.1
done
grep -h "no ticket key for domain" "$LAB/S1/error.log" | head -1 | cut -c1-200 | sed 's/^/# /'
"$HSMKEYS_BUILD/hsmkeys-probe" --quiet --json "$LAB/respawn.json" -n 20 "127.0.0.1:$P1" >/dev/null 2>&1
read -r n2 f2 _ max2 < <(stall_stats "$LAB/respawn.json")
: > "$LAB/fault.rules"
[ -n "$new" ] && grep -q "$new#.*no ticket key for domain \"$NGX_DOMAIN\" after 1000 ms" "$LAB/S1/error.log" &&
    [ "$n2" = 20 ] && [ "$f2" = 0 ]
tap_ok $? "a worker started while the token hangs warns naming the domain and serves ($n2 connections to S1, $f2 failed, slowest $max2 ms)"
grep -h 'hsmkeys' "$LAB/S1/error.log" | tail -n 6 | sed 's/^/# S1: /'
! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" "$LAB/S2/error.log" |
    grep -v "worker process $victim exited on signal 9"
tap_ok $? "no alert in the servers' error logs (but the kill above)"
tap_done
