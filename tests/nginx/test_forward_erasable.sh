#!/bin/bash
# test_forward_erasable.sh - two nginx servers (two workers each) with
# hsmkeys_forward_erasable on behind HAProxy round robin, epochs of 2 s
# (lifetime 4 s: the window is [e-2, e+1], states kept for [e-3, e+1]).
#
# Threat: the mode breaking the fleet (a server whose chain differs or lags
# resumes nothing), and erasure that does not happen (a token that still holds
# the state of an epoch that left the window, or a server that still resumes
# its tickets).  Checked: resumption across epoch boundaries and after a
# restart of one server; kcv --epoch E on both tokens while E is live, then
# "erased"; no state older than the window + 1 on either token, one per live
# epoch although four worker processes advance the chains; a ticket of an
# erased epoch gets a full handshake; a token left alone for three windows
# catches up and its server resumes the fleet's tickets within one epoch.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
TOOL=$HSMKEYS_BUILD/hsmkeys-tool
CHAIN=$HSMKEYS_BUILD/tests/t-chain

why=$(ngx_missing)
[ -z "$why" ] && [ ! -x "$CHAIN" ] && why="t-chain not built (make tests)"
if [ -n "$why" ]; then tap_skip "nginx forward-erasable suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=4s
epoch_now() { echo $(( $(date +%s) / 2 )); }
# Sleep to 1 s into an epoch: the maintainers ran at its boundary.
mid_epoch() { python3 -c 'import time; t = time.time(); time.sleep((2 - t % 2) + 1.0 if t % 2 > 1.0 else 1.0 - t % 2)'; }

lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init &&
    E0=$(epoch_now) &&
    SOFTHSM2_CONF=$S1_CONF "$CHAIN" import S1 "$S1_PIN_FILE" fleet 1 "$E0" &&
    SOFTHSM2_CONF=$S2_CONF "$CHAIN" import S2 "$S2_PIN_FILE" fleet 1 "$E0"
tap_ok $? "two tokens with the same master and the same chain state S(1, $E0)"

P1=$(lab_port); P2=$(lab_port); PL=$(lab_port)
FE='hsmkeys_forward_erasable on;'
ngx_conf S1 127.0.0.1 "$P1" "$S1_URI" "$FE"
ngx_conf S2 127.0.0.1 "$P2" "$S2_URI" "$FE"
ngx_test S1 S1
rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$LAB/S1/t.out"
tap_ok $rc "nginx -t accepts hsmkeys_forward_erasable on"
lab_host S3 fleet && ngx_conf S3 127.0.0.1 "$(lab_port)" "$S3_URI" "$FE"
ngx_test S3 S3
[ $? != 0 ] && grep -q "holds no chain state.*hsmkeys-tool create --forward-erasable" "$LAB/S3/t.out"
tap_ok $? "nginx -t refuses hsmkeys_forward_erasable on a token without the chain, naming the fix"

# HAProxy round robin; a connection refused by a restarting server is
# dispatched to the other one (retries + redispatch), so clients see no error.
mkdir -p "$LAB/LB"
cat > "$LAB/LB/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:$PL
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:$P1
    server s2 127.0.0.1:$P2
EOF
ngx_start S1 S1 && ngx_start S2 S2 && lab_spawn LB haproxy -db -f "$LAB/LB/haproxy.cfg" &&
    lab_wait_port "$PL"
tap_ok $? "S1 and S2 (2 workers each, forward-erasable) and HAProxy round robin are up"
LBADDR=127.0.0.1:$PL

# A TLS 1.2 session from now, kept for the erasure check below.
openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -sess_out "$LAB/old.sess" \
    </dev/null >"$LAB/old.out" 2>&1
E_OLD=$(epoch_now)

# Runs last 3 s: OpenSSL ends a TLS 1.2 session (renewed tickets included)
# 4 s (the lifetime) after its full handshake, whatever the keys.
for v in 1.2 1.3; do
    probe_rate --duration 3 --interval 20 "--tls$v" "$LBADDR"
    fleet_ok && [ "$PROBE_EPOCHS" -ge 2 ]
    tap_ok $? "TLS $v across epoch boundaries: >= 99% resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS), $PROBE_EPOCHS epochs"
done

# ngx_quit NAME: graceful stop (SIGQUIT: open connections finish, the
# listener closes, HAProxy dispatches new connections to the other server).
ngx_quit() {
    local pid; pid=$(lab_pid "$1")
    kill -QUIT "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid" 2>/dev/null
    rm -f "$LAB/pids/$1"
}

# One server restarts mid-run: no failed connection, >= 99% resumed.
probe_rate --duration 3 --interval 20 --tls1.2 "$LBADDR" > "$LAB/bg.out" &
bg=$!
sleep 0.8; ngx_quit S2; ngx_start S2 S2; r=$?
wait $bg
cat "$LAB/bg.out"
eval "$(sed -n 's/^#RESULT //p' "$LAB/bg.out")"
[ $r = 0 ] && [ "$PROBE_FAILED" = 0 ] && at_least_99 "$PROBE_RESUMED" "$PROBE_RECONNECTS"
tap_ok $? "S2 restarted during the run: >= 99% resumed ($PROBE_RESUMED of $PROBE_RECONNECTS), no failed connection"
probe_rate --duration 3 --interval 20 --tls1.3 "$LBADDR"
fleet_ok
tap_ok $? "after the restart: >= 99% resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"

