# hx_lib.sh - helpers for the HAProxy feeder tests: HAProxy configurations
# (TLS terminators, a tcp round-robin balancer), the runtime API, and key
# names.  Sourced after tests/lib/lab.sh.  Everything listens on loopback and
# every process is started through lab_spawn, so lab_cleanup stops exactly
# these.  Keys come from the test-only seed; only key names are compared.
. "$HSMKEYS_ROOT/tests/lib/probe_summary.sh"

HX_FEEDER=$HSMKEYS_BUILD/hsmkeys-haproxy-feeder
HX_PROBE=$HSMKEYS_BUILD/hsmkeys-probe
HX_DOMAIN=test-haproxy

# hx_need: print a skip reason and return 1 when a tool is missing.
hx_need() {
    local t
    for t in haproxy socat openssl "$HX_FEEDER" "$HX_PROBE"; do
        command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || { echo "$t not found"; return 1; }
    done
}

# hx_cert: a throwaway ECDSA certificate+key for the terminators ($LAB/crt.pem).
hx_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=hsmkeys-test -keyout "$LAB/crt.key" -out "$LAB/crt.crt" 2>/dev/null &&
        cat "$LAB/crt.crt" "$LAB/crt.key" > "$LAB/crt.pem" && chmod 600 "$LAB/crt.pem"
}

# hx_terminator NAME ADDR PORT KEYSFILE: write $LAB/hx-NAME/haproxy.cfg for a
# TLS terminator answering "server: NAME" (header X-Server) itself, with its
# admin socket $LAB/hx-NAME/admin.sock (mode 600, level admin).  KEYSFILE is
# the bind line's tls-ticket-keys ("" for none: OpenSSL's own random keys).
hx_terminator() {
    local name=$1 addr=$2 port=$3 keys=$4 d=$LAB/hx-$1
    mkdir -p "$d" && chmod 700 "$d"
    cat > "$d/haproxy.cfg" <<CFG
global
    stats socket $d/admin.sock mode 600 level admin
    stats timeout 10s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend tls
    bind $addr:$port ssl crt $LAB/crt.pem${keys:+ tls-ticket-keys $keys}
    http-request return status 200 content-type text/plain hdr X-Server $name string "server: $name"
CFG
}

# hx_balancer NAME ADDR PORT BACKEND...: tcp round robin over ADDR:PORT pairs.
hx_balancer() {
    local name=$1 addr=$2 port=$3 d=$LAB/hx-$1 i=0 b
    shift 3
    mkdir -p "$d" && chmod 700 "$d"
    {
        printf 'defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n'
        printf 'frontend lb\n    bind %s:%s\n    default_backend terms\n' "$addr" "$port"
        printf 'backend terms\n    balance roundrobin\n'
        for b in "$@"; do i=$((i + 1)); printf '    server t%d %s\n' "$i" "$b"; done
    } > "$d/haproxy.cfg"
}

# hx_start NAME: run HAProxy NAME in the foreground (-db) under lab_spawn.
hx_start() { lab_spawn "haproxy-$1" haproxy -db -f "$LAB/hx-$1/haproxy.cfg"; }

# hx_cli NAME COMMAND: one runtime-API command to HAProxy NAME.
hx_cli() { echo "$2" | socat -t 5 - "UNIX-CONNECT:$LAB/hx-$1/admin.sock"; }

# hx_wait_cli NAME: wait up to 10 s until HAProxy NAME answers on its socket.
hx_wait_cli() {
    for _ in $(seq 1 100); do
        hx_cli "$1" "show info" 2>/dev/null | grep -q '^Pid:' && return 0
        sleep 0.1
    done
    echo "# HAProxy $1 does not answer on its admin socket" >&2
    return 1
}

# hx_names NAME ID: the hex names of HAProxy NAME's ring for ID, oldest first
# (the second one encrypts), space separated.
hx_names() {
    local l out=()
    while read -r _ l; do
        out+=("$(printf '%s' "$l" | base64 -d 2>/dev/null | head -c 16 | od -An -tx1 | tr -d ' \n')")
    done < <(hx_cli "$1" "show tls-keys $2" | grep -E '^[0-9]+\.[0-9]+ ')
    echo "${out[*]}"
}

