# sc_lab.sh - helpers of the sealed session cache tests (source after
# tests/lib/lab.sh and the server kind's lab: nginx_lab.sh or apache_lab.sh).
#
# Owns: a throwaway Redis (redis-server on 127.0.0.1, a free port, its own
# dir in $LAB, requirepass from a 0600 file, no persistence), stopped by its
# recorded PID; session-ID client chains with openssl s_client; timing of
# session-ID handshakes.  Threat handled by the tests using it: a shared
# session cache that leaks sessions to its store, accepts moved or edited
# entries, or stalls handshakes when the store fails.
#
#   sc_missing                    reason the suite cannot run, or nothing
#   redis_start NAME              start; sets NAME_PORT, NAME_PW (password file)
#   redis_restart NAME            start again on the same port (after a kill)
#   rstore NAME OP ARGS...        tests/sesscache/rstore.py on NAME
#   sc_chain ADDR FILE N [NAME]   1 new session + N reconnects (-no_ticket,
#                                 TLS 1.2, chained through FILE); sets
#                                 SC_REUSED SC_NEW SC_FAILED SC_BACKENDS
#   sc_once ADDR FILE [NAME]      one reconnect with FILE; SC_LAST=Reused|New|failed
#   sc_fleet_suite KIND LB OTHER  the shared scenario (TAP lines): chain of 20
#                                 through LB, store contents, tampering (OTHER:
#                                 a server of another domain on the same store),
#                                 Redis killed / restarted / stopped.  The caller
#                                 defines sc_alive (servers up, all children)
#                                 and SC_LOGS (the servers' error logs).

SC_RSTORE=$HSMKEYS_ROOT/tests/sesscache/rstore.py
SC_SNI=${SC_SNI:-fleet.hsmkeys.test}

sc_missing() {
    command -v redis-server >/dev/null || { echo "redis-server not installed (make deps)"; return; }
    python3 -c 'import ssl' 2>/dev/null || { echo "python3 ssl missing"; return; }
}

redis_start() {
    local name=$1 d=$LAB/$1 port
    port=$(eval echo "\${${name}_PORT:-}")
    [ -n "$port" ] || port=$(lab_port)
    mkdir -p "$d"
    [ -f "$d/pw" ] || (umask 077; printf 'redis-%s-%s%s\n' "$name" "$RANDOM" "$RANDOM" > "$d/pw")
    {
        echo "bind 127.0.0.1"
        echo "port $port"
        echo "dir $d"
        echo "save \"\""
        echo "appendonly no"
        echo "daemonize no"
        echo "protected-mode yes"
        echo "logfile $d/redis.log"
        echo "unixsocket $d/redis.sock"
        echo "unixsocketperm 700"
        echo "requirepass $(cat "$d/pw")"
    } > "$d/redis.conf"
    chmod 600 "$d/redis.conf"
    lab_spawn "$name" redis-server "$d/redis.conf"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_PW" '%s' "$d/pw"
    printf -v "${name}_SOCK" '%s' "$d/redis.sock"
    lab_wait_port "$port"
}

redis_restart() { redis_start "$1"; }

rstore() {
    local name=$1; shift
    python3 "$SC_RSTORE" "$(eval echo "\$${name}_PORT")" "$(eval echo "\$${name}_PW")" "$@"
}

