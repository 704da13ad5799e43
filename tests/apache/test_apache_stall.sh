#!/bin/bash
# test_apache_stall.sh - a token that stops answering does not slow Apache
# prefork children.
#
# Two Apache servers (prefork MPM: one thread per child serves its
# connections; epochs of 2 s) behind HAProxy round robin, their tokens
# behind the fault module.  Reference: 12 s of reconnects by two clients.
# Then the same 12 s while every C_Sign (every derivation) is held for 8 s,
# across four epoch boundaries (tests/lib/stall.sh).  Each child's key
# maintainer thread does its token work, so: no failed handshake, no
# handshake more than 100 ms slower than the reference's median, and at
# least 0.7x the reference's connections (a generous margin: the machine is
# shared).  When the handshake itself derived a missing epoch, a child
# froze with the token.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/stall.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache prefork token stall" "$AP_MISSING"
    tap_done; exit
fi
if [ ! -f "$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so" ]; then
    tap_skip "apache prefork token stall" "fault module not built (make tests)"
    tap_done; exit
fi
lab_init
AP_EPOCH=2s AP_LIFETIME=6s
lab_host S1 fleet && lab_host S2 fleet && ap_give_host_to_user S1 && ap_give_host_to_user S2 &&
    ap_tls_cert && stall_setup
tap_ok $? "two tokens with the same master, owned by $AP_USER, the fault module in front of each"

AP_ENV=$(stall_env)
P1=$(lab_port) P2=$(lab_port) PL=$(lab_port)
ap_write_conf S1 127.0.0.1 "$P1" prefork S1 "HSMKeysModule $LAB/faultmod.so"
ap_write_conf S2 127.0.0.1 "$P2" prefork S2 "HSMKeysModule $LAB/faultmod.so"
ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.1 "$P1" && ap_wait S2 127.0.0.1 "$P2" && ap_lb 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 (prefork, tokens behind the fault module) behind HAProxy round robin"
sleep 1
[ "$(stall_signs)" -gt 0 ]
tap_ok $? "the servers' token calls go through the fault module ($(stall_signs) C_Sign so far)"

PARGS=(--sni "$AP_SERVERNAME" --path /index.html -c 2 -i 20)
stall_compare "127.0.0.1:$PL" "${PARGS[@]}"
grep -h 'hsmkeys' "$LAB/apache-S1/logs/error.log" | tail -n 6 | sed 's/^/# S1: /'
! grep -E '\[[a-z_]*:(emerg|alert|crit)\]' "$LAB/apache-S1/logs/error.log" "$LAB/apache-S2/logs/error.log"
tap_ok $? "no alert in the servers' error logs"
tap_done
