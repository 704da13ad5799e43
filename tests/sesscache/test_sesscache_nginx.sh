#!/bin/bash
# test_sesscache_nginx.sh - the sealed shared session cache on Redis with two
# nginx servers (http module, two workers each) behind HAProxy round robin.
#
# Threat: TLS 1.2 clients that resume by session ID only get a full
# handshake on every bounce between servers; a shared cache that leaks the
# sessions (IDs, master secrets) to its store, accepts entries edited,
# moved or of another domain, keeps them past their expiry, or stalls
# handshakes when the store dies or hangs.
# Baseline: the same servers without hsmkeys_session_cache resume no
# session-ID reconnect.  Lifetime 8 s (entries expire quickly), epoch 1 h.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
source "$HSMKEYS_ROOT/tests/sesscache/sc_lab.sh"

why=$(ngx_missing); [ -n "$why" ] || why=$(sc_missing)
if [ -n "$why" ]; then tap_skip "nginx session cache suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=1h NGX_LIFETIME=8s
TIMEOUT_MS=20
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init && redis_start R
tap_ok $? "two tokens with the same master, one certificate, Redis with a password on 127.0.0.1:$R_PORT"

SC="hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$R_PW timeout=${TIMEOUT_MS}ms connect_timeout=${TIMEOUT_MS}ms;"

# ---- configuration errors: nginx -t --------------------------------------
P9=$(lab_port)
badconf() { # NAME DIRECTIVE -> status of nginx -t, output in $LAB/NAME/t.out
    ngx_conf "$1" 127.0.0.1 "$P9" "$S1_URI" "$2"
    ngx_test "$1" S1
}
(umask 077; echo wrong-password > "$LAB/wrong.pw")
badconf B1 "hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$LAB/wrong.pw;"
[ $? != 0 ] && grep -q 'hsmkeys_session_cache.*AUTH refused.*password' "$LAB/B1/t.out"
tap_ok $? "nginx -t fails on a wrong password: $(grep -o 'AUTH refused[^(]*' "$LAB/B1/t.out" | head -1)"
badconf B2 "hsmkeys_session_cache redis://127.0.0.1:$R_PORT;"
[ $? != 0 ] && grep -q 'NOAUTH' "$LAB/B2/t.out"
tap_ok $? "nginx -t fails when the store wants a password and none is configured"
closed=$(lab_port)
badconf B3 "hsmkeys_session_cache redis://127.0.0.1:$closed password_file=$R_PW;"
[ $? = 0 ] && grep -q '\[warn\].*hsmkeys_session_cache.*unreachable' "$LAB/B3/t.out"
tap_ok $? "nginx -t warns (and passes) when the store is unreachable"
badconf B4 "hsmkeys_session_cache redis://redis.example:6379;"
[ $? != 0 ] && grep -q 'not an IP address' "$LAB/B4/t.out" && grep -q 'nginx.conf:[0-9]' "$LAB/B4/t.out"
tap_ok $? "nginx -t fails on a host name with file:line: $(grep -o 'invalid store address.*' "$LAB/B4/t.out" | head -1 | cut -c1-90)"
badconf B5 "hsmkeys_session_cache http://127.0.0.1:6379;"
[ $? != 0 ] && grep -q 'expected redis://IP' "$LAB/B5/t.out"
tap_ok $? "nginx -t fails on a bad URL scheme"
cp "$R_PW" "$LAB/open.pw"; chmod 644 "$LAB/open.pw"
badconf B6 "hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$LAB/open.pw;"
[ $? != 0 ] && grep -q 'readable by group or others' "$LAB/B6/t.out"
tap_ok $? "nginx -t refuses a password file readable by others"
badconf B7 "hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$R_PW timeout=1h;"
[ $? != 0 ] && grep -q 'duration of 1ms..10s' "$LAB/B7/t.out"
tap_ok $? "nginx -t refuses an unbounded timeout"
badconf B8 "hsmkeys_session_cache unix:$R_SOCK password_file=$R_PW;"
tap_ok $? "nginx -t accepts a unix socket store ($(grep -c warn "$LAB/B8/t.out") warnings)"

