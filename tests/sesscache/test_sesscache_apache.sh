#!/bin/bash
# test_sesscache_apache.sh - HSMKeysSessionCache: the sealed shared session
# cache on Redis with two Apache httpd (event MPM, 2 children x 8 threads)
# behind HAProxy round robin.  Same scenario as test_sesscache_nginx.sh
# (tests/sesscache/sc_lab.sh sc_fleet_suite), plus apache2 -t on bad
# settings.  Baseline: the same servers without the directive resume no
# session-ID reconnect across servers.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"
source "$HSMKEYS_ROOT/tests/sesscache/sc_lab.sh"

if ! ap_have_prereqs; then tap_skip "apache session cache suite" "$AP_MISSING"; tap_done; exit; fi
why=$(sc_missing)
if [ -n "$why" ]; then tap_skip "apache session cache suite" "$why"; tap_done; exit; fi

lab_init
SC_LIFETIME=8 SC_TIMEOUT_MS=20 SC_SNI=$AP_SERVERNAME AP_EPOCH=1h
lab_host S1 fleet && lab_host S2 fleet && ap_give_host_to_user S1 && ap_give_host_to_user S2 \
    && ap_tls_cert && redis_start R
tap_ok $? "two tokens with the same master (for $AP_USER), one certificate, Redis with a password"
SC="HSMKeysSessionCache redis://127.0.0.1:$R_PORT password-file=$R_PW timeout=${SC_TIMEOUT_MS}ms connect-timeout=${SC_TIMEOUT_MS}ms"

# ---- configuration errors: apache2 -t -------------------------------------
P9=$(lab_port)
badconf() { ap_write_conf "$1" 127.0.0.1 "$P9" event S1 "HSMKeysLifetime ${SC_LIFETIME}s" "$2"; ap_test "$1" S1; }
(umask 077; echo wrong-password > "$LAB/wrong.pw")
badconf B1 "HSMKeysSessionCache redis://127.0.0.1:$R_PORT password-file=$LAB/wrong.pw"
[ $? != 0 ] && grep -q 'line [0-9]* of .*httpd.conf' <<<"$AP_OUT" && grep -q 'AUTH refused' <<<"$AP_OUT"
tap_ok $? "apache2 -t fails on a wrong password, with the line: $(grep -o 'AUTH refused[^(]*' <<<"$AP_OUT" | head -1 | cut -c1-60)"
closed=$(lab_port)
badconf B2 "HSMKeysSessionCache redis://127.0.0.1:$closed password-file=$R_PW"
[ $? = 0 ] && grep -q 'unreachable now' <<<"$AP_OUT" && grep -q 'Syntax OK' <<<"$AP_OUT"
tap_ok $? "apache2 -t warns (and passes) when the store is unreachable"
badconf B3 "HSMKeysSessionCache redis:/127.0.0.1"
[ $? != 0 ] && grep -q 'expected redis://IP' <<<"$AP_OUT"
tap_ok $? "apache2 -t fails on a bad URL: $(grep -o 'invalid store address.*' <<<"$AP_OUT" | head -1 | cut -c1-70)"
cp "$R_PW" "$LAB/open.pw"; chmod 644 "$LAB/open.pw"
badconf B4 "HSMKeysSessionCache redis://127.0.0.1:$R_PORT password-file=$LAB/open.pw"
[ $? != 0 ] && grep -q 'readable by group or others' <<<"$AP_OUT"
tap_ok $? "apache2 -t refuses a password file readable by others"
badconf B5 "HSMKeysSessionCache unix:$R_SOCK password-file=$R_PW"
tap_ok $? "apache2 -t accepts a unix socket store"

# ---- the fleet ---------------------------------------------------------------
P1=$(lab_port) P2=$(lab_port) P0=$(lab_port) P5=$(lab_port)
ap_write_conf S1 127.0.0.1 "$P1" event S1 "HSMKeysLifetime ${SC_LIFETIME}s" "$SC"
ap_write_conf S2 127.0.0.1 "$P2" event S2 "HSMKeysLifetime ${SC_LIFETIME}s" "$SC"
ap_write_conf S5 127.0.0.1 "$P5" event S1 "HSMKeysLifetime ${SC_LIFETIME}s" "$SC" "HSMKeysDomain other.test"
ap_start S1 S1; ap_start S2 S2; ap_start S5 S1
ap_wait S1 127.0.0.1 "$P1" && ap_wait S2 127.0.0.1 "$P2" && ap_wait S5 127.0.0.1 "$P5" \
    && ap_lb 127.0.0.1 "$P0" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 behind HAProxy round robin, S5 (another domain, same store) beside them"
grep -q "session IDs resume through the sealed session cache" "$LAB/apache-S1/logs/error.log"
tap_ok $? "S1 logs that session IDs go through the sealed cache"
LBA=127.0.0.1:$P0

for v in 1.2 1.3; do
    ap_probe --tls$v -n 60 "$LBA"
    ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ] && [ "$AP_BACKENDS" = 2 ]
    tap_ok $? "TLS $v tickets still resume across the fleet ($AP_RESUMED of $AP_OFFERED)"
done

sc_alive() {
    local n
    for n in S1 S2; do
        kill -0 "$(lab_pid "apache-$n")" || return 1
        [ "$(pgrep -c -P "$(lab_pid "apache-$n")")" -ge 2 ] || return 1
    done
}
SC_LOGS=("$LAB/apache-S1/logs/error.log" "$LAB/apache-S2/logs/error.log")
sc_fleet_suite apache "$LBA" "127.0.0.1:$P5"

! grep -E 'AH00052|Segmentation|\[(emerg|alert|crit)\]' "${SC_LOGS[@]}"
tap_ok $? "no crashed child and no alert in the servers' error logs"

# ---- baseline ---------------------------------------------------------------
lab_stop lb
ap_write_conf S3 127.0.0.1 "$(lab_port)" event S1
Q1=$(lab_port) Q2=$(lab_port) Q0=$(lab_port)
ap_write_conf S3 127.0.0.1 "$Q1" event S1
ap_write_conf S4 127.0.0.1 "$Q2" event S2
ap_start S3 S1; ap_start S4 S2
ap_wait S3 127.0.0.1 "$Q1" && ap_wait S4 127.0.0.1 "$Q2" && ap_lb 127.0.0.1 "$Q0" "127.0.0.1:$Q1" "127.0.0.1:$Q2"
sc_chain "127.0.0.1:$Q0" "$LAB/base.sess" 10
[ "$SC_REUSED" = 0 ] && [ "$SC_FAILED" = 0 ]
tap_ok $? "baseline without HSMKeysSessionCache: $SC_REUSED of 10 session-ID reconnects resumed"
tap_done
