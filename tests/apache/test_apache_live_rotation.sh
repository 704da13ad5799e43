#!/bin/bash
# test_apache_live_rotation.sh - a master rotation and the old generation's
# retirement in a running Apache fleet (event MPM), with no restart and no
# graceful restart.
#
# Two Apache servers (event MPM, 2 children, epochs of 2 s, lifetime 6 s) on
# two tokens holding the same master, owned by the Apache User, behind
# HAProxy round robin.  While two clients reconnect, generation 2 is added
# on S1's token with an activation time about 6 s ahead and cloned to S2's
# token by the wrapping ceremony, as the User (tests/lib/rotation.sh).
# Across the activation >= 99% of the reconnects resume, none fails, and
# every ticket of an epoch from the activation on carries generation 2's
# tag (each child's key maintainer re-reads the token's generations).  Then
# generation 1 is destroyed on both tokens as soon as the tool allows it:
# still >= 99% resumed, none failed, no token error in the logs.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/rotation.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache live rotation" "$AP_MISSING"
    tap_done; exit
fi
lab_init
AP_EPOCH=2s AP_LIFETIME=6s
EPOCH=2 LIFETIME=6
# The SO step (trusting S2's transport key) runs before the tokens are
# handed to the User; every later token operation runs as the User.
lab_host S1 fleet && lab_host S2 fleet && rot_prepare S1 S2 &&
    ap_give_host_to_user S1 && ap_give_host_to_user S2 && ap_tls_cert
tap_ok $? "two tokens with the same master, owned by $AP_USER; S2's transport key trusted by S1"
ROT_AS="runuser -u $AP_USER --"

P1=$(lab_port) P2=$(lab_port) PL=$(lab_port)
ap_write_conf S1 127.0.0.1 "$P1" event S1
ap_write_conf S2 127.0.0.1 "$P2" event S2
ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.1 "$P1" && ap_wait S2 127.0.0.1 "$P2" && ap_lb 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 (event MPM) behind HAProxy round robin"

ROT_LOGS="$LAB/apache-S1/logs/error.log $LAB/apache-S2/logs/error.log"
ROT_ERR_RE='\[(hsmkeys|ssl):(emerg|alert|crit|error|warn)\]|\[[a-z_]*:(emerg|alert|crit)\]'
rot_live S1 S2 "$AP_SERVERNAME" $EPOCH $LIFETIME "127.0.0.1:$PL" --sni "$AP_SERVERNAME" --path /index.html -c 2 -i 20
echo "# apache event: rotation $ROT_ROTATION, retirement $ROT_RETIREMENT (resumed/reconnects failed)"
! grep -E '\[[a-z_]*:(emerg|alert|crit)\]' $ROT_LOGS
tap_ok $? "no alert in the servers' error logs"
tap_done
