# nginx_lab.sh - helpers for the nginx module tests (source after lab.sh).
#
# Owns: throwaway certificates, nginx and HAProxy configurations written into
# $LAB, starting/reloading them as recorded processes, and reading the
# probe's results.  Threat handled by the tests that use it: a fleet whose
# servers do not resume each other's tickets while everything "works".
# Every process runs on loopback and is stopped by its recorded PID.
#
#   ngx_lab_init                      check prerequisites (or skip), make certs
#   ngx_conf NAME IP PORT URI [EXTRA] write $LAB/NAME/nginx.conf (http server)
#   ngx_start NAME HOST               start nginx with HOST's token (S1/S2...)
#   ngx_reload NAME                   nginx -s reload, wait for the new workers
#   ngx_test NAME HOST                nginx -t; output in $LAB/NAME/t.out
#   lb_start NAME IP PORT BACKEND...  HAProxy mode tcp, roundrobin
#   probe_rate ARGS...                run hsmkeys-probe; sets PROBE_* counts
#   fleet_ok                          last probe: >= 99 % resumed across servers
. "$HSMKEYS_ROOT/tests/lib/probe_summary.sh"

NGX_HTTP_MOD=$HSMKEYS_BUILD/nginx/ngx_http_hsmkeys_module.so
NGX_STREAM_MOD=$HSMKEYS_BUILD/nginx/ngx_stream_hsmkeys_module.so
NGX_STREAM_CORE=/usr/lib/nginx/modules/ngx_stream_module.so
PROBE=$HSMKEYS_BUILD/hsmkeys-probe
NGX_DOMAIN=fleet.hsmkeys.test
NGX_EPOCH=${NGX_EPOCH:-1h}
NGX_LIFETIME=${NGX_LIFETIME:-2h}

# Prints the reason the suite cannot run, or nothing.
ngx_missing() {
    command -v nginx >/dev/null || { echo "nginx not installed (make deps)"; return; }
    command -v haproxy >/dev/null || { echo "haproxy not installed (make deps)"; return; }
    [ -f "$NGX_HTTP_MOD" ] || { echo "module not built: $NGX_HTTP_MOD (make)"; return; }
    [ -x "$PROBE" ] || { echo "probe not built: $PROBE (make)"; return; }
    [ -x "$HSMKEYS_BUILD/tests/t-token" ] || { echo "t-token not built (make tests)"; return; }
}

# One certificate for the whole fleet: nginx derives the session ID context
# from the certificate, and a ticket resumes only under the same context.
ngx_lab_init() {
    mkdir -p "$LAB/pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$LAB/pki/key.pem" -out "$LAB/pki/cert.pem" -days 2 \
        -subj "/CN=$NGX_DOMAIN" -addext "subjectAltName=DNS:$NGX_DOMAIN" \
        >/dev/null 2>&1 || { echo "# openssl req failed" >&2; return 1; }
    chmod 600 "$LAB/pki/key.pem"
}

# ngx_conf NAME IP PORT URI [EXTRA_SERVER_DIRECTIVES [KEY]]
ngx_conf() {
    local name=$1 ip=$2 port=$3 uri=$4 extra=${5:-} key=${6:-$LAB/pki/key.pem}
    local d=$LAB/$name
    mkdir -p "$d/tmp" "$d/logs"
    cat > "$d/nginx.conf" <<EOF
# test instance $name (hsmkeys tests/nginx)
load_module $NGX_HTTP_MOD;
daemon off;
master_process on;
worker_processes 2;
user root;
pid $d/nginx.pid;
error_log $d/error.log info;
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

    hsmkeys_uri      "$uri";
    hsmkeys_domain   $NGX_DOMAIN;
    hsmkeys_epoch    $NGX_EPOCH;
    hsmkeys_lifetime $NGX_LIFETIME;

    server {
        listen $ip:$port ssl;
        server_name $NGX_DOMAIN;
        ssl_certificate     $LAB/pki/cert.pem;
        ssl_certificate_key "$key";
        ssl_protocols TLSv1.2 TLSv1.3;
        hsmkeys_tickets on;
        $extra
        add_header X-Server $name always;
        location / { return 200 "server: $name\n"; }
    }
}
EOF
}

