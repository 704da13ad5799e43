#!/bin/bash
# test_sesscache_stream.sh - hsmkeys_session_cache in nginx stream{} servers:
# two stream TLS servers behind HAProxy round robin resume a session-ID-only
# TLS 1.2 client chain through the sealed store, tickets still resume, and
# the store holds no session ID or master secret.  (The failure and
# tampering scenario is the http suite's: the same code behind both.)
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
source "$HSMKEYS_ROOT/tests/sesscache/sc_lab.sh"

why=$(ngx_missing); [ -n "$why" ] || why=$(sc_missing)
[ -n "$why" ] || [ -f "$NGX_STREAM_MOD" ] || why="stream module not built"
if [ -n "$why" ]; then tap_skip "nginx stream session cache suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=1h NGX_LIFETIME=60s
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init && redis_start R
tap_ok $? "two tokens, one certificate, Redis with a password"
SC="hsmkeys_session_cache unix:$R_SOCK password_file=$R_PW timeout=20ms;"
P1=$(lab_port) P2=$(lab_port) P0=$(lab_port)
ngx_stream_conf S1 127.0.0.1 "$P1" "$S1_URI" "$SC"
ngx_stream_conf S2 127.0.0.1 "$P2" "$S2_URI" "$SC"
ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.1 "$P0" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "stream S1 and S2 (store on a unix socket) behind HAProxy round robin"

sc_chain "127.0.0.1:$P0" "$LAB/chain.sess" 20
[ "$SC_REUSED" -ge 19 ] && [ "$SC_FAILED" = 0 ] && [ "$SC_BACKENDS" = 2 ]
tap_ok $? "stream: session-ID-only TLS 1.2 chain: $SC_REUSED of 20 reconnects resumed on alternating servers"
echo "#RATE nginx-stream $SC_REUSED/20"

probe_rate -n 40 --tls1.2 "127.0.0.1:$P0"
fleet_ok
tap_ok $? "stream: TLS 1.2 tickets still resume across the fleet ($PROBE_RESUMED of $PROBE_RECONNECTS)"

out=$(rstore R search "$LAB/chain.sess")
tap_ok $? "stream: the store holds neither the session ID nor the master secret ($out)"
# (the stream server answers and closes before reading our request: nginx
# logs the request arriving after its close_notify as [crit]; not ours)
! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" "$LAB/S2/error.log" | grep -v 'application data after close notify'
tap_ok $? "no alert in the servers' error logs (besides nginx's close_notify note)"
tap_done
