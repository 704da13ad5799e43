#!/bin/bash
# test_apache_resume.sh - two Apache httpd (event MPM) with mod_hsmkeys behind
# HAProxy round robin resume each other's TLS 1.2 and TLS 1.3 tickets: at
# least 99% of reconnects, across epoch boundaries (2 s epochs) and across a
# graceful restart; with masters from different seeds they do not.
#
#   LB 127.0.0.10 --roundrobin--> S1 127.0.0.11 (token S1)
#                              \-> S2 127.0.0.12 (token S2, same master)
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache resumption across servers" "$AP_MISSING"
    tap_done; exit
fi
lab_init
lab_host S1 fleet && lab_host S2 fleet && lab_host B2 other
tap_ok $? "three throwaway tokens (S1, S2 seed fleet; B2 seed other)"
ap_give_host_to_user S1; ap_give_host_to_user S2; ap_give_host_to_user B2
ap_tls_cert
tap_ok $? "throwaway certificate for $AP_SERVERNAME"

LB_PORT=$(lab_port); S_PORT=$(lab_port)
ap_write_conf S1 127.0.0.11 "$S_PORT" event S1
ap_write_conf S2 127.0.0.12 "$S_PORT" event S2

ap_test S1 S1
rc=$?; echo "$AP_OUT" | sed 's/^/# /'
[ $rc = 0 ] && grep -q "Syntax OK" <<<"$AP_OUT"
tap_ok $? "apache2 -t accepts the configuration and opens the token"

ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.11 "$S_PORT" && ap_wait S2 127.0.0.12 "$S_PORT"
tap_ok $? "S1 and S2 (event MPM) serve TLS"
grep -q "mod_hsmkeys: server $AP_SERVERNAME:443: session tickets under the token's epoch keys" \
    "$LAB/apache-S1/logs/error.log"
tap_ok $? "S1 logs that its tickets use the token's epoch keys"
ap_lb 127.0.0.10 "$LB_PORT" "127.0.0.11:$S_PORT" "127.0.0.12:$S_PORT"
tap_ok $? "HAProxy round robin on 127.0.0.10"

for v in 1.2 1.3; do
    # 5 s of reconnects with 2 s epochs: tickets of at least two epochs.
    ap_probe --tls$v -d 5 -i 10 "127.0.0.10:$LB_PORT"
    ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ]
    tap_ok $? "TLS $v: $AP_RESUMED of $AP_OFFERED reconnects resumed across S1/S2 (>= 99%)"
    [ "$AP_BACKENDS" = 2 ]
    tap_ok $? "TLS $v: both servers answered ($AP_BACKENDS)"
    hints=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join(sorted({str(c["lifetime_hint"]) for c in j["connections"] if c.get("lifetime_hint")})))' \
        "$LAB/probe-$AP_RUN.json")
    [ "$hints" = 60 ]
    tap_ok $? "TLS $v: ticket lifetime hint is HSMKeysLifetime (60 s): '$hints'"
    # Every reconnect offers the newest ticket, so with tickets of >= 2
    # epochs and no full handshake, some ticket was resumed in a later epoch
    # than it was issued in (in TLS 1.2 a resumed session only gets a new
    # ticket when the callback asks for renewal: result 2).
    [ "$AP_EPOCHS" -ge 2 ]
    tap_ok $? "TLS $v: run spans an epoch boundary ($AP_EPOCHS ticket epochs, $AP_RENEWED renewed tickets)"
done

# Graceful restart of both servers while clients reconnect.
ap_probe_bg() {
    "$AP_PROBE" --sni "$AP_SERVERNAME" --path /index.html --json "$LAB/probe-graceful.json" -q "$@" \
        >"$LAB/probe-graceful.out" 2>&1 &
    AP_BG=$!
}
for v in 1.2 1.3; do
    ap_probe_bg --tls$v -d 6 -i 10 "127.0.0.10:$LB_PORT"
    sleep 2
    kill -USR1 "$(lab_pid apache-S1)" "$(lab_pid apache-S2)"
    wait "$AP_BG"
    AP_RUN=$((AP_RUN + 1)); cp "$LAB/probe-graceful.json" "$LAB/probe-$AP_RUN.json"
    read -r AP_OFFERED AP_RESUMED AP_FAILED < <(python3 -c '
import json, sys; a = json.load(open(sys.argv[1]))["all"]
print(a.get("reconnects", a.get("offered", 0)), a["resumed"], a["failed"])' \
        "$LAB/probe-graceful.json" 2>/dev/null || echo "0 0 1")
    echo "# graceful TLS $v: $AP_RESUMED of $AP_OFFERED resumed, $AP_FAILED failed"
    ap_rate_at_least 99
    tap_ok $? "TLS $v: $AP_RESUMED of $AP_OFFERED reconnects resumed across a graceful restart of S1 and S2"
done
n=$(grep -c "resuming normal operations" "$LAB/apache-S1/logs/error.log")
[ "$n" -ge 3 ]
tap_ok $? "S1 restarted gracefully twice ($n configuration loads)"

# Baseline: S2 with a master of another seed.
lab_stop apache-S2
[ -n "${AP_DEBUG:-}" ] && LAB_KEEP=1
ap_write_conf S2 127.0.0.12 "$S_PORT" event B2
ap_start S2 B2
ap_wait S2 127.0.0.12 "$S_PORT"
tap_ok $? "S2 restarted with token B2 (another master)"
for v in 1.2 1.3; do
    ap_probe --tls$v -n 40 "127.0.0.10:$LB_PORT"
    [ "$AP_OFFERED" -gt 0 ] && [ $((AP_RESUMED * 2)) -lt "$AP_OFFERED" ]
    tap_ok $? "TLS $v baseline, different masters: only $AP_RESUMED of $AP_OFFERED resumed (< 50%)"
done

leak=0
for h in S1 S2 B2; do
    grep -qF -f "$LAB/$h/pin" "$LAB"/apache-*/logs/error.log "$LAB"/apache-*.log && leak=1
done
tap_ok $leak "no PIN in the servers' logs"
tap_done
