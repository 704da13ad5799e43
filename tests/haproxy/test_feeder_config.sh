#!/bin/bash
# test_feeder_config.sh - hsmkeys-haproxy-feeder refuses what it must refuse
# with a clear message (bad URI, missing token, bad or unsafe PIN file, PIN
# on the command line, a FIFO path that is a regular file, an HAProxy that
# does not know the keys' reference), and its --once and daemon modes work
# against a real HAProxy.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/haproxy/hx_lib.sh"
lab_init

if ! why=$(hx_need); then
    tap_skip "HAProxy feeder configuration" "$why"
    tap_done; exit
fi
lab_host S1 && hx_cert || { tap_ok 1 "lab set-up"; tap_done; exit 1; }
MOD=$LAB_SOFTHSM_MODULE
PIN=$(cat "$S1_PIN_FILE")

# feed OUT ARGS...: run the feeder once (foreground) on S1's token; output in
# $LAB/OUT, exit status returned.
feed() {
    local out=$1; shift
    SOFTHSM2_CONF=$S1_CONF "$HX_FEEDER" --foreground --domain "$HX_DOMAIN" "$@" >"$LAB/$out" 2>&1
}
# expect OUT RC TEXT...: the run exited RC, its output has every TEXT and
# not the PIN.
expect() {
    local out=$1 want=$2 rc=$3 t
    shift 3
    [ "$rc" = "$want" ] || { echo "# exit $rc, want $want: $(head -3 "$LAB/$out")"; return 1; }
    for t in "$@"; do
        grep -qF -- "$t" "$LAB/$out" || { echo "# no \"$t\" in: $(head -3 "$LAB/$out")"; return 1; }
    done
    ! grep -qF -- "$PIN" "$LAB/$out"
}
SOCK=$LAB/none.sock

feed bad-uri --once --socket "$SOCK" --ticket-keys-id x --uri "token=S1;object=hsmkeys-master"
expect bad-uri 1 $? "--uri:" "not a PKCS#11 URI" "HSMKEYS_E_URI"
tap_ok $? "a malformed URI is refused, naming the option"

feed no-token --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=NOPE;object=hsmkeys-master?module-path=$MOD&pin-source=$S1_PIN_FILE"
expect no-token 1 $? "cannot open the master key" "no token matches" "HSMKEYS_E_NO_TOKEN"
tap_ok $? "a URI naming a missing token is refused with a clear message"

feed no-chain --once --socket "$SOCK" --ticket-keys-id x --forward-erasable \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-source=$S1_PIN_FILE"
expect no-chain 1 $? "holds no chain state" "hsmkeys-tool create --forward-erasable" "HSMKEYS_E_NO_MASTER"
tap_ok $? "--forward-erasable on a token without the chain is refused, naming the fix"

feed no-master --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=nope?module-path=$MOD&pin-source=$S1_PIN_FILE"
expect no-master 1 $? "cannot open the master key" "HSMKEYS_E_NO_MASTER"
tap_ok $? "a URI naming a missing master object is refused"

feed no-pin --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-source=$LAB/absent.pin"
expect no-pin 1 $? "cannot open the master key" "$LAB/absent.pin" "HSMKEYS_E_PIN"
tap_ok $? "a missing PIN file is refused, naming the file"

cp "$S1_PIN_FILE" "$LAB/open.pin"; chmod 644 "$LAB/open.pin"
feed open-pin --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-source=$LAB/open.pin"
expect open-pin 1 $? "accessible by group or others" "chmod 600" "HSMKEYS_E_PIN"
tap_ok $? "a PIN file readable by others is refused, with the fix"

(umask 077; echo "wrong-$RANDOM" > "$LAB/wrong.pin")
feed wrong-pin --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-source=$LAB/wrong.pin"
expect wrong-pin 1 $? "CKR_PIN_INCORRECT" "HSMKEYS_E_LOGIN"
! grep -qF "$(cat "$LAB/wrong.pin")" "$LAB/wrong-pin"
tap_ok $? "a wrong PIN is refused and not echoed"

feed pin-value --once --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-value=$PIN"
rc=$?
expect pin-value 2 $rc "pin-value" "pin-source=FILE"
tap_ok $? "a PIN on the command line (pin-value=) is refused (PIN not echoed)"

feed no-socket --uri "$S1_URI"
expect no-socket 2 $? "nothing to feed"
tap_ok $? "without --socket or --fifo the feeder says there is nothing to feed"

# Daemon mode: the parent waits for the daemon's verdict, so token errors
# still reach the caller's terminal and exit status.
SOFTHSM2_CONF=$S1_CONF "$HX_FEEDER" --domain "$HX_DOMAIN" --socket "$SOCK" --ticket-keys-id x \
    --uri "pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-source=$LAB/wrong.pin" \
    >"$LAB/daemon-bad" 2>&1
expect daemon-bad 1 $? "HSMKEYS_E_LOGIN"
tap_ok $? "as a daemon, a token error is still reported on stderr with exit status 1"