# ngx_stream_conf NAME IP PORT URI [EXTRA]: a stream{} TLS server that answers
# like an HTTP server naming itself (the probe reads the X-Server header).
ngx_stream_conf() {
    local name=$1 ip=$2 port=$3 uri=$4 extra=${5:-}
    local d=$LAB/$name
    mkdir -p "$d"
    cat > "$d/nginx.conf" <<EOF
# test instance $name (hsmkeys tests/nginx, stream)
load_module $NGX_STREAM_CORE;
load_module $NGX_STREAM_MOD;
daemon off;
master_process on;
worker_processes 2;
user root;
pid $d/nginx.pid;
error_log $d/error.log info;
env SOFTHSM2_CONF;
events { worker_connections 512; }
stream {
    hsmkeys_uri      "$uri";
    hsmkeys_domain   $NGX_DOMAIN;
    hsmkeys_epoch    $NGX_EPOCH;
    hsmkeys_lifetime $NGX_LIFETIME;

    server {
        listen $ip:$port ssl;
        ssl_certificate     $LAB/pki/cert.pem;
        ssl_certificate_key $LAB/pki/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        hsmkeys_tickets on;
        $extra
        return "HTTP/1.0 200 OK\r\nX-Server: $name\r\nContent-Length: 11\r\n\r\nserver: $name\n";
    }
}
EOF
}

# ngx_start NAME HOST: nginx in the foreground (daemon off) so its master's
# PID is the one lab_spawn records; workers see HOST's token.
ngx_start() {
    local name=$1 host=$2 conf_var=${2}_CONF
    SOFTHSM2_CONF=${!conf_var} lab_spawn "$name" nginx -p "$LAB/$name" -c "$LAB/$name/nginx.conf"
    lab_wait_children "$name" 2
}