# ---- the fleet -------------------------------------------------------------
P1=$(lab_port) P2=$(lab_port) P0=$(lab_port)
ngx_conf S1 127.0.0.1 "$P1" "$S1_URI" "$SC"
ngx_conf S2 127.0.0.1 "$P2" "$S2_URI" "$SC"
ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.1 "$P0" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 with hsmkeys_session_cache and HAProxy round robin are up"
LBA=127.0.0.1:$P0

sc_chain "$LBA" "$LAB/chain1.sess" 20
[ "$SC_REUSED" -ge 19 ] && [ "$SC_FAILED" = 0 ] && [ "$SC_BACKENDS" = 2 ]
tap_ok $? "session-ID-only TLS 1.2 chain through round robin: $SC_REUSED of 20 reconnects resumed on alternating servers"
echo "#RATE nginx $SC_REUSED/20"

for v in 1.2 1.3; do
    probe_rate -n 60 "--tls$v" "$LBA"
    fleet_ok
    tap_ok $? "TLS $v tickets still resume across the fleet ($PROBE_RESUMED of $PROBE_RECONNECTS)"
done

out=$(rstore R search "$LAB/chain1.sess"); rc=$?
echo "# store: $out"
[ $rc = 0 ] && ! rstore R keys | grep -qvE '^hk1:[0-9a-f]{32}$'
tap_ok $? "the store holds neither the session ID nor the master secret (keys and values searched; $out), keys are hk1:<hash>"

# ---- tampering -------------------------------------------------------------
alive() { kill -0 "$(lab_pid S1)" && kill -0 "$(lab_pid S2)" && [ "$(pgrep -c -P "$(lab_pid S1)")" = 2 ] \
          && [ "$(pgrep -c -P "$(lab_pid S2)")" = 2 ]; }
logged() { sleep 0.2; cat "$LAB/S1/error.log" "$LAB/S2/error.log" | grep -c "session cache entry refused: $1"; }
only_key() { rstore R keys | head -1; }

rstore R flush; sc_chain "$LBA" "$LAB/t1.sess" 1 >/dev/null
k=$(only_key); v=$(rstore R get "$k")
flipped=$(python3 -c "import sys; b=bytearray.fromhex(sys.argv[1]); b[len(b)//2]^=1; print(b.hex())" "$v")
n0=$(logged "entry does not authenticate")
rstore R set "$k" "$flipped"; sc_once "$LBA" "$LAB/t1.sess"
[ "$SC_LAST" = New ] && [ "$(logged "entry does not authenticate")" -gt "$n0" ] && alive
tap_ok $? "a flipped byte in an entry: refused, full handshake ($SC_LAST), servers up"

sleep 1.1 # one refusal line per reason and second
rstore R flush; sc_chain "$LBA" "$LAB/ta.sess" 1 >/dev/null; ka=$(only_key)
sc_chain "$LBA" "$LAB/tb.sess" 1 >/dev/null; kb=$(rstore R keys | grep -vx "$ka" | head -1)
n0=$(logged "entry does not authenticate")
rstore R set "$kb" "$(rstore R get "$ka")"; sc_once "$LBA" "$LAB/tb.sess"
[ -n "$kb" ] && [ "$SC_LAST" = New ] && [ "$(logged "entry does not authenticate")" -gt "$n0" ] && alive
tap_ok $? "an entry copied under another session's key: refused, full handshake ($SC_LAST)"

