#!/bin/bash
# test_shared_outage.sh - one token shared through `p11-kit server`
# (provisioning/p11kit-share-token.sh), two hsmkeys-demo-servers on it behind
# HAProxy (tcp, round robin), clients from hsmkeys-probe; then the remote side
# dies: the p11-kit server and its per-client p11-kit-remote children are
# killed (SIGKILL, as in a crash: the socket file stays) for longer than the
# epochs the servers had cached.  Asserts:
#   - while it is down the servers keep resuming tickets from cached keys;
#   - no ticket is ever issued under a name other than the fleet's (no local
#     random key, no other master);
#   - the share script, restarted, replaces the stale socket (and refuses a
#     live one);
#   - the servers recover by themselves: tickets of new epochs, resumed across
#     both servers again.
# Behaviour only: nothing here depends on how the library's key maintenance
# is scheduled, only on what clients see.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lab/lib-probe.sh"
T=$HSMKEYS_BUILD/hsmkeys-tool
PROBE=$HSMKEYS_BUILD/hsmkeys-probe
SHARE=$HSMKEYS_ROOT/provisioning/p11kit-share-token.sh
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so
EPOCH=2 LIFETIME=30 OUTAGE=9   # the outage spans 4+ epochs; tickets stay in the window
D=example.com
if ! command -v p11-kit >/dev/null || [ ! -r "$CLIENT" ] || ! command -v haproxy >/dev/null ||
   [ ! -x "$PROBE" ] || [ ! -x "$HSMKEYS_BUILD/hsmkeys-demo-server" ]; then
    tap_skip "servers on a shared token through a p11-kit outage" \
        "p11-kit, p11-kit-client.so, haproxy, hsmkeys-probe or hsmkeys-demo-server missing (make; make deps)"
    tap_done; exit
fi
lab_init
lab_host S fleet
SOCK=$LAB/srv/pkcs11.sock
mkdir -m 700 "$LAB/srv"
share_start() {   # share_start NAME: the share script in the background
    lab_spawn "$1" env SOFTHSM2_CONF="$S_CONF" HSMKEYS_TOOL="$T" bash "$SHARE" --token S --socket "$SOCK"
}
wait_token() {    # the socket is there before the server loaded its module: wait for the token
    for _ in $(seq 1 100); do
        P11_KIT_SERVER_ADDRESS=unix:path=$SOCK "$T" status --module "$CLIENT" 2>&1 | grep -q "token 'S'" && return 0
        sleep 0.1
    done
    return 1
}
share_start p11srv
wait_token; tap_ok $? "p11-kit server shares token S; p11-kit-client.so sees it"
CURI="pkcs11:token=S;object=hsmkeys-master?module-path=$CLIENT&pin-source=$S_PIN_FILE"
TAG=$(SOFTHSM2_CONF=$S_CONF "$T" status --token S --pin-source "$S_PIN_FILE" --domain $D 2>/dev/null |
      awk '/key names for domain/ { print $(NF-2) }' | head -1)
[ -n "$TAG" ]; tap_ok $? "the fleet's name tag for $D: $TAG"

port=$(lab_port) p1=$(lab_port) p2=$(lab_port)
for s in S1 S2; do
    p=$p1; [ $s = S2 ] && p=$p2
    lab_spawn $s env P11_KIT_SERVER_ADDRESS=unix:path=$SOCK SOFTHSM2_CONF=$LAB/no-such.conf \
        "$HSMKEYS_BUILD/hsmkeys-demo-server" --name $s --listen 127.0.0.1:$p --log "$LAB/$s.conns" \
        -o "uri=$CURI" -o "domain=$D" -o "epoch=${EPOCH}s" -o "lifetime=${LIFETIME}s"
done
sed -e "s/@LB@/127.0.0.1:$port/" -e "s/@S1@/127.0.0.1:$p1/" -e "s/@S2@/127.0.0.1:$p2/" \
    "$HSMKEYS_ROOT/demo/haproxy.cfg.in" > "$LAB/haproxy.cfg"
lab_spawn LB haproxy -db -f "$LAB/haproxy.cfg"
lab_wait_port $p1 && lab_wait_port $p2 && lab_wait_port $port
tap_ok $? "S1 and S2 (hsmkeys-demo-server on p11-kit-client.so) and HAProxy are up"
LBA=127.0.0.1:$port

probe() {   # probe NAME SECONDS: TLS 1.3, two clients, through the LB
    "$PROBE" --tls1.3 -c 2 -d "$2" -i 50 --sni $D --csv "$LAB/$1.csv" "$LBA" >"$LAB/$1.out" 2>&1
    sed -n 's/^resumed/# '"$1"': resumed/p' "$LAB/$1.out"
}
# names_ok CSV: every ticket received carries the fleet's tag
names_ok() { awk -F, -v t="$TAG" 'NR > 1 && $13 != "" && index($13, t) != 1 { bad++; print "# foreign ticket name " $13 } END { exit bad > 0 }' "$1"; }

