#!/bin/bash
# test_probe.sh - hsmkeys-probe on its own: usage errors, unreachable
# targets, its CSV and JSON, and its reading of ticket key names against
# libhsmkeys' own (the key name and epoch an hsmkeys server logs at start).
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
PROBE=$HSMKEYS_BUILD/hsmkeys-probe
DS=$HSMKEYS_BUILD/hsmkeys-demo-server
if [ ! -x "$PROBE" ] || [ ! -x "$DS" ]; then
    tap_skip "probe tests" "hsmkeys-probe or hsmkeys-demo-server not built (make)"
    tap_done; exit
fi
lab_init

out=$("$PROBE" --help 2>&1); rc=$?
[ $rc = 0 ] && [[ $out == *"usage: hsmkeys-probe"* ]]; tap_ok $? "--help prints usage, exit 0"
for bad in "" "127.0.0.1" "127.0.0.1:0" "-n 0 127.0.0.1:1" "-n 3 -d 1 127.0.0.1:1" \
           "--min-rate 101 127.0.0.1:1" "--path x 127.0.0.1:1" "--bogus 127.0.0.1:1"; do
    # shellcheck disable=SC2086
    "$PROBE" $bad >"$LAB/bad.out" 2>&1; rc=$?
    [ $rc = 2 ] && grep -q "hsmkeys-probe" "$LAB/bad.out"
    tap_ok $? "usage error exits 2 with a message: '$bad' (got $rc)"
done

port=$(lab_port)
"$PROBE" -n 2 -q "127.0.0.1:$port" >"$LAB/down.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "cannot connect to 127.0.0.1:$port" "$LAB/down.out" && grep -q "2 connections failed" "$LAB/down.out"
tap_ok $? "nothing listening: exit 1, says it cannot connect and how many failed (got $rc)"

# One baseline server, no LB: every reconnect resumes; outputs are complete.
lab_spawn base "$DS" --name X1 --listen "127.0.0.1:$port" --log "$LAB/base.conns" --baseline
lab_wait_port "$port"
"$PROBE" -n 6 --tls1.3 --csv "$LAB/b.csv" --json "$LAB/b.json" --min-rate 100 "127.0.0.1:$port" >"$LAB/b.out" 2>&1
tap_ok $? "one server: 5 of 5 reconnects resumed, exit 0 with --min-rate 100"
[ "$(tail -n +2 "$LAB/b.csv" | wc -l)" = 6 ] && [ "$(awk -F, 'NR > 1 && $4 == "X1" && $9 == "TLSv1.3"' "$LAB/b.csv" | wc -l)" = 6 ]
tap_ok $? "CSV: 6 rows, backend X1 named by the server, TLS 1.3"
python3 - "$LAB/b.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
a = d["all"]
assert a["connections"] == 6 and a["resumed"] == 5 and a["reconnects"] == 5 and a["rate"] == 100, a
assert d["backends"][0]["name"] == "X1" and len(d["connections"]) == 6, d["backends"]
assert all(c["ticket_name"] for c in d["connections"]), "a connection without a new ticket"
PY
tap_ok $? "JSON parses; all/backends/connections agree with the run"
"$PROBE" -n 6 --tls1.3 --csv - -q "127.0.0.1:$port" 2>"$LAB/stderr.out" | head -1 | grep -q '^client,seq,id,backend'
tap_ok $? "--csv - writes the CSV to standard output"
lab_stop base

# hsmkeys server: the probe reads the key name and epoch libhsmkeys logs.
lab_host H
port=$(lab_port)
SOFTHSM2_CONF=$H_CONF lab_spawn hk "$DS" --name H --listen "127.0.0.1:$port" --log "$LAB/hk.conns" \
    -o "uri=$H_URI" -o domain=probe.test -o epoch=1d -o lifetime=2d
lab_wait_port "$port"
"$PROBE" -n 3 --csv "$LAB/h.csv" -q "127.0.0.1:$port" >/dev/null 2>&1
tap_ok $? "hsmkeys server: probe runs"
want_name=$(sed -n 's/.*current key name \([0-9a-f]\{32\}\).*/\1/p' "$LAB/hk.log" | head -1)
want_epoch=$(sed -n 's/.*current epoch \([0-9]*\).*/\1/p' "$LAB/hk.log" | head -1)
got_name=$(awk -F, 'NR == 2 { print $13 }' "$LAB/h.csv")
got_epoch=$(awk -F, 'NR == 2 { print $14 }' "$LAB/h.csv")
[ -n "$want_name" ] && [ "$got_name" = "$want_name" ]
tap_ok $? "ticket key name as the probe saw it = the library's current name ($got_name)"
[ -n "$want_epoch" ] && [ "$got_epoch" = "$want_epoch" ]
tap_ok $? "epoch decoded by the probe = hsmkeys_current_epoch() ($got_epoch)"
lab_stop hk
tap_done
