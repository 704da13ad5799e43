#!/bin/bash
# test_resumption.sh - two nginx servers (two workers each) with the hsmkeys
# http module behind HAProxy round robin resume each other's tickets.
#
# Threat: a fleet where a client that lands on the other server gets a full
# handshake.  S1 (127.0.0.11) and S2 (127.0.0.12) hold the same master in
# two SoftHSM2 tokens; HAProxy (127.0.0.10, mode tcp, roundrobin) alternates
# every reconnect between them, so every resumption counted here is a
# cross-server one.  Epochs are 3 s (lifetime 9 s) so the suite also crosses
# epoch boundaries.  Baseline: two servers whose masters differ (another
# seed) resume nothing across servers.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
if [ -n "$why" ]; then tap_skip "nginx resumption suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=3s NGX_LIFETIME=9s
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init
tap_ok $? "two tokens with the same master, one fleet certificate"

P=$(lab_port)
ngx_conf S1 127.0.0.11 "$P" "$S1_URI"
ngx_conf S2 127.0.0.12 "$P" "$S2_URI"
ngx_test S1 S1
rc=$?; [ $rc = 0 ] || cat "$LAB/S1/t.out" | sed 's/^/# /'
tap_ok $rc "nginx -t accepts hsmkeys_tickets/uri/domain/epoch/lifetime"

ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.10 "$P" "127.0.0.11:$P" "127.0.0.12:$P"
tap_ok $? "S1 and S2 (2 workers each) and HAProxy round robin are up"
LBADDR=127.0.0.10:$P

for v in 1.2 1.3; do
    probe_rate -n 200 "--tls$v" "$LBADDR"
    fleet_ok
    tap_ok $? "TLS $v: >= 99% of 199 reconnects resumed on the other server ($PROBE_RESUMED resumed, $PROBE_CROSS cross)"
done

# Epoch boundaries: 7 s of reconnects with 3 s epochs cross at least two.
for v in 1.2 1.3; do
    probe_rate --duration 7 --interval 40 "--tls$v" "$LBADDR"
    fleet_ok && [ "$PROBE_EPOCHS" -ge 2 ] && [ "$PROBE_RENEWED" -ge 1 ]
    tap_ok $? "TLS $v across epoch boundaries: >= 99% resumed ($PROBE_RESUMED of $PROBE_RECONNECTS), $PROBE_EPOCHS epochs, $PROBE_RENEWED renewed at a boundary"
done

# nginx -s reload on both servers while a client keeps reconnecting: the
# masters open new contexts, new workers start, the fleet keys stay the same.
for v in 1.2 1.3; do
    probe_rate --duration 5 --interval 20 "--tls$v" "$LBADDR" > "$LAB/bg.out" &
    bg=$!
    sleep 1.5; ngx_reload S1 S1; r1=$?
    sleep 1;   ngx_reload S2 S2; r2=$?
    wait $bg
    [ $r1 = 0 ] && [ $r2 = 0 ]
    tap_ok $? "TLS $v: nginx -s reload replaced both servers' workers during the run"
    cat "$LAB/bg.out"
    eval "$(sed -n 's/^#RESULT //p' "$LAB/bg.out")"
    fleet_ok
    tap_ok $? "TLS $v across nginx -s reload: >= 99% resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"
done

# For diagnosing a missed resumption: the servers' hsmkeys warnings.
grep -h '\[warn\].*hsmkeys' "$LAB/S1/error.log" "$LAB/S2/error.log" | head -10 | sed 's/^/# /'
# Also catches OpenSSL errors that token calls leave behind in workers
# (nginx: "ignoring stale global SSL error").
! grep -E '\[(emerg|alert|crit)\]|\[error\].*hsmkeys' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert and no hsmkeys error in the servers' error logs"

# Baseline: same set-up, but S4's master comes from another seed.
lab_host S3 fleet && lab_host S4 other-fleet
Q=$(lab_port)
ngx_conf S3 127.0.0.11 "$Q" "$S3_URI"
ngx_conf S4 127.0.0.12 "$Q" "$S4_URI"
ngx_start S3 S3 && ngx_start S4 S4 && lb_start LB2 127.0.0.10 "$Q" "127.0.0.11:$Q" "127.0.0.12:$Q"
tap_ok $? "baseline: S3 and S4 with different masters behind HAProxy"
for v in 1.2 1.3; do
    probe_rate -n 100 "--tls$v" "127.0.0.10:$Q"
    [ "$PROBE_FAILED" = 0 ] && [ "$PROBE_RECONNECTS" -gt 0 ] && [ "$PROBE_CROSS" = 0 ]
    tap_ok $? "baseline TLS $v: different masters resume no reconnect across servers ($PROBE_RESUMED of $PROBE_RECONNECTS resumed)"
done
tap_done
