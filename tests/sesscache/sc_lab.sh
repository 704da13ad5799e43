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
        out=$(printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 openssl s_client -connect "$addr" \
              -servername "$sni" -tls1_2 -no_ticket -ign_eof -sess_in "$file" -sess_out "$file" 2>&1)
    else
        out=$(printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 openssl s_client -connect "$addr" \
              -servername "$sni" -tls1_2 -no_ticket -ign_eof -sess_out "$file" 2>&1)
    fi
    how=$(echo "$out" | sed -n 's/^\(Reused\|New\), TLSv1\.2.*/\1/p' | head -1)
    be=$(echo "$out" | sed -n 's/^server: \([A-Za-z0-9_-]*\).*/\1/p' | head -1)
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
