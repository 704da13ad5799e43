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
SC_LIFETIME=8 SC_TIMEOUT_MS=20
NGX_EPOCH=1h NGX_LIFETIME=${SC_LIFETIME}s
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init && redis_start R
tap_ok $? "two tokens with the same master, one certificate, Redis with a password on 127.0.0.1:$R_PORT"

SC="hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$R_PW timeout=${SC_TIMEOUT_MS}ms connect_timeout=${SC_TIMEOUT_MS}ms;"

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

for v in 1.2 1.3; do
    probe_rate -n 60 "--tls$v" "$LBA"
    fleet_ok
    tap_ok $? "TLS $v tickets still resume across the fleet ($PROBE_RESUMED of $PROBE_RECONNECTS)"
done

# a server of another domain on the same master and store (not behind the LB)
NGX_DOMAIN=other.hsmkeys.test; P5=$(lab_port)
ngx_conf S5 127.0.0.1 "$P5" "$S1_URI" "$SC"; NGX_DOMAIN=fleet.hsmkeys.test
ngx_start S5 S1
tap_ok $? "S5 of another domain on the same store is up"

sc_alive() { kill -0 "$(lab_pid S1)" && kill -0 "$(lab_pid S2)" && [ "$(pgrep -c -P "$(lab_pid S1)")" = 2 ] \
             && [ "$(pgrep -c -P "$(lab_pid S2)")" = 2 ]; }
SC_LOGS=("$LAB/S1/error.log" "$LAB/S2/error.log")
sc_fleet_suite nginx "$LBA" "127.0.0.1:$P5"
lab_stop S5

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
