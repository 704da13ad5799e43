#!/bin/bash
# test_apache_outage.sh - two Apache servers whose tokens fail while clients
# reconnect (fault-injecting PKCS#11 module around SoftHSM2, every call
# failing with CKR_DEVICE_REMOVED).  The servers keep serving; every ticket
# they issue is still an hsmkeys ticket (never one under a random local key);
# once no cached key is usable they issue none; after the token is back they
# resume each other's tickets again.  (The waits follow the 2 s epochs; the
# assertions are on tickets and handshakes, not on times.)
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

FAULTMOD=$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so
if ! ap_have_prereqs; then
    tap_skip "apache with a failing token" "$AP_MISSING"
    tap_done; exit
fi
if [ ! -f "$FAULTMOD" ]; then
    tap_skip "apache with a failing token" "$FAULTMOD not built (make)"
    tap_done; exit
fi
lab_init
lab_host S1 fleet && lab_host S2 fleet
tap_ok $? "two throwaway tokens with the same master"
ap_give_host_to_user S1; ap_give_host_to_user S2
ap_tls_cert
cp "$FAULTMOD" "$LAB/faultmod.so"
: > "$LAB/fault.rules"; chmod 0644 "$LAB/fault.rules"

LB_PORT=$(lab_port); S_PORT=$(lab_port)
AP_ENV="HSMKEYS_FAULT_REAL_MODULE=/usr/lib/softhsm/libsofthsm2.so HSMKEYS_FAULT_CONTROL=$LAB/fault.rules"
ap_write_conf S1 127.0.0.11 "$S_PORT" event S1 "HSMKeysModule $LAB/faultmod.so"
ap_write_conf S2 127.0.0.12 "$S_PORT" event S2 "HSMKeysModule $LAB/faultmod.so"
ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.11 "$S_PORT" && ap_wait S2 127.0.0.12 "$S_PORT"
tap_ok $? "S1 and S2 serve TLS, their tokens behind the fault module"
ap_lb 127.0.0.10 "$LB_PORT" "127.0.0.11:$S_PORT" "127.0.0.12:$S_PORT"

ap_probe --tls1.2 -n 30 "127.0.0.10:$LB_PORT"
ap_rate_at_least 99
tap_ok $? "token healthy: $AP_RESUMED of $AP_OFFERED reconnects resumed"

# Outage: every PKCS#11 call fails, in every process.  Each child has
# cached at most the epoch it was in and the next one (look-ahead).
tickets() { # JSON -> "issued not-hsmkeys full-without-ticket"
    python3 - "$1" <<'PY'
import json, sys
conns = json.load(open(sys.argv[1]))["connections"]
issued = foreign = bare = 0
for c in conns:
    name = c.get("new_name", c.get("ticket_name")) or ""
    epoch = c.get("new_epoch", c.get("ticket_epoch"))
    if name:
        issued += 1
        if epoch is None:
            foreign += 1          # not an hsmkeys v1 key name
    elif c.get("ok") and not c.get("resumed"):
        bare += 1                 # full handshake and no ticket
print(issued, foreign, bare)
PY
}
echo "* fail CKR_DEVICE_REMOVED" > "$LAB/fault.rules"
t0=$(date +%s)
ap_probe --tls1.2 -d 3 -i 20 "127.0.0.10:$LB_PORT"
read -r issued foreign bare < <(tickets "$LAB/probe-$AP_RUN.json")
echo "# outage, first 3 s: $issued tickets issued, $foreign not hsmkeys, $bare full handshakes without ticket"
[ "$AP_FAILED" = 0 ] && [ "$AP_TOTAL" -gt 0 ] && [ "$foreign" = 0 ]
tap_ok $? "token failing: the servers keep serving ($AP_TOTAL connections, none failed), hsmkeys tickets only"

# Two epochs (4 s) after the outage began no child has the current epoch's
# key: a new client gets full handshakes and no ticket at all.
while [ $(($(date +%s) - t0)) -lt 5 ]; do sleep 0.2; done
ap_probe --tls1.2 -n 10 "127.0.0.10:$LB_PORT"
read -r issued foreign bare < <(tickets "$LAB/probe-$AP_RUN.json")
echo "# outage, after 5 s: $issued tickets issued, $bare full handshakes without ticket"
[ "$AP_FAILED" = 0 ] && [ "$AP_TOTAL" = 10 ] && [ "$issued" = 0 ] && [ "$bare" = 10 ]
tap_ok $? "token failing, no usable key: 10 connections served, no ticket issued (never a random local key)"
: > "$LAB/fault.rules"

grep -qE "\[hsmkeys:error\] .*hsmkeys: .*CKR_DEVICE_REMOVED" "$LAB"/apache-S1/logs/error.log
tap_ok $? "the token failure is logged through ap_log_error at level error"

# Recovery: backoff is at most 8 s after a 6 s outage; reconnect for 20 s and
# require the last 20 reconnects to resume across the servers.
ap_probe --tls1.2 -d 20 -i 20 "127.0.0.10:$LB_PORT"
read -r tail_ok tail_n < <(python3 - "$LAB/probe-$AP_RUN.json" <<'PY'
import json, sys
conns = [c for c in json.load(open(sys.argv[1]))["connections"] if c.get("offered")]
last = conns[-20:]
print(sum(1 for c in last if c.get("resumed")), len(last))
PY
)
[ "$tail_n" = 20 ] && [ "$tail_ok" = 20 ]
tap_ok $? "token back: the last $tail_n reconnects all resumed ($tail_ok)"
tap_done
