#!/bin/bash
# test_forward_erasable_shared.sh - the forward-erasable chain on ONE token
# shared through `p11-kit server` (provisioning/p11kit-share-token.sh) by two
# nginx servers of four workers each: eight maintainers advance and erase the
# same chain at every epoch boundary (2 s epochs, lifetime 4 s), and a ninth
# process is SIGKILLed in the middle of a step (the fault module holds its
# C_CreateObject).  Afterwards the token holds exactly one state per live
# epoch and none older, and the fleet resumes.
#
# Threat: concurrent creators leaving duplicates, racing settlers or a killed
# creator leaving an epoch with no state (its keys lost for the fleet), and
# racing erasers failing each other.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
CHAIN=$HSMKEYS_BUILD/tests/t-chain
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
FAULTMOD=$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so

why=$(ngx_missing)
[ -z "$why" ] && { command -v p11-kit >/dev/null && [ -r "$CLIENT" ]; } || why=${why:-"p11-kit or p11-kit-client.so missing (apt-get install p11-kit)"}
[ -z "$why" ] && { [ -x "$CHAIN" ] && [ -f "$FAULTMOD" ]; } || why=${why:-"t-chain or the fault module not built (make tests)"}
if [ -n "$why" ]; then tap_skip "forward-erasable on a shared token" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=4s
epoch_now() { echo $(( $(date +%s) / 2 )); }
mid_epoch() { python3 -c 'import time; t = time.time(); time.sleep((2 - t % 2) + 1.0 if t % 2 > 1.0 else 1.0 - t % 2)'; }
# one_each FILE LO HI: exactly the states (1, LO..HI), one each
# Returns 0: exactly one each; 2: every live epoch held and none outside,
# but some epoch in two copies (processes that made it at the same instant
# and have not settled yet: they settle at their next advance, all keeping
# the copy of the smallest creator nonce); 1: a live epoch missing or a
# state outside the window + 1.
one_each() {
    local x
    awk -v lo="$2" -v hi="$3" '$2 < lo || $2 > hi { bad = 1 } END { exit bad }' "$1" || return 1
    for x in $(seq "$2" "$3"); do grep -qx "1 $x" "$1" || return 1; done
    [ -z "$(sort "$1" | uniq -d)" ] || return 2
}

lab_host S fleet && ngx_lab_init &&
    SOFTHSM2_CONF=$S_CONF "$CHAIN" import S "$S_PIN_FILE" fleet 1 "$(epoch_now)"
tap_ok $? "one token with the master and the chain's state"
SOCK=$LAB/srv/pkcs11.sock
mkdir -m 700 "$LAB/srv"
lab_spawn p11srv env SOFTHSM2_CONF="$S_CONF" HSMKEYS_TOOL="$HSMKEYS_BUILD/hsmkeys-tool" \
    bash "$HSMKEYS_ROOT/provisioning/p11kit-share-token.sh" --token S --socket "$SOCK"
export P11_KIT_SERVER_ADDRESS=unix:path=$SOCK
ok=1
for _ in $(seq 1 100); do
    T_MODULE=$CLIENT "$CHAIN" list S "$S_PIN_FILE" >/dev/null 2>&1 && { ok=0; break; }
    sleep 0.1
done
tap_ok $ok "the token is shared through p11-kit server"
list() { T_MODULE=$CLIENT "$CHAIN" list S "$S_PIN_FILE"; }