# ngx_reload NAME HOST: "nginx -s reload" signals the master through the pid
# file; wait until the old workers are gone and two new ones run.
ngx_reload() {
    local name=$1 host=$2 conf_var=${2}_CONF pid old new
    pid=$(lab_pid "$name")
    old=$(pgrep -P "$pid" | sort)
    SOFTHSM2_CONF=${!conf_var} nginx -p "$LAB/$name" -c "$LAB/$name/nginx.conf" -s reload \
        >>"$LAB/$name.reload.log" 2>&1 || return 1
    for _ in $(seq 1 100); do
        new=$(pgrep -P "$pid" | sort)
        if [ -n "$new" ] && [ "$(comm -12 <(echo "$old") <(echo "$new") | wc -l)" = 0 ] \
            && [ "$(echo "$new" | wc -l)" -ge 2 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "# nginx $name: workers not replaced after reload" >&2
    return 1
}

# ngx_test NAME HOST: "nginx -t" with HOST's token; returns nginx's status.
ngx_test() {
    local name=$1 host=$2 conf_var=${2}_CONF
    SOFTHSM2_CONF=${!conf_var} nginx -t -p "$LAB/$name" -c "$LAB/$name/nginx.conf" \
        >"$LAB/$name/t.out" 2>&1
}

# lb_start NAME IP PORT BACKEND...: HAProxy as a TCP round-robin balancer.
lb_start() {
    local name=$1 ip=$2 port=$3 i=0 b; shift 3
    mkdir -p "$LAB/$name"
    {
        printf 'global\n    maxconn 2000\n    pidfile %s/haproxy.pid\n' "$LAB/$name"
        printf 'defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 20s\n    timeout server 20s\n'
        printf 'frontend fe\n    bind %s:%s\n    default_backend be\n' "$ip" "$port"
        printf 'backend be\n    balance roundrobin\n'
        for b in "$@"; do i=$((i + 1)); printf '    server s%d %s\n' "$i" "$b"; done
    } > "$LAB/$name/haproxy.cfg"
    lab_spawn "$name" haproxy -db -f "$LAB/$name/haproxy.cfg"
    lab_wait_port "$port" "$ip"
}

# probe_rate PROBE_ARGS...: runs the probe (its --summary line, and the
# connections as JSON for the diagnostics) and sets
#   PROBE_TOTAL       connections          PROBE_FAILED  failed connections
#   PROBE_RECONNECTS  successful connections after each client's first
#   PROBE_RESUMED     reconnects resumed   PROBE_CROSS   ... on another backend
#                                          than the client's previous one
#   PROBE_RENEWED     resumed with a new ticket of a newer epoch
#   PROBE_BACKENDS    distinct backends    PROBE_EPOCHS  distinct ticket epochs
#   PROBE_RATE        PROBE_RESUMED * 100 / PROBE_RECONNECTS (floor)
# A reconnect that offers no ticket counts as not resumed.  Returns the
# probe's status.
probe_rate() {
    local out=$LAB/probe.$RANDOM.json rc
    "$PROBE" --quiet --json "$out" --summary "$out.summary" "$@" >"$out.log" 2>&1
    rc=$?
    # reconnects here: completed connections after their client's first
    # (the summary's followups), resumed only when a ticket was offered
    PROBE_TOTAL=0 PROBE_FAILED=0 PROBE_RECONNECTS=0 PROBE_RESUMED=0 PROBE_CROSS=0
    PROBE_RENEWED=0 PROBE_BACKENDS=0 PROBE_EPOCHS=0
    if probe_summary "$out.summary" S; then
        PROBE_TOTAL=$S_connections PROBE_FAILED=$S_failed PROBE_RECONNECTS=$S_followups
        PROBE_RESUMED=$S_followups_resumed PROBE_CROSS=$S_followups_cross
        PROBE_RENEWED=$S_followups_renewed PROBE_BACKENDS=$S_backends PROBE_EPOCHS=$S_epochs
    fi
    if [ "${PROBE_RECONNECTS:-0}" -gt 0 ]; then
        PROBE_RATE=$((PROBE_RESUMED * 100 / PROBE_RECONNECTS))
    else
        PROBE_RATE=0
    fi
    echo "# probe $*: resumed $PROBE_RESUMED of $PROBE_RECONNECTS reconnects ($PROBE_RATE%)," \
         "$PROBE_CROSS on the other server, $PROBE_RENEWED renewed; $PROBE_TOTAL connections," \
         "$PROBE_FAILED failed, $PROBE_BACKENDS backends, $PROBE_EPOCHS ticket epochs (status $rc)"
    [ "$PROBE_FAILED" = 0 ] || python3 - "$out" <<'PY'
import json, sys
bad = [c for c in json.load(open(sys.argv[1]))["connections"] if not c["ok"]]
for c in bad[:5]:
    print("#   failed:", c["id"], c["backend"], c["error"])
if len(bad) > 5:
    print("#   ... and", len(bad) - 5, "more")
PY
    [ "$PROBE_RESUMED" = "$PROBE_RECONNECTS" ] || python3 - "$out" <<'PY'
import json, sys
seen, shown = set(), 0
for c in json.load(open(sys.argv[1]))["connections"]:
    if c["ok"] and c["client"] in seen and not (c["offered"] and c["resumed"]) and shown < 5:
        shown += 1
        print("#   not resumed:", c["id"], c["backend"], "offered" if c["offered"] else "no ticket offered")
    seen.add(c["client"])
PY
    # for callers that ran the probe in a subshell: eval "$(sed -n 's/^#RESULT //p')"
    echo "#RESULT PROBE_FAILED=$PROBE_FAILED PROBE_BACKENDS=$PROBE_BACKENDS" \
         "PROBE_RESUMED=$PROBE_RESUMED PROBE_RECONNECTS=$PROBE_RECONNECTS PROBE_CROSS=$PROBE_CROSS"
    return $rc
}

# fleet_ok: the last probe resumed >= 99 % of its reconnects, every one of
# them on the other server than the client's previous connection (round
# robin), with no failed connection, and both backends answered.
fleet_ok() {
    [ "$PROBE_FAILED" = 0 ] && [ "$PROBE_BACKENDS" -ge 2 ] \
        && at_least_99 "$PROBE_RESUMED" "$PROBE_RECONNECTS" \
        && at_least_99 "$PROBE_CROSS" "$PROBE_RECONNECTS"
}

# at_least_99 PART WHOLE: PART/WHOLE >= 99 % and WHOLE > 0.
at_least_99() { [ "$2" -gt 0 ] && [ $(( $1 * 100 )) -ge $(( $2 * 99 )) ]; }