# (1) before: resumption across both servers.
probe before 3
r=$(csv_rate "$LAB/before.csv")
check_ge "$r" 99; tap_ok $? "token up: $r% of reconnects resumed (>= 99%)"
names_ok "$LAB/before.csv"; tap_ok $? "token up: every ticket carries the fleet's name"

# (2) kill the remote side: the server and every per-client p11-kit-remote.
srv=$(lab_pid p11srv)
kids=$(pgrep -P "$srv" 2>/dev/null | tr '\n' ' ')
i=0; for k in $kids; do i=$((i + 1)); lab_record_pid "p11remote$i" "$k"; done
[ "$i" -ge 2 ]; tap_ok $? "p11-kit server has a p11-kit-remote child per client ($i: $kids)"
kill -KILL "$srv" $kids 2>/dev/null
wait "$srv" 2>/dev/null   # reap it (the children are reparented and reaped by init)
sleep 0.5
alive=0; for p in $kids; do ps -o stat= -p "$p" 2>/dev/null | grep -qv Z && alive=1; done
kill -0 "$srv" 2>/dev/null && alive=1
[ $alive = 0 ] && [ -S "$SOCK" ]; tap_ok $? "server and children killed; the socket file is left behind"
rm -f "$LAB/pids/p11srv" "$LAB"/pids/p11remote*

# (3) down for longer than the cached epochs.
probe outage $OUTAGE
n=$(csv_count "$LAB/outage.csv" '$6 == 1') res=$(csv_count "$LAB/outage.csv" '$6 == 1 && $8 == 1')
[ "$res" -gt 0 ]; tap_ok $? "token down: servers keep resuming from cached keys ($res of $n reconnects resumed)"
off=$(csv_count "$LAB/outage.csv" '$6 == 1 && $7 == 1') offres=$(csv_count "$LAB/outage.csv" '$6 == 1 && $7 == 1 && $8 == 1')
# A client whose full handshake brought no ticket (epochs past the cache)
# offers nothing afterwards; what is offered must resume.  90%, not 100%: a
# ticket of an epoch one server derived ahead just before the kill and the
# other did not is a full handshake there.
[ "$off" -gt 0 ] && [ $((offres * 100)) -ge $((off * 90)) ]
tap_ok $? "token down: offered tickets of cached epochs resume ($offres of $off offered)"
names_ok "$LAB/outage.csv"; tap_ok $? "token down: no ticket under a name other than the fleet's"
lastep=$(awk -F, 'NR > 1 && $14 != "" { e = $14 } END { print e + 0 }' "$LAB/before.csv")
maxep=$(awk -F, 'NR > 1 && $14 != "" && $14 > m { m = $14 } END { print m + 0 }' "$LAB/outage.csv")
now_ep=$(( $(date +%s) / EPOCH ))
[ "$maxep" -lt "$now_ep" ]; tap_ok $? "token down: no ticket of the current epoch without the token (newest issued $maxep, before the outage $lastep, now $now_ep)"

# (4) the share script restarted: the stale socket is replaced; a live one would not be.
share_start p11srv2
wait_token; rc=$?
grep -q 'removing stale socket' "$LAB/p11srv2.log"
[ $rc = 0 ] && [ $? = 0 ]; tap_ok $? "the restarted share script removes the stale socket and serves again"
out=$(env SOFTHSM2_CONF="$S_CONF" HSMKEYS_TOOL="$T" timeout 10 bash "$SHARE" --token S --socket "$SOCK" 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q 'already listening'
tap_ok $? "a second share script on the live socket refuses to start"
: > "$LAB/plain"; out=$(env SOFTHSM2_CONF="$S_CONF" bash "$SHARE" --token S --socket "$LAB/plain" 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q 'not a socket' && [ -f "$LAB/plain" ]
tap_ok $? "... and one whose socket path is a plain file refuses and leaves it"

# (5) recovery by themselves: poll until tickets of the current epoch come back.
ok=1
for _ in $(seq 1 30); do
    probe poll 1 >/dev/null
    e=$(( $(date +%s) / EPOCH ))
    awk -F, -v e="$e" 'NR > 1 && $14 != "" && $14 + 0 >= e - 1 { n++ } END { exit !(n > 0) }' "$LAB/poll.csv" && { ok=0; break; }
done
tap_ok $ok "servers recover by themselves: tickets of the current epoch again"
probe after 3
r=$(csv_rate "$LAB/after.csv")
r1=$(csv_count "$LAB/after.csv" '$4 == "S1" && $8 == 1') r2=$(csv_count "$LAB/after.csv" '$4 == "S2" && $8 == 1')
check_ge "$r" 99 && [ "$r1" -gt 0 ] && [ "$r2" -gt 0 ]
tap_ok $? "after recovery: $r% of reconnects resumed, on both servers (S1 $r1, S2 $r2)"
names_ok "$LAB/after.csv"; tap_ok $? "after recovery: every ticket carries the fleet's name"
grep -qiE 'random|fallback' "$LAB/S1.log" "$LAB/S2.log" && echo "# server logs mention a fallback:" &&
    grep -iE 'random|fallback' "$LAB/S1.log" "$LAB/S2.log" | head -3 | sed 's/^/# /'
tap_done
