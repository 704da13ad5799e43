#!/bin/bash
# test_feeder_fleet.sh - two HAProxy TLS terminators, each with its own token
# (same master) and its own hsmkeys-haproxy-feeder, behind a third HAProxy in
# tcp round robin: reconnects resume across both terminators for TLS 1.2 and
# 1.3 across epoch boundaries; a baseline with independent keys does not;
# the feeder re-feeds a restarted HAProxy, logs no key bytes and stops
# cleanly on SIGTERM.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/haproxy/hx_lib.sh"
lab_init

EPOCH=3
if ! why=$(hx_need); then
    tap_skip "HAProxy feeder fleet" "$why"
    tap_done; exit
fi
lab_host S1 && lab_host S2 && hx_cert || { tap_ok 1 "lab set-up"; tap_done; exit 1; }

P=$(lab_port)
PB=$(lab_port)
for n in 1 2; do
    hx_terminator "S$n" "127.0.0.1$n" "$P" "$LAB/hx-S$n/keys.fifo"
done
hx_balancer LB 127.0.0.10 "$P" "127.0.0.11:$P" "127.0.0.12:$P"

# feeder N: one per terminator, on its own host's token.  F1 names the keys
# by HAProxy's numeric reference (#0), which survives S1's switch to another
# keys file below; F2 by the FIFO path (the default).
start_feeder() {
    local n=$1 conf uri id=()
    conf=S${n}_CONF uri=S${n}_URI
    [ "$n" = 1 ] && id=(--ticket-keys-id "#0")
    lab_spawn "F$n" env SOFTHSM2_CONF="${!conf}" "$HX_FEEDER" --foreground \
        --uri "${!uri}" --domain "$HX_DOMAIN" --epoch "$EPOCH" --lifetime 6 \
        --fifo "$LAB/hx-S$n/keys.fifo" --socket "$LAB/hx-S$n/admin.sock" \
        --interval 0.5 --max-backoff 1 "${id[@]}" ${HX_FEEDER_ARGS:-}
}
wait_fifo() { for _ in $(seq 1 100); do [ -p "$1" ] && return 0; sleep 0.1; done; return 1; }

start_feeder 1; start_feeder 2
wait_fifo "$LAB/hx-S1/keys.fifo" && wait_fifo "$LAB/hx-S2/keys.fifo"
tap_ok $? "each feeder opens its token and creates its start-up FIFO (mode 600)"

hx_start S1; hx_start S2; hx_start LB
hx_wait_cli S1 && hx_wait_cli S2 && lab_wait_port "$P" 127.0.0.10
tap_ok $? "two terminators read their start-up keys from the FIFOs and start, balancer up"

