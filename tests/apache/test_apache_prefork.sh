#!/bin/bash
# test_apache_prefork.sh - mod_hsmkeys under the prefork MPM: each server
# forks several single-threaded children after loading the configuration;
# every child logs in to the token again by itself (libhsmkeys notices the
# fork) and derives the same epoch keys.  Two prefork servers behind HAProxy
# resume >= 99% of each other's TLS 1.2 and 1.3 tickets across epoch
# boundaries, with resumed handshakes served by several children.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache prefork resumption" "$AP_MISSING"
    tap_done; exit
fi
lab_init
lab_host S1 fleet && lab_host S2 fleet
tap_ok $? "two throwaway tokens with the same master"
ap_give_host_to_user S1; ap_give_host_to_user S2
ap_tls_cert

LB_PORT=$(lab_port); S_PORT=$(lab_port)
ap_write_conf S1 127.0.0.11 "$S_PORT" prefork S1
ap_write_conf S2 127.0.0.12 "$S_PORT" prefork S2
ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.11 "$S_PORT" && ap_wait S2 127.0.0.12 "$S_PORT"
tap_ok $? "S1 and S2 (prefork MPM) serve TLS"
grep -q "mpm_prefork:notice" "$LAB/apache-S1/logs/error.log"
tap_ok $? "S1 runs the prefork MPM"
ap_lb 127.0.0.10 "$LB_PORT" "127.0.0.11:$S_PORT" "127.0.0.12:$S_PORT"
tap_ok $? "HAProxy round robin on 127.0.0.10"

for v in 1.2 1.3; do
    # Two concurrent clients keep several children busy.
    ap_probe --tls$v -c 2 -d 5 -i 10 "127.0.0.10:$LB_PORT"
    ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ] && [ "$AP_BACKENDS" = 2 ]
    tap_ok $? "prefork TLS $v: $AP_RESUMED of $AP_OFFERED reconnects resumed across S1/S2 (>= 99%)"
    [ "$AP_EPOCHS" -ge 2 ]
    tap_ok $? "prefork TLS $v: run spans an epoch boundary ($AP_EPOCHS ticket epochs)"
done

# Children (PIDs) that completed resumed handshakes, per server.
for s in S1 S2; do
    n=$(awk '$3 == "Resumed" { print $1 }' "$LAB/apache-$s/logs/access.log" | sort -u | wc -l)
    [ "$n" -ge 2 ]
    tap_ok $? "$s: $n prefork children completed resumed handshakes"
done
tap_done