# Erasure.  E is live now: both tokens compute its check value, the same.
kcv() { local h=$1 e=$2 conf pin; conf=${h}_CONF; pin=${h}_PIN_FILE
        SOFTHSM2_CONF=${!conf} "$TOOL" kcv --token "$h" --pin-source "${!pin}" --epoch "$e" \
            --domain "$NGX_DOMAIN" --epoch-length 2s --forward-erasable 2>&1; }
E=$(epoch_now)
k1=$(kcv S1 "$E"); r1=$?; k2=$(kcv S2 "$E"); r2=$?
echo "# S1: $k1"; echo "# S2: $k2"
[ $r1 = 0 ] && [ $r2 = 0 ] && [ "${k1##*kcv }" = "${k2##*kcv }" ]
tap_ok $? "kcv --epoch $E succeeds on both tokens while it is in the window, and agrees"
while [ "$(epoch_now)" -lt $((E + 5)) ]; do sleep 0.5; done
mid_epoch
k1=$(kcv S1 "$E"); r1=$?; k2=$(kcv S2 "$E"); r2=$?
echo "# S1: $k1"; echo "# S2: $k2"
[ $r1 != 0 ] && [ $r2 != 0 ] && printf '%s\n%s\n' "$k1" "$k2" | grep -c "is erased on token" | grep -qx 2
tap_ok $? "after the window moved on: kcv --epoch $E fails with 'erased' on both tokens"
# one_each FILE LO HI: exactly the states (1, LO..HI), one each
# Returns 0: exactly one each; 2: every live epoch held and none outside,
# but some epoch in two copies (processes that made it at the same instant
# and have not settled yet: they settle at their next advance, all keeping
# the copy of the smallest creator nonce); 1: a live epoch missing or a
# state outside the window + 1.
one_each() {
    local x
    awk -v lo="$2" -v hi="$3" '$2 < lo || $2 > hi { bad = 1 } END { exit bad }' "$1" || return 1
    for x in $(seq "$2" "$3"); do grep -qx "1 $x" "$1" || return 1; done
    [ -z "$(sort "$1" | uniq -d)" ] || return 2
}
# Two workers advance each token at every boundary; copies two of them made
# at the same moment are settled at their next advance: the listing is
# checked at mid-epoch, at most three epochs in a row, until it settles.
for h in S1 S2; do
    conf=${h}_CONF; pin=${h}_PIN_FILE; ok=1
    for try in 1 2 3; do
        e=$(epoch_now)
        SOFTHSM2_CONF=${!conf} "$CHAIN" list $h "${!pin}" > "$LAB/$h.states"
        echo "# epoch $e (look $try); $h holds: $(tr '\n' ' ' < "$LAB/$h.states")"
        one_each "$LAB/$h.states" $((e - 3)) $((e + 1)); ok=$?
        [ $ok = 0 ] && break
        mid_epoch
    done
    [ $ok = 2 ] && echo "# $h: every live epoch held, none older, but duplicate copies did not settle in three epochs"
    [ $ok = 0 ]
    tap_ok $? "$h holds exactly one state per live epoch and none older than epoch $((e - 3)) (window + 1), with two worker processes advancing it"
done

# The session from epoch E_OLD: its epoch is erased, so a full handshake.
openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -sess_in "$LAB/old.sess" \
    </dev/null >"$LAB/old2.out" 2>&1
grep -q '^Reused' "$LAB/old.out"; first_reused=$?
grep -q '^New' "$LAB/old2.out" && ! grep -q '^Reused' "$LAB/old2.out" && [ $first_reused != 0 ]
tap_ok $? "a TLS 1.2 ticket of erased epoch $E_OLD gets a full handshake"

# Catch-up: S2 stopped for three windows (3 x 4 epochs = 24 s) while S1 goes
# on; its token keeps the old states meanwhile.  Started again, S2 resumes
# the fleet's tickets within one epoch.
lab_stop S2
sleep 24
SOFTHSM2_CONF=$S2_CONF "$CHAIN" list S2 "$S2_PIN_FILE" > "$LAB/S2.before"
e=$(epoch_now)
awk -v lo=$((e - 3)) '$2 >= lo { n++ } END { exit n > 0 }' "$LAB/S2.before"
tap_ok $? "S2's token, left alone, holds only states behind the window ($(tr '\n' ' ' < "$LAB/S2.before"))"
start=$(date +%s.%N)
ngx_start S2 S2 &&
    probe_rate --duration 2 --interval 20 --tls1.2 "$LBADDR"
fleet_ok
tap_ok $? "S2 catches up from its old state: >= 99% of reconnects resumed on the other server in the first 2 s after its start ($PROBE_RESUMED of $PROBE_RECONNECTS)"
echo "# S2 start to end of that probe: $(python3 -c "import time; print(round(time.time() - $start, 1))") s"

grep -h '\[warn\].*hsmkeys' "$LAB/S1/error.log" "$LAB/S2/error.log" | head -10 | sed 's/^/# /'
! grep -E '\[(emerg|alert|crit)\]|\[error\].*hsmkeys' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert and no hsmkeys error in the servers' error logs"
tap_done