ID1=$LAB/hx-S1/keys.fifo ID2=$LAB/hx-S2/keys.fifo
ring_equal() {
    local a b
    a=$(hx_names S1 "$ID1"); b=$(hx_names S2 "$ID2")
    [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(wc -w <<<"$a")" = 3 ]
}
ok=1
for _ in 1 2 3; do ring_equal && { ok=0; break; }; sleep 0.5; done
tap_ok $ok "both terminators hold the same 3-key ring, derived in two tokens [$(hx_names S1 "$ID1")]"

# HAProxy encrypts with the second-newest key: the ring's middle name.
ok=1
for _ in 1 2 3; do
    want=$(hx_names S1 "$ID1" | awk '{print $2}')
    got=$(hx_ticket_name "127.0.0.11:$P" -tls1_2)
    [ -n "$got" ] && [ "$got" = "$want" ] && { ok=0; break; }
    sleep 0.3
done
tap_ok $ok "tickets carry the ring's middle (current epoch) key name ($got)"

# measure VERSION: the probe through the balancer for > 2 epochs.  The probe
# uses each TLS 1.3 ticket once (RFC 8446 C.4) and reuses TLS 1.2 sessions.
measure() {
    local v=$1 json=$LAB/probe-$1.json s
    hx_probe 127.0.0.10:"$P" "--$v" -c 2 --duration $((2 * EPOCH + 1)) -i 20 -q --json "$json" --summary "$json.summary" \
        >"$LAB/probe-$v.out" 2>&1
    s=$(hx_summary "$json" 2>/dev/null) || s="0 0 0 0 1 0 0 0"
    echo "# $v probe through the balancer: rate reconnects resumed offered offered-rate failed backends epochs = $s"
    read -r rate reconnects resumed offered orate failed backends epochs <<<"$s"
}
measure tls1.2
awk -v r="$rate" 'BEGIN { exit !(r >= 99) }' && [ "$reconnects" -ge 100 ] &&
    [ "$failed" = 0 ] && [ "$backends" = 2 ] && [ "$epochs" -ge 2 ]
tap_ok $? "TLS 1.2: $rate% of $reconnects reconnects resumed (>= 99%) across both terminators and $epochs ticket epochs"
RATE12=$rate

# HAProxy 2.6 issues a new TLS 1.3 ticket on resumption only when the ticket's
# key is no longer its encryption key, so a client that uses each ticket once
# has 2 resumptions per full handshake on any HAProxy (docs/HAPROXY.md).
# What the fleet must guarantee: every ticket offered resumes, on either
# terminator.
measure tls1.3
awk -v r="$orate" 'BEGIN { exit !(r >= 99) }' && [ "$offered" -ge 100 ] &&
    [ "$failed" = 0 ] && [ "$backends" = 2 ] && [ "$epochs" -ge 2 ]
tap_ok $? "TLS 1.3 single-use tickets: $orate% of $offered offered tickets resumed (>= 99%) across both terminators and $epochs epochs ($rate% of all reconnects)"
RATE13=$rate

# A TLS 1.3 client that keeps its session (OpenSSL's s_client -sess_in/out).
read -r n r nb nn <<<"$(hx_reuse 127.0.0.10:"$P" -tls1_3 50 $((2 * EPOCH + 1)))"
rate=$(awk -v n="$n" -v r="$r" 'BEGIN { printf "%.2f", n ? 100 * r / n : 0 }')
echo "# tls1.3 s_client reusing its session: $r of $n resumed, $nb backends, $nn ticket names"
awk -v r="$rate" 'BEGIN { exit !(r >= 99) }' && [ "$n" -ge 50 ] && [ "$nb" = 2 ] && [ "$nn" -ge 2 ]
tap_ok $? "TLS 1.3 client keeping its session: $rate% of $n reconnects resumed (>= 99%) across both terminators and an epoch boundary"

grep -q "pushed epoch" "$LAB/F1.log" && grep -q "pushed epoch" "$LAB/F2.log"
tap_ok $? "both feeders pushed the next epoch's key at the boundaries"

# No key bytes in the feeders' logs: neither the base64 lines HAProxy holds
# nor the hex of their AES/HMAC parts.
leak=0
while read -r _ line; do
    hex=$(printf '%s' "$line" | base64 -d | od -An -tx1 | tr -d ' \n')
    for f in "$LAB/F1.log" "$LAB/F2.log"; do
        grep -qF "${line:24:40}" "$f" && leak=1
        grep -qiF "${hex:32:32}" "$f" && leak=1
        grep -qiF "${hex:96:32}" "$f" && leak=1
    done
done < <(hx_cli S1 "show tls-keys $ID1" | grep -E '^[0-9]+\.[0-9]+ ')
tap_ok $leak "the feeders' logs hold key names and epochs, no key bytes"

# Baseline: two terminators without a feeder, each with its own keys.
for n in 1 2; do
    for _ in 1 2 3; do openssl rand 80 | base64 -w0; echo; done > "$LAB/base$n.keys"
    chmod 600 "$LAB/base$n.keys"
    hx_terminator "B$n" "127.0.0.1$n" "$PB" "$LAB/base$n.keys"
    hx_start "B$n"
done
hx_balancer LB2 127.0.0.10 "$PB" "127.0.0.11:$PB" "127.0.0.12:$PB"
hx_start LB2
hx_wait_cli B1 && hx_wait_cli B2 && lab_wait_port "$PB" 127.0.0.10
for v in tls1.2 tls1.3; do
    hx_probe 127.0.0.10:"$PB" "--$v" -n 40 -q --json "$LAB/base-$v.json" --summary "$LAB/base-$v.json.summary" >/dev/null 2>&1
    read -r rate reconnects _ _ _ _ _ _ <<<"$(hx_summary "$LAB/base-$v.json" 2>/dev/null || echo 100 0)"
    echo "# baseline $v (independent keys): $rate% of $reconnects reconnects resumed"
    if [ $v = tls1.2 ]; then fleet=$RATE12; else fleet=$RATE13; fi
    awk -v r="$rate" -v f="$fleet" 'BEGIN { exit !(r < 50 && r < f) }' && [ "$reconnects" -ge 30 ]
    tap_ok $? "baseline $v without feeder (own keys per terminator) resumes less: $rate% vs $fleet%"
done

# Restart S1: the new process reads the FIFO again and the feeder re-feeds it.
lab_stop haproxy-S1
hx_start S1
hx_wait_cli S1
ok=1; for _ in $(seq 1 20); do ring_equal && { ok=0; break; }; sleep 0.25; done
tap_ok $ok "a restarted terminator starts again with the fleet's ring from the FIFO"
newpid=$(hx_cli S1 "show info" | awk '/^Pid:/ {print $2}')
ok=1; for _ in $(seq 1 40); do grep -q "HAProxy pid $newpid" "$LAB/F1.log" && { ok=0; break; }; sleep 0.1; done
tap_ok $ok "the feeder notices the new HAProxy process (pid $newpid) and feeds it"

# Restart S1 with throwaway random keys while an epoch boundary passes with
# S1 down: the feeder retries with backoff and replaces all three keys.
lab_stop haproxy-S1
for _ in 1 2 3; do openssl rand 80 | base64 -w0; echo; done > "$LAB/throwaway.keys"
chmod 600 "$LAB/throwaway.keys"
hx_terminator S1 127.0.0.11 "$P" "$LAB/throwaway.keys"
ID1=$LAB/throwaway.keys
hx_wait_epoch_turn "$EPOCH"
sleep 1
hx_start S1
hx_wait_cli S1 || { echo "# haproxy-S1 log:"; sed 's/^/#   /' "$LAB/haproxy-S1.log"; }
ok=1; for _ in $(seq 1 40); do ring_equal && { ok=0; break; }; sleep 0.25; done
grep -q "unreachable" "$LAB/F1.log" || ok=1
tap_ok $ok "feeder retries while HAProxy is down and replaces a restarted HAProxy's throwaway keys"
for v in tls1.2 tls1.3; do
    hx_probe 127.0.0.10:"$P" "--$v" -n 60 -q --json "$LAB/after-$v.json" --summary "$LAB/after-$v.json.summary" >/dev/null 2>&1
    read -r rate reconnects _ offered orate failed backends _ <<<"$(hx_summary "$LAB/after-$v.json" 2>/dev/null || echo 0 0 0 0 0 1 0 0)"
    awk -v r="$orate" 'BEGIN { exit !(r >= 99) }' && [ "$offered" -ge 30 ] && [ "$backends" = 2 ]
    tap_ok $? "after the restart, $v: $orate% of $offered offered tickets resumed across both terminators"
done

# SIGTERM: the feeder exits 0 and removes the FIFO it created.
pid=$(lab_pid F2)
kill -TERM "$pid"; wait "$pid"; rc=$?
rm -f "$LAB/pids/F2"
[ "$rc" = 0 ] && [ ! -e "$LAB/hx-S2/keys.fifo" ] && grep -q "stopping" "$LAB/F2.log"
tap_ok $? "feeder exits cleanly on SIGTERM (status $rc) and removes its FIFO"
tap_done