# another domain (same master, same store): its entry under our session's key
NGX_DOMAIN=other.hsmkeys.test; P5=$(lab_port)
ngx_conf S5 127.0.0.1 "$P5" "$S1_URI" "$SC"; NGX_DOMAIN=fleet.hsmkeys.test
ngx_start S5 S1
sleep 1.1
rstore R flush; sc_chain "127.0.0.1:$P5" "$LAB/to.sess" 1 >/dev/null; ko=$(only_key)
sc_chain "$LBA" "$LAB/tc.sess" 1 >/dev/null; kc=$(rstore R keys | grep -vx "$ko" | head -1)
n0=$(logged "entry does not authenticate")
rstore R set "$kc" "$(rstore R get "$ko")"; sc_once "$LBA" "$LAB/tc.sess"
[ -n "$ko" ] && [ -n "$kc" ] && [ "$SC_LAST" = New ] && [ "$(logged "entry does not authenticate")" -gt "$n0" ] && alive
tap_ok $? "an entry of another domain under our session's key: refused, full handshake ($SC_LAST)"
lab_stop S5

rstore R flush; sc_chain "$LBA" "$LAB/te.sess" 1 >/dev/null; ke=$(only_key)
rstore R persist "$ke"   # the store keeps it past its TTL; the entry's own expiry must refuse it
sleep 9
n0=$(logged "expired entry")
sc_once "$LBA" "$LAB/te.sess"
[ "$SC_LAST" = New ] && [ "$(logged "expired entry")" -gt "$n0" ] && alive
tap_ok $? "an entry kept past its expiry (TTL removed in the store): refused, full handshake ($SC_LAST)"

# ---- store failures --------------------------------------------------------
python3 "$HSMKEYS_ROOT/tests/sesscache/hstime.py" "$LBA" 60 20 > "$LAB/kill.out" 2>&1 &
bg=$!
sleep 0.6; kill -KILL "$(lab_pid R)"; wait "$(lab_pid R)" 2>/dev/null
wait $bg; cat "$LAB/kill.out" | sed 's/^/# /'
grep -q 'failed=0 ' "$LAB/kill.out"
tap_ok $? "Redis killed during 60 session-ID connections: 0 failed (full handshakes)"
redis_restart R; sleep 2.5
sc_chain "$LBA" "$LAB/chain2.sess" 10
[ "$SC_REUSED" -ge 9 ] && [ "$SC_FAILED" = 0 ]
tap_ok $? "after Redis restarts, without touching the servers: $SC_REUSED of 10 reconnects resumed"
grep -q 'session cache store redis://127.0.0.1:[0-9]*: .*full handshakes' "$LAB/S1/error.log" "$LAB/S2/error.log" \
    && grep -q 'session cache store redis://.* answers again' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "the outage and the recovery are logged"

sc_chain "$LBA" "$LAB/stop.sess" 2 >/dev/null
kill -STOP "$(lab_pid R)"
python3 "$HSMKEYS_ROOT/tests/sesscache/hstime.py" "$LBA" 40 30 > "$LAB/stop.out" 2>&1
kill -CONT "$(lab_pid R)"
cat "$LAB/stop.out" | sed 's/^/# /'
max=$(sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p' "$LAB/stop.out")
grep -q 'failed=0 ' "$LAB/stop.out" && python3 -c "import sys; sys.exit(not float(sys.argv[1]) <= $TIMEOUT_MS + 50)" "${max:-999}"
tap_ok $? "Redis stopped (SIGSTOP): 40 connections, none failed, the slowest handshake took ${max} ms (<= timeout ${TIMEOUT_MS} ms + 50 ms)"

! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert or crash in the servers' error logs"

# ---- baseline: the same fleet without the cache ------------------------------
Q1=$(lab_port) Q2=$(lab_port) Q0=$(lab_port)
ngx_conf S3 127.0.0.1 "$Q1" "$S1_URI"
ngx_conf S4 127.0.0.1 "$Q2" "$S2_URI"
ngx_start S3 S1 && ngx_start S4 S2 && lb_start LB2 127.0.0.1 "$Q0" "127.0.0.1:$Q1" "127.0.0.1:$Q2"
sc_chain "127.0.0.1:$Q0" "$LAB/base.sess" 10
[ "$SC_REUSED" = 0 ] && [ "$SC_FAILED" = 0 ]
tap_ok $? "baseline without hsmkeys_session_cache: $SC_REUSED of 10 session-ID reconnects resumed"
tap_done
