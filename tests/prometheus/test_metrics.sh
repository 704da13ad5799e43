#!/bin/bash
# test_metrics.sh - the Prometheus metrics of each server kind, after a known
# number of handshakes (TLS 1.2, one client: 1 full handshake, then every
# reconnect resumed):
#   - nginx, 2 workers (reuseport spreads the connections over both), the
#     `hsmkeys_metrics` location: hsmkeys_tickets_resumed_total is the
#     probe's count, summed over the workers;
#   - hsmkeys-demo-server --metrics: the same count, and the count the server
#     logs itself;
#   - Apache httpd, event MPM with 2 children, "SetHandler hsmkeys-metrics":
#     the same, summed over the children;
#   - hsmkeys-haproxy-feeder --metrics: it derived and reports its token up;
#   - every scrape passes `promtool check metrics`; hsmkeys_info's tag is the
#     same for servers with the same master and domain, and differs for a
#     server with another master.
# Threat: dashboards that show numbers the servers did not serve, or a fleet
# member on another master that no metric reveals.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

why=$(ngx_missing)
[ -z "$why" ] && ! command -v promtool >/dev/null && why="promtool not installed (make deps: prometheus)"
[ -z "$why" ] && ! command -v curl >/dev/null && why="curl not installed (make deps)"
[ -z "$why" ] && [ ! -x "$HSMKEYS_BUILD/hsmkeys-demo-server" ] && why="demo server not built (make)"
if [ -n "$why" ]; then tap_skip "metrics of each server kind" "$why"; tap_done; exit; fi

lab_init
lab_host S1 fleet && lab_host S2 fleet && lab_host B1 other && ngx_lab_init
tap_ok $? "tokens S1, S2 (one master), B1 (another)"

# scrape NAME URL: the page in $LAB/NAME.prom; promtool's verdict
scrape() {
    curl -sf "$2" > "$LAB/$1.prom" || { echo "# scrape $2 failed"; return 1; }
    local out; out=$(promtool check metrics < "$LAB/$1.prom" 2>&1)
    [ -z "$out" ] || { echo "$out" | sed 's/^/#   /'; return 1; }
}
# value NAME METRIC_WITH_LABELS: the sample's value in the last scrape
value() { awk -v k="$2" '$1 == k { print $2 }' "$LAB/$1.prom"; }
tag_of() { sed -n 's/^hsmkeys_info{.*tag="\([0-9a-f]*\)"} 1$/\1/p' "$LAB/$1.prom"; }
D="domain=\"$NGX_DOMAIN\""

# ---- nginx -----------------------------------------------------------------
P=$(lab_port); M=$(lab_port)
ngx_conf S1 127.0.0.1 "$P" "$S1_URI"
python3 - "$LAB/S1/nginx.conf" "$M" "$LAB/S1/access.log" <<'PY'
import sys
p, m, log = sys.argv[1:]
s = open(p).read().rstrip()
s = s.replace(" ssl;\n", " ssl reuseport;\n", 1)
s = s.replace("access_log off;", "log_format pids $pid;\n    access_log off;", 1)
s = s.replace("hsmkeys_tickets on;", "hsmkeys_tickets on;\n        access_log %s pids;" % log, 1)
s = s[:-1] + ("    server {\n        listen 127.0.0.1:%s;\n"
              "        location = /metrics { hsmkeys_metrics; }\n    }\n}\n") % m