# One s_client connection; prints "Reused|New|failed BACKEND".
_sc_conn() {
    local addr=$1 file=$2 sni=$3 out how be
    if [ -f "$file" ]; then
        out=$(printf 'GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 openssl s_client -connect "$addr" \
              -servername "$sni" -tls1_2 -no_ticket -ign_eof -sess_in "$file" -sess_out "$file" 2>&1)
    else
        out=$(printf 'GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 openssl s_client -connect "$addr" \
              -servername "$sni" -tls1_2 -no_ticket -ign_eof -sess_out "$file" 2>&1)
    fi
    how=$(echo "$out" | sed -n 's/^\(Reused\|New\), TLSv1\.2.*/\1/p' | head -1)
    be=$(echo "$out" | tr -d '\r' | sed -n 's/^X-Server: \([A-Za-z0-9_-]*\).*/\1/p' | head -1)
    [ -n "$how" ] && [ -n "$be" ] || how=failed
    echo "$how ${be:-none}"
}

sc_once() {
    local r
    r=$(_sc_conn "$1" "$2" "${3:-$SC_SNI}")
    SC_LAST=${r%% *}
    SC_LAST_BACKEND=${r#* }
}

sc_chain() {
    local addr=$1 file=$2 n=$3 sni=${4:-$SC_SNI} i r bes=""
    rm -f "$file"
    SC_REUSED=0 SC_NEW=0 SC_FAILED=0
    r=$(_sc_conn "$addr" "$file" "$sni")
    [ "${r%% *}" = New ] || SC_FAILED=$((SC_FAILED + 1))
    bes="${r#* }"
    for i in $(seq 1 "$n"); do
        r=$(_sc_conn "$addr" "$file" "$sni")
        case ${r%% *} in
            Reused) SC_REUSED=$((SC_REUSED + 1)) ;;
            New) SC_NEW=$((SC_NEW + 1)) ;;
            *) SC_FAILED=$((SC_FAILED + 1)) ;;
        esac
        bes="$bes ${r#* }"
    done
    SC_BACKENDS=$(echo "$bes" | tr ' ' '\n' | grep -v none | sort -u | wc -l)
    echo "# chain of $n reconnects via $addr: $SC_REUSED reused, $SC_NEW new, $SC_FAILED failed, $SC_BACKENDS backends ($bes)"
}

_sc_logged() { sleep 0.2; cat "${SC_LOGS[@]}" | grep -c "session cache entry refused: $1"; }
_sc_only_key() { rstore R keys | head -1; }