# hx_ticket_name ADDR:PORT VERSION: hex name of the ticket a fresh connection
# receives (VERSION: -tls1_2 or -tls1_3).
hx_ticket_name() {
    local s=$LAB/sess.$$.$RANDOM
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -ign_eof -connect "$1" "$2" -sess_out "$s" \
        >/dev/null 2>&1
    openssl sess_id -in "$s" -noout -text 2>/dev/null |
        awk '/TLS session ticket:/ {getline; print; exit}' |
        sed -E 's/^ *0000 - //; s/  .*$//; s/[- ]//g'
    rm -f "$s"
}

# hx_wait_epoch_turn P: sleep until 0.3 s after the next multiple of P seconds
# (the epoch boundary of an epoch length of P seconds).
hx_wait_epoch_turn() {
    local now
    now=$(date +%s.%N)
    sleep "$(awk -v n="$now" -v p="$1" 'BEGIN { printf "%.3f", p - (n - int(n / p) * p) + 0.3 }')"
}

# hx_summary JSON: one line from the probe's --summary line, written beside
# its JSON report as JSON.summary (hx_probe ... --json J --summary J.summary):
#   "<rate> <reconnects> <resumed> <offered> <offered-rate> <failed> <backends> <epochs>"
# rate: resumed % of reconnects; offered-rate: resumed % of the reconnects
# that offered a ticket; epochs: hsmkeys epochs of the tickets received.
# Fails (prints nothing) when there is no summary or no reconnect.
hx_summary() {
    probe_summary "$1.summary" S || return 1
    [ "$S_reconnects" -gt 0 ] || return 1
    printf '%s %d %d %d %s %d %d %d\n' "$S_rate" "$S_reconnects" "$S_resumed" "$S_offered" \
        "$(probe_pct "$S_offered_resumed" "$S_offered")" "$S_failed" "$S_backends" "$S_epochs"
}

# hx_probe ARGS...: hsmkeys-probe (built by `make`), the resumption client.
hx_probe() { "$HX_PROBE" "$@"; }

# hx_reuse ADDR:PORT VERSION MIN_COUNT MIN_SECONDS: reconnect with openssl
# s_client, each time offering the session the previous connection left
# (-sess_in/-sess_out: an OpenSSL client that keeps its session, reusing a
# TLS 1.3 ticket the server did not replace), until at least MIN_COUNT
# reconnects and MIN_SECONDS passed.  Prints
#   "<reconnects> <resumed> <backends seen> <ticket names seen (one per epoch)>"
hx_reuse() {
    local target=$1 ver=$2 min=$3 secs=$4 s=$LAB/reuse.$$.sess out n=0 r=0 end
    local -A be=() names=()
    for _ in 1 2 3; do
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -ign_eof -connect "$target" "$ver" \
            -sess_out "$s" >/dev/null 2>&1
        [ -s "$s" ] && break
        sleep 0.2
    done
    end=$((SECONDS + secs))
    while [ "$n" -lt "$min" ] || [ "$SECONDS" -lt "$end" ]; do
        out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -ign_eof -connect "$target" "$ver" \
            -sess_in "$s" -sess_out "$s" 2>&1)
        n=$((n + 1))
        grep -q '^Reused,' <<<"$out" && r=$((r + 1))
        b=$(sed -n 's/^[Xx]-[Ss]erver: \([A-Za-z0-9]*\).*/\1/p' <<<"$out" | head -1)
        [ -n "$b" ] && be[$b]=1
        t=$(awk '/TLS session ticket:/ { getline; if ($1 == "0000") { sub(/^ *0000 - /, ""); last = substr($0, 1, 47) } }
                 END { print last }' <<<"$out")
        [ -n "$t" ] && names[${t//[ -]/}]=1
        [ "$n" -ge 2000 ] && break
    done
    rm -f "$s"
    echo "# ticket names seen: ${!names[*]}" >&2
    echo "$n $r ${#be[@]} ${#names[@]}"
}
