#!/bin/bash
# test_probe.sh - hsmkeys-probe on its own: usage errors, unreachable
# targets, its CSV and JSON, its reading of ticket key names against
# libhsmkeys' own (the key name and epoch an hsmkeys server logs at start),
# and a hostile server (a new backend name per connection, a Content-Length
# past LONG_MAX, one that is not a number).
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
"$DS" --name X1 --listen "127.0.0.1:$port" -o "uri=pkcs11:token=S1;object=m?pin-value=secret-1234" \
    -o domain=d >"$LAB/ds-pin.out" 2>&1; rc=$?
[ $rc != 0 ] && grep -q "PIN on the command line" "$LAB/ds-pin.out" && ! grep -q "secret-1234" "$LAB/ds-pin.out"
tap_ok $? "hsmkeys-demo-server refuses a pin-value in -o uri= (the PIN is not echoed; rc $rc)"
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

# A hostile server: every connection names a new backend and announces a
# Content-Length of 2^70; one in ten sends a Content-Length that is no number.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$LAB/h.key" \
    -out "$LAB/h.crt" -days 1 -subj /CN=hostile >/dev/null 2>&1
hport=$(lab_port)
cat > "$LAB/hostile.py" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[2], sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(16)
n = 0
while True:
    c, _ = ls.accept()
    try:
        s = ctx.wrap_socket(c, server_side=True); s.settimeout(5)
        s.recv(4096); n += 1
        cl = "12abc" if n % 10 == 0 else str(2 ** 70)
        s.sendall(("HTTP/1.1 200 OK\r\nX-Server: b%d\r\nContent-Length: %s\r\n\r\nhello" % (n, cl)).encode())
        try:
            s.unwrap()   # close_notify: the body ends here, not at 2^70 bytes
        except Exception:
            pass
        c.close()
    except Exception:
        c.close()
PY
lab_spawn hostile python3 "$LAB/hostile.py" "$hport" "$LAB/h.crt" "$LAB/h.key"
lab_wait_port "$hport"
"$PROBE" -n 90 --warmup 0 --json "$LAB/hostile.json" -q "127.0.0.1:$hport" >"$LAB/hostile.out" 2>&1; rc=$?
python3 - "$LAB/hostile.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
b = d["backends"]
assert len(b) == 65, len(b)
assert b[-1]["name"] == "(other)" and all(x["name"] != "(other)" for x in b[:-1]), b[-1]
assert sum(x["connections"] for x in b) == d["all"]["connections"] - d["all"]["failed"], "lost connections"
assert b[-1]["connections"] == d["all"]["connections"] - d["all"]["failed"] - 64, b[-1]
PY
tap_ok $? "a new backend name per connection: 64 rows, the rest counted as (other) (probe rc $rc)"
grep -q "not a number" "$LAB/hostile.json" && python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); a=d['all']
assert a['failed'] == 9 and a['connections'] == 90, a" "$LAB/hostile.json"
tap_ok $? "a Content-Length that is not a number fails that connection with a message; 2^70 is read as 'until the end'"
# The same run under UBSan: no undefined behaviour (the old parse added a
# clamped strtol to the header length: signed overflow).
if cc -fsanitize=undefined -fno-sanitize-recover=all -O1 -g -D_GNU_SOURCE -std=c11 -o "$LAB/probe-ubsan" \
        "$HSMKEYS_ROOT"/tools/probe/*.c -lssl -lcrypto -lpthread 2>"$LAB/ubsan-build.err"; then
    "$LAB/probe-ubsan" -n 30 --warmup 0 -q --json "$LAB/ubsan.json" "127.0.0.1:$hport" >"$LAB/ubsan.out" 2>&1; rc=$?
    [ $rc != 2 ] && [ $rc -lt 128 ] && ! grep -q "runtime error" "$LAB/ubsan.out" &&
        python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['all']; assert a['connections'] == 30 and a['failed'] < 30, a" "$LAB/ubsan.json"
    tap_ok $? "the probe under UBSan reads the hostile answers without undefined behaviour (rc $rc)"
    grep "runtime error" "$LAB/ubsan.out" | head -2 | sed 's/^/# /'
else
    tap_skip "the probe under UBSan" "cc cannot build with -fsanitize=undefined"
fi
lab_stop hostile
tap_done