sc_fleet_suite() {
    local kind=$1 lba=$2 other=$3 k v flipped n0 ka kb ko kc ke bg max out rc
    sc_chain "$lba" "$LAB/chain1.sess" 20
    [ "$SC_REUSED" -ge 19 ] && [ "$SC_FAILED" = 0 ] && [ "$SC_BACKENDS" = 2 ]
    tap_ok $? "$kind: session-ID-only TLS 1.2 chain through round robin: $SC_REUSED of 20 reconnects resumed on alternating servers"
    echo "#RATE $kind $SC_REUSED/20"

    out=$(rstore R search "$LAB/chain1.sess"); rc=$?
    echo "# store: $out"
    [ $rc = 0 ] && ! rstore R keys | grep -qvE '^hk1:[0-9a-f]{32}$'
    tap_ok $? "$kind: the store holds neither the session ID nor the master secret (every key and value searched: $out); keys are hk1:<hash>"

    rstore R flush; sc_chain "$lba" "$LAB/t1.sess" 1 >/dev/null
    k=$(_sc_only_key); v=$(rstore R get "$k")
    flipped=$(python3 -c "import sys; b=bytearray.fromhex(sys.argv[1]); b[len(b)//2]^=1; print(b.hex())" "$v")
    n0=$(_sc_logged "entry does not authenticate")
    rstore R set "$k" "$flipped"; sc_once "$lba" "$LAB/t1.sess"
    [ -n "$v" ] && [ "$SC_LAST" = New ] && [ "$(_sc_logged "entry does not authenticate")" -gt "$n0" ] && sc_alive
    tap_ok $? "$kind: a flipped byte in an entry: refused, full handshake ($SC_LAST), servers up"

    sleep 1.1 # one refusal line per reason and second
    rstore R flush; sc_chain "$lba" "$LAB/ta.sess" 1 >/dev/null; ka=$(_sc_only_key)
    sc_chain "$lba" "$LAB/tb.sess" 1 >/dev/null; kb=$(rstore R keys | grep -vx "$ka" | head -1)
    n0=$(_sc_logged "entry does not authenticate")
    rstore R set "$kb" "$(rstore R get "$ka")"; sc_once "$lba" "$LAB/tb.sess"
    [ -n "$ka" ] && [ -n "$kb" ] && [ "$SC_LAST" = New ] && [ "$(_sc_logged "entry does not authenticate")" -gt "$n0" ] && sc_alive
    tap_ok $? "$kind: an entry copied under another session's key: refused, full handshake ($SC_LAST)"

    sleep 1.1
    rstore R flush; sc_chain "$other" "$LAB/to.sess" 1 >/dev/null; ko=$(_sc_only_key)
    sc_chain "$lba" "$LAB/tc.sess" 1 >/dev/null; kc=$(rstore R keys | grep -vx "$ko" | head -1)
    n0=$(_sc_logged "entry does not authenticate")
    rstore R set "$kc" "$(rstore R get "$ko")"; sc_once "$lba" "$LAB/tc.sess"
    [ -n "$ko" ] && [ -n "$kc" ] && [ "$SC_LAST" = New ] && [ "$(_sc_logged "entry does not authenticate")" -gt "$n0" ] && sc_alive
    tap_ok $? "$kind: an entry of another domain under our session's key: refused, full handshake ($SC_LAST)"

    rstore R flush; sc_chain "$lba" "$LAB/te.sess" 1 >/dev/null; ke=$(_sc_only_key)
    rstore R persist "$ke"   # the store keeps it past its TTL: the entry's own expiry must refuse it
    sleep $((SC_LIFETIME + 1))
    n0=$(_sc_logged "expired entry")
    sc_once "$lba" "$LAB/te.sess"
    [ -n "$ke" ] && [ "$SC_LAST" = New ] && [ "$(_sc_logged "expired entry")" -gt "$n0" ] && sc_alive
    tap_ok $? "$kind: an entry kept past its expiry (TTL removed in the store): refused, full handshake ($SC_LAST)"

    python3 "$HSMKEYS_ROOT/tests/sesscache/hstime.py" "$lba" 60 20 "$SC_SNI" > "$LAB/kill.out" 2>&1 &
    bg=$!
    sleep 0.6; kill -KILL "$(lab_pid R)"; wait "$(lab_pid R)" 2>/dev/null
    wait $bg; sed 's/^/# /' "$LAB/kill.out"
    grep -q 'failed=0 ' "$LAB/kill.out"
    tap_ok $? "$kind: Redis killed during 60 session-ID connections: 0 failed (full handshakes)"
    redis_restart R; sleep 2.5
    sc_chain "$lba" "$LAB/chain2.sess" 10
    [ "$SC_REUSED" -ge 9 ] && [ "$SC_FAILED" = 0 ]
    tap_ok $? "$kind: after Redis restarts, without touching the servers: $SC_REUSED of 10 reconnects resumed"
    grep -q 'session cache store redis://127.0.0.1:[0-9]*: .*full handshakes' "${SC_LOGS[@]}" \
        && grep -q 'session cache store redis://.* answers again' "${SC_LOGS[@]}"
    tap_ok $? "$kind: the outage and the recovery are logged"

    sc_chain "$lba" "$LAB/stop.sess" 2 >/dev/null
    kill -STOP "$(lab_pid R)"
    python3 "$HSMKEYS_ROOT/tests/sesscache/hstime.py" "$lba" 40 30 "$SC_SNI" > "$LAB/stop.out" 2>&1
    kill -CONT "$(lab_pid R)"
    sed 's/^/# /' "$LAB/stop.out"
    max=$(sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p' "$LAB/stop.out")
    grep -q 'failed=0 ' "$LAB/stop.out" && python3 -c "import sys; sys.exit(not float(sys.argv[1]) <= $SC_TIMEOUT_MS + 50)" "${max:-999}"
    tap_ok $? "$kind: Redis stopped (SIGSTOP): 40 connections, none failed, the slowest handshake took ${max} ms (<= timeout $SC_TIMEOUT_MS ms + 50 ms)"
}