# A FIFO path that is a regular file is never written to.
: > "$LAB/regular.keys"; chmod 600 "$LAB/regular.keys"
feed regular --uri "$S1_URI" --fifo "$LAB/regular.keys"
expect regular 1 $? "is not a FIFO" && [ ! -s "$LAB/regular.keys" ]
tap_ok $? "a --fifo path that is a regular file is refused and stays empty"

mkfifo -m 644 "$LAB/open.fifo"
feed open-fifo --uri "$S1_URI" --fifo "$LAB/open.fifo"
expect open-fifo 1 $? "mode 0644" "chmod 600"
tap_ok $? "a FIFO readable by others is refused"

# A real HAProxy with throwaway keys: --once replaces all three.
P=$(lab_port)
for _ in 1 2 3; do openssl rand 80 | base64 -w0; echo; done > "$LAB/throwaway.keys"
chmod 600 "$LAB/throwaway.keys"
hx_terminator H 127.0.0.11 "$P" "$LAB/throwaway.keys"
hx_start H
hx_wait_cli H
tap_ok $? "HAProxy starts with throwaway keys"
SOCK=$LAB/hx-H/admin.sock
before=$(hx_names H "#0")

feed once-bad-id --once --uri "$S1_URI" --socket "$SOCK" --ticket-keys-id /no/such/keys
expect once-bad-id 1 $? "HAProxy refused the key" "unable to locate" "--ticket-keys-id"
tap_ok $? "--once with a --ticket-keys-id HAProxy does not know fails with HAProxy's reason"

feed once --once --uri "$S1_URI" --socket "$SOCK" --ticket-keys-id "$LAB/throwaway.keys"
expect once 0 $? "loaded epochs"
after=$(hx_names H "#0")
feed once2 --once --uri "$S1_URI" --socket "$SOCK" --ticket-keys-id "#0"
again=$(hx_names H "#0")
read -r a1 a2 a3 <<<"$after"; read -r b1 b2 b3 <<<"$before"
[ "$a1" != "$b1" ] && [ "$a2" != "$b2" ] && [ "$a3" != "$b3" ] && [ "$after" = "$again" ] &&
    [ "${a2:0:2}" = 01 ]
tap_ok $? "--once replaces all three throwaway keys; pushing again leaves the same ring [$after]"

feed once-down --once --uri "$S1_URI" --socket "$LAB/absent.sock" --ticket-keys-id "#0"
expect once-down 1 $? "unreachable"
tap_ok $? "--once against an absent socket fails with a clear message"

# The shipped systemd unit passes HSMKEYS_URI from its defaults file; the
# URI shown there, as it is, with only the token and PIN file moved to the
# lab's: the feeder must find its module.
UNIT=$HSMKEYS_ROOT/engine/haproxy/hsmkeys-haproxy-feeder.service
DEFAULTS=$HSMKEYS_ROOT/engine/haproxy/hsmkeys-haproxy-feeder.default
unit_uri=$(sed -n 's/^#\{0,1\}HSMKEYS_URI=//p' "$DEFAULTS" | head -1)
lab_uri=${unit_uri//\/etc\/hsmkeys\/pin/$S1_PIN_FILE}
lab_uri=${lab_uri/token=web;/token=S1;}
feed unit-uri --once --uri "$lab_uri" --socket "$SOCK" --ticket-keys-id "#0"
expect unit-uri 0 $? "loaded epochs" && grep -q -- '--uri ${HSMKEYS_URI}' "$UNIT" &&
    grep -q '^EnvironmentFile=-/etc/default/hsmkeys-haproxy-feeder$' "$UNIT"
tap_ok $? "the shipped unit's URI (HSMKEYS_URI in its defaults file) names a module and works ($unit_uri)"

chmod 666 "$SOCK"
feed once-open --once --uri "$S1_URI" --socket "$SOCK" --ticket-keys-id "#0"
expect once-open 0 $? "mode 0666" "show tls-keys"
tap_ok $? "an admin socket open to others is reported (show tls-keys reveals keys)"
chmod 600 "$SOCK"

# Daemon with a pidfile: detaches, feeds, SIGTERM removes the pidfile.
SOFTHSM2_CONF=$S1_CONF "$HX_FEEDER" --uri "$S1_URI" --domain "$HX_DOMAIN" --socket "$SOCK" \
    --ticket-keys-id "#0" --pidfile "$LAB/feeder.pid" --interval 0.5 >"$LAB/daemon" 2>&1
rc=$?
dpid=$(cat "$LAB/feeder.pid" 2>/dev/null)
[ -n "$dpid" ] && lab_record_pid feeder-daemon "$dpid"
[ "$rc" = 0 ] && [ -n "$dpid" ] && kill -0 "$dpid" && [ "$dpid" != "$$" ]
tap_ok $? "as a daemon the feeder detaches (exit 0) and writes its pidfile"
kill -TERM "$dpid" 2>/dev/null
for _ in $(seq 1 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$dpid" 2>/dev/null && [ ! -e "$LAB/feeder.pid" ]
tap_ok $? "the daemon stops on SIGTERM and removes its pidfile"
tap_done