open(p, "w").write(s)
PY
ngx_start S1 S1
tap_ok $? "nginx with 2 workers and a hsmkeys_metrics location"
probe_rate --tls1.2 --clients 1 --count 40 --interval 10 "127.0.0.1:$P"
workers=$(sort -u "$LAB/S1/access.log" | wc -l)
sleep 1.5   # the other worker publishes its row every second
scrape nginx "http://127.0.0.1:$M/metrics"
tap_ok $? "nginx: promtool check metrics accepts the scrape"
got=$(value nginx "hsmkeys_tickets_resumed_total{$D}")
echo "# nginx: probe resumed $PROBE_RESUMED (connections served by $workers workers), metrics say $got"
[ "$PROBE_FAILED" = 0 ] && [ "$PROBE_RESUMED" = 39 ] && [ "$got" = "$PROBE_RESUMED" ] && [ "$workers" -ge 2 ]
tap_ok $? "nginx: hsmkeys_tickets_resumed_total = $got = the probe's resumed reconnects, summed over $workers workers"
[ "$(value nginx "hsmkeys_token_up{$D}")" = 1 ] && [ "$(value nginx "hsmkeys_tickets_refused_total{$D,reason=\"foreign\"}")" = 0 ] \
    && [ "$(value nginx "hsmkeys_epoch_length_seconds{$D}")" = 3600 ]
tap_ok $? "nginx: token up, nothing refused, epoch length 3600 s"
# After a reload the new workers find the zone of their own cycle; their
# counters start again (a counter reset to Prometheus).
ngx_reload S1 S1 && probe_rate --tls1.2 --clients 1 --count 6 --interval 10 "127.0.0.1:$P" >/dev/null \
    && sleep 1.5 && scrape nginx2 "http://127.0.0.1:$M/metrics"
rc=$?; got2=$(value nginx2 "hsmkeys_tickets_resumed_total{$D}")
[ $rc = 0 ] && [ "$got2" = 5 ]
tap_ok $? "nginx: after nginx -s reload the new workers count again from zero (5 resumed, got $got2)"

# ---- demo server -------------------------------------------------------------
P2=$(lab_port); M2=$(lab_port); P3=$(lab_port); M3=$(lab_port)
SOFTHSM2_CONF=$S2_CONF lab_spawn D2 "$HSMKEYS_BUILD/hsmkeys-demo-server" --name D2 --listen "127.0.0.1:$P2" \
    -o "uri=$S2_URI" -o "domain=$NGX_DOMAIN" --metrics "127.0.0.1:$M2"
SOFTHSM2_CONF=$B1_CONF lab_spawn D3 "$HSMKEYS_BUILD/hsmkeys-demo-server" --name D3 --listen "127.0.0.1:$P3" \
    -o "uri=$B1_URI" -o "domain=$NGX_DOMAIN" --metrics "127.0.0.1:$M3"
lab_wait_port "$P2" && lab_wait_port "$M2" && lab_wait_port "$P3" && lab_wait_port "$M3"
tap_ok $? "demo servers D2 (master of S1) and D3 (another master) with --metrics"
probe_rate --tls1.2 --warmup 1 --clients 1 --count 20 --interval 10 "127.0.0.1:$P2"
scrape demo "http://127.0.0.1:$M2/metrics"
tap_ok $? "demo server: promtool check metrics accepts the scrape"
got=$(value demo "hsmkeys_tickets_resumed_total{$D}")
logged=$(grep -c 'resumed=1' "$LAB/D2.log")
echo "# demo: probe resumed $PROBE_RESUMED, the server logged $logged, metrics say $got"
[ "$PROBE_RESUMED" = 19 ] && [ "$got" = 19 ] && [ "$logged" = 19 ]
tap_ok $? "demo server: hsmkeys_tickets_resumed_total = 19 = the probe's and the server's own count"
# TLS 1.2: one ticket per full handshake (the probe's unrecorded warm-up
# connection is one too), one per renewal, none for a plain resumption
issued=$(value demo "hsmkeys_tickets_issued_total{$D}")
want=$((1 + PROBE_TOTAL - PROBE_RESUMED + PROBE_RENEWED))
echo "# demo: 1 warm-up + $PROBE_TOTAL connections, $PROBE_RESUMED resumed, $PROBE_RENEWED renewed; metrics say $issued issued"
[ "$issued" = "$want" ]
tap_ok $? "demo server: hsmkeys_tickets_issued_total = $issued = one per full handshake (warm-up included) plus one per renewal"
[ "$(value demo "hsmkeys_derivation_duration_seconds_count{$D}")" = "$(value demo "hsmkeys_token_derivations_total{$D}")" ] \
    && [ "$(value demo "hsmkeys_token_derivations_total{$D}")" -ge 2 ] \
    && [ "$(value demo "hsmkeys_derivation_duration_seconds_bucket{$D,le=\"+Inf\"}")" = "$(value demo "hsmkeys_token_derivations_total{$D}")" ]
tap_ok $? "demo server: the derivation histogram counts every derivation ($(value demo "hsmkeys_token_derivations_total{$D}"))"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$M2/other")
[ "$code" = 404 ]
tap_ok $? "the loopback endpoint answers only /metrics (got $code for /other)"
out=$(SOFTHSM2_CONF=$S2_CONF "$HSMKEYS_BUILD/hsmkeys-demo-server" --name X --listen "127.0.0.1:$(lab_port)" -o "uri=$S2_URI" \
      -o "domain=$NGX_DOMAIN" --metrics 0.0.0.0:9 2>&1 </dev/null); rc=$?
[ $rc != 0 ] && grep -q "is not a loopback address" <<<"$out"
tap_ok $? "a non-loopback --metrics address is refused: $out"

scrape other "http://127.0.0.1:$M3/metrics"
t1=$(tag_of nginx); t2=$(tag_of demo); t3=$(tag_of other)
echo "# hsmkeys_info tags: nginx/S1 $t1, D2/S2 $t2, D3/B1 $t3"
[ -n "$t1" ] && [ "$t1" = "$t2" ] && [ -n "$t3" ] && [ "$t3" != "$t1" ]
tap_ok $? "hsmkeys_info: the same tag for the same master and domain, another for another master"

# ---- HAProxy feeder ------------------------------------------------------------
M4=$(lab_port)
SOFTHSM2_CONF=$S2_CONF lab_spawn F "$HSMKEYS_BUILD/hsmkeys-haproxy-feeder" --foreground --uri "$S2_URI" \
    --domain "$NGX_DOMAIN" --fifo "$LAB/tickets.fifo" --metrics "127.0.0.1:$M4"
lab_wait_port "$M4" && scrape feeder "http://127.0.0.1:$M4/metrics"
tap_ok $? "feeder: --metrics serves a scrape promtool accepts"
[ "$(value feeder "hsmkeys_token_up{$D}")" = 1 ] && [ "$(value feeder "hsmkeys_token_derivations_total{$D}")" -ge 2 ] \
    && [ "$(tag_of feeder)" = "$t2" ]
tap_ok $? "feeder: token up, $(value feeder "hsmkeys_token_derivations_total{$D}") derivations, the fleet's tag"
# ---- Apache httpd ----------------------------------------------------------------
if ap_have_prereqs; then
    lab_host A1 fleet && ap_give_host_to_user A1 && ap_tls_cert
    AP_PORT=$(lab_port)
    ap_write_conf A1 127.0.0.1 "$AP_PORT" event A1 \
        'ListenCoresBucketsRatio 1' '<Location "/metrics">' '  SetHandler hsmkeys-metrics' '</Location>'
    ap_start A1 A1
    ap_wait A1 127.0.0.1 "$AP_PORT"
    tap_ok $? "Apache (event MPM, 2 children) with SetHandler hsmkeys-metrics"
    ap_probe --tls1.2 --clients 1 --count 40 --interval 10 "127.0.0.1:$AP_PORT"
    children=$(awk '$3 == "Resumed" { print $1 }' "$LAB/apache-A1/logs/access.log" | sort -u | wc -l)
    sleep 1.5   # the other child publishes its row every second
    curl -sfk "https://127.0.0.1:$AP_PORT/metrics" > "$LAB/apache.prom"
    out=$(promtool check metrics < "$LAB/apache.prom" 2>&1)
    [ -s "$LAB/apache.prom" ] && [ -z "$out" ]
    tap_ok $? "Apache: promtool check metrics accepts the scrape $out"
    AD="domain=\"$AP_SERVERNAME\""
    got=$(value apache "hsmkeys_tickets_resumed_total{$AD}")
    echo "# apache: probe resumed $AP_RESUMED (resumed by $children children), metrics say $got"
    # ListenCoresBucketsRatio 1: one SO_REUSEPORT bucket per core, so on 2+
    # cores the kernel spreads the connections over both children
    [ "$AP_RESUMED" = 39 ] && [ "$got" = 39 ] && { [ "$children" -ge 2 ] || [ "$(nproc)" -lt 2 ]; }
    tap_ok $? "Apache: hsmkeys_tickets_resumed_total = $got = the probe's resumed reconnects, summed over $children children"
else
    tap_skip "Apache metrics" "$AP_MISSING"
fi
tap_done
