#!/bin/bash
# test_feeder_live_rotation.sh - a master rotation and the old generation's
# retirement under two running hsmkeys-haproxy-feeders, with no restart of
# the feeders or of HAProxy, TLS 1.2.
#
# Two HAProxy TLS terminators, each fed by its own feeder on its own token
# (same master; epochs of 2 s, lifetime 6 s), behind a third HAProxy in tcp
# round robin.  While two clients reconnect, generation 2 is added on S1's
# token with an activation time about 6 s ahead and cloned to S2's token
# (tests/lib/rotation.sh).  Across the activation >= 99% of the reconnects
# resume, none fails, and every ticket of an epoch from the activation on
# carries generation 2's tag: the feeders' key maintainers re-read the
# token's generations and hsmkeys_epoch_key hands out each epoch's key
# under the generation active in it.  Then generation 1 is destroyed on
# both tokens as soon as the tool allows it: still >= 99% resumed, none
# failed, no error or warning in the feeders' logs.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/rotation.sh"
source "$HSMKEYS_ROOT/tests/haproxy/hx_lib.sh"
lab_init

EPOCH=2 LIFETIME=6
if ! why=$(hx_need); then
    tap_skip "HAProxy feeder live rotation" "$why"
    tap_done; exit
fi
lab_host S1 && lab_host S2 && hx_cert && rot_prepare S1 S2
tap_ok $? "two tokens with the same master; S2's transport key trusted by S1"

P1=$(lab_port) P2=$(lab_port) PL=$(lab_port)
hx_terminator S1 127.0.0.1 "$P1" "$LAB/hx-S1/keys.fifo"
hx_terminator S2 127.0.0.1 "$P2" "$LAB/hx-S2/keys.fifo"
hx_balancer LB 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
for n in 1 2; do
    conf=S${n}_CONF uri=S${n}_URI
    lab_spawn "F$n" env SOFTHSM2_CONF="${!conf}" "$HX_FEEDER" --foreground \
        --uri "${!uri}" --domain "$HX_DOMAIN" --epoch $EPOCH --lifetime $LIFETIME \
        --fifo "$LAB/hx-S$n/keys.fifo" --socket "$LAB/hx-S$n/admin.sock" \
        --interval 0.5 --max-backoff 1
done
for _ in $(seq 1 100); do [ -p "$LAB/hx-S1/keys.fifo" ] && [ -p "$LAB/hx-S2/keys.fifo" ] && break; sleep 0.1; done
hx_start S1; hx_start S2; hx_start LB
hx_wait_cli S1 && hx_wait_cli S2 && lab_wait_port "$PL" 127.0.0.1
tap_ok $? "two feeders, two terminators fed from their FIFOs, balancer up"

ROT_LOGS="$LAB/F1.log $LAB/F2.log"
ROT_ERR_RE=': (error|warning): '
# Three clients: with two in step, round robin can send each of them to the
# same terminator every time, and cross-terminator resumption would go
# unseen.
rot_live S1 S2 "$HX_DOMAIN" $EPOCH $LIFETIME "127.0.0.1:$PL" --tls1.2 -c 3 -i 30
echo "# haproxy feeder: rotation $ROT_ROTATION, retirement $ROT_RETIREMENT (resumed/reconnects failed)"
grep -q "pushed epoch" "$LAB/F1.log" && grep -q "pushed epoch" "$LAB/F2.log"
tap_ok $? "both feeders kept pushing each epoch's key at the boundaries"
tap_done
