#!/bin/bash
# test_stream.sh - two nginx stream{} TLS servers with ngx_stream_hsmkeys_module
# behind HAProxy round robin resume each other's tickets (TLS 1.2 and 1.3).
#
# Threat: the same as for http (see test_resumption.sh), for TLS over TCP
# services that nginx terminates in its stream module.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
[ -z "$why" ] && [ ! -f "$NGX_STREAM_CORE" ] && why="libnginx-mod-stream not installed (make deps)"
[ -z "$why" ] && [ ! -f "$NGX_STREAM_MOD" ] && why="module not built: $NGX_STREAM_MOD (make)"
if [ -n "$why" ]; then tap_skip "nginx stream suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=3s NGX_LIFETIME=9s
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init
tap_ok $? "two tokens with the same master"

P=$(lab_port)
ngx_stream_conf S1 127.0.0.11 "$P" "$S1_URI"
ngx_stream_conf S2 127.0.0.12 "$P" "$S2_URI"
# each server also serves its metrics from http{}: the http module's
# hsmkeys_metrics location renders the stream{} contexts too
M1=$(lab_port); M2=$(lab_port)
for sm in S1:$M1 S2:$M2; do
    sed -i -e "s|^load_module $NGX_STREAM_MOD;|load_module $NGX_STREAM_MOD;\nload_module $NGX_HTTP_MOD;|" \
        "$LAB/${sm%%:*}/nginx.conf"
    printf 'http {\n    access_log off;\n    server {\n        listen 127.0.0.1:%s;\n        location = /metrics { hsmkeys_metrics; }\n    }\n}\n' \
        "${sm##*:}" >> "$LAB/${sm%%:*}/nginx.conf"
done
ngx_test S1 S1
rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$LAB/S1/t.out"
tap_ok $rc "nginx -t accepts the hsmkeys directives in stream{}"

ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.10 "$P" "127.0.0.11:$P" "127.0.0.12:$P"
tap_ok $? "stream S1 and S2 (2 workers each) and HAProxy round robin are up"

resumed=0
for v in 1.2 1.3; do
    probe_rate -n 150 "--tls$v" "127.0.0.10:$P"
    fleet_ok
    tap_ok $? "stream TLS $v: >= 99% of reconnects resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"
    resumed=$((resumed + PROBE_RESUMED))
done

# Metrics of stream{} contexts, summed over each server's two workers
# (each publishes its row every second).
sleep 1.5
got=0 ok=0
for sm in S1:$M1 S2:$M2; do
    curl -sf "http://127.0.0.1:${sm##*:}/metrics" > "$LAB/${sm%%:*}.prom" || ok=1
    out=$(promtool check metrics < "$LAB/${sm%%:*}.prom" 2>&1)
    [ -z "$out" ] || { echo "$out" | sed 's/^/#   /'; ok=1; }
    v=$(awk -v k="hsmkeys_tickets_resumed_total{domain=\"$NGX_DOMAIN\"}" '$1 == k { print $2 }' "$LAB/${sm%%:*}.prom")
    echo "# ${sm%%:*}: hsmkeys_tickets_resumed_total ${v:-missing}"
    got=$((got + ${v:-0}))
done
[ $ok = 0 ] && [ "$got" = "$resumed" ]
tap_ok $? "hsmkeys_metrics in http{} shows the stream{} contexts: resumed $got on S1 + S2 = $resumed by the probes; promtool accepts both scrapes"

# A wrong URI in stream{} fails "nginx -t" like in http{}.
ngx_stream_conf B 127.0.0.11 "$P" "pkcs11:token=absent;object=hsmkeys-master?module-path=$LAB_SOFTHSM_MODULE&pin-source=$S1_PIN_FILE"
! ngx_test B S1 && grep -q '\[emerg\] .*"hsmkeys_uri" .*HSMKEYS_E_NO_TOKEN' "$LAB/B/t.out"
tap_ok $? "stream: nginx -t fails with HSMKEYS_E_NO_TOKEN naming hsmkeys_uri"
tap_done