CURI="pkcs11:token=S;object=hsmkeys-master?module-path=$CLIENT&pin-source=$S_PIN_FILE"
P1=$(lab_port); P2=$(lab_port); PL=$(lab_port)
for n in N1:$P1 N2:$P2; do
    name=${n%%:*}; port=${n##*:}
    ngx_conf "$name" 127.0.0.1 "$port" "$CURI" 'hsmkeys_forward_erasable on;'
    sed -i -e 's/^worker_processes 2;/worker_processes 4;/' \
        -e 's/^env SOFTHSM2_CONF;/env SOFTHSM2_CONF;\nenv P11_KIT_SERVER_ADDRESS;/' "$LAB/$name/nginx.conf"
done
lab_spawn N1 nginx -p "$LAB/N1" -c "$LAB/N1/nginx.conf" && lab_wait_children N1 4 &&
    lab_spawn N2 nginx -p "$LAB/N2" -c "$LAB/N2/nginx.conf" && lab_wait_children N2 4 &&
    lb_start LB 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "two nginx servers of four workers each on the shared token, behind HAProxy"

for v in 1.2 1.3; do
    probe_rate --duration 3 --interval 20 "--tls$v" "127.0.0.1:$PL"
    fleet_ok && [ "$PROBE_EPOCHS" -ge 2 ]
    tap_ok $? "TLS $v across epoch boundaries: >= 99% resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"
done

# settled: copies made at the same moment by two of the eight are settled at
# their next advance; looked at mid-epoch, at most three epochs in a row
settled() { # FILE -> 0 once every live epoch is held once and nothing older (see one_each)
    local try r=1
    for try in 1 2 3; do
        mid_epoch
        e=$(epoch_now); list > "$1"
        echo "# epoch $e (look $try): $(tr '\n' ' ' < "$1")"
        one_each "$1" $((e - 3)) $((e + 1)); r=$?
        [ $r = 0 ] && return 0
    done
    [ $r = 2 ] && echo "# every live epoch held, none older, but duplicate copies did not settle in three epochs"
    return 1
}
settled "$LAB/states.1"
tap_ok $? "eight maintainers on one token: exactly one state per live epoch, none older than the window + 1"

# A ninth process steps the chain one epoch further than the servers have
# (its clock runs one epoch ahead) and is killed while its C_CreateObject is
# held by the fault module.
: > "$LAB/ctl"
echo "C_CreateObject stall 60000" > "$LAB/ctl"
mid_epoch
e=$(epoch_now)
HSMKEYS_FAULT_REAL_MODULE=$CLIENT HSMKEYS_FAULT_CONTROL=$LAB/ctl HSMKEYS_FAULT_COUNTS=$LAB/counts.%p \
    lab_spawn killed "$TICKET" issue --domain "$NGX_DOMAIN" --epoch 2s --lifetime 4s \
    --at $(( (e + 1) * 2 )) --forward-erasable \
    --uri "pkcs11:token=S;object=hsmkeys-master?module-path=$FAULTMOD&pin-source=$S_PIN_FILE"
# The counts file is rewritten after each completed call: the step's HMAC
# (the second C_Sign, after the name tag's) done, no C_CreateObject finished.
kpid=$(lab_pid killed); held=1
for _ in $(seq 1 50); do
    c=$(awk '$1 == "C_Sign" { print $2 }' "$LAB"/counts.* 2>/dev/null | head -1)
    [ "${c:-0}" -ge 2 ] && { held=0; break; }
    sleep 0.1
done
sleep 0.3
[ $held = 0 ] && kill -0 "$kpid" 2>/dev/null && ! grep -q '^C_CreateObject' "$LAB"/counts.*; held=$?
kill -KILL "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null; rm -f "$LAB/pids/killed"
tap_ok $held "a process stepping the chain to epoch $((e + 2)) was SIGKILLed inside C_CreateObject (state computed, not stored)"

# Two boundaries later the servers have made and erased what they must.
while [ "$(epoch_now)" -lt $((e + 2)) ]; do sleep 0.2; done
settled "$LAB/states.2"
tap_ok $? "after the kill: exactly one state per live epoch, none older than the window + 1"
probe_rate --duration 3 --interval 20 --tls1.2 "127.0.0.1:$PL"
fleet_ok
tap_ok $? "after the kill the fleet resumes: >= 99% on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"

! grep -E '\[(emerg|alert|crit)\]|\[error\].*hsmkeys' "$LAB/N1/error.log" "$LAB/N2/error.log"
tap_ok $? "no alert and no hsmkeys error in the servers' error logs"
tap_done
