# apache_lab.sh - helpers for the Apache tests (sourced after tests/lib/lab.sh).
#
# Throwaway httpd instances, each with its own ServerRoot and config under
# $LAB/apache-NAME, run in the foreground (-DFOREGROUND) by lab_spawn so that
# lab.sh stops exactly them.  The children run as www-data, like Debian's
# apache2, so each host's token and PIN file are handed to that user (the
# production rule: the Apache User owns the PIN file, mode 0600/0400, and can
# use the token).  Cross-server resumption needs the same ServerName
# host:port on every server: all instances use ServerName fleet.test:443.
#
#   ap_have_prereqs              0 when apache2, mod_ssl, haproxy, the module exist
#   ap_tls_cert                  $LAB/tls/{cert,key}.pem for fleet.test
#   ap_give_host_to_user HOST    token dir + PIN file owned by $AP_USER
#   ap_write_conf NAME IP PORT MPM HOST [extra lines]
#                                $LAB/apache-NAME/httpd.conf (HOST: lab host
#                                whose token the server uses; "" for none)
#                                AP_CERT / AP_KEY override the certificate and
#                                key (e.g. a pkcs11: key URI); AP_NO_SSL=1
#                                leaves mod_ssl out
#   ap_start NAME HOST           start in the foreground with SOFTHSM2_CONF of HOST
#                                (and the words of $AP_ENV, e.g. OPENSSL_CONF=...)
#   ap_test NAME HOST            apache2 -t on that config, output in $AP_OUT
#   ap_lb IP PORT BACKEND...     HAProxy (mode tcp, roundrobin) as "lb"
#   ap_probe ARGS...             hsmkeys-probe; sets AP_RESUMED, AP_OFFERED

AP_USER=${AP_USER:-www-data}
AP_GROUP=${AP_GROUP:-www-data}
AP_MODDIR=${AP_MODDIR:-/usr/lib/apache2/modules}
AP_MODULE=${AP_MODULE:-$HSMKEYS_BUILD/apache/mod_hsmkeys.so}
AP_PROBE=${AP_PROBE:-$HSMKEYS_BUILD/hsmkeys-probe}
AP_SERVERNAME=fleet.test
AP_EPOCH=${AP_EPOCH:-2s}
AP_LIFETIME=${AP_LIFETIME:-60s}

ap_have_prereqs() {
    local m
    for m in apache2 haproxy openssl; do
        command -v "$m" >/dev/null || { AP_MISSING="$m not installed"; return 1; }
    done
    for m in mod_ssl.so mod_mpm_event.so mod_mpm_prefork.so mod_headers.so; do
        [ -f "$AP_MODDIR/$m" ] || { AP_MISSING="$AP_MODDIR/$m missing"; return 1; }
    done
    [ -f "$AP_MODULE" ] || { AP_MISSING="$AP_MODULE not built (make)"; return 1; }
    [ -x "$AP_PROBE" ] || { AP_MISSING="$AP_PROBE not built (make)"; return 1; }
    id "$AP_USER" >/dev/null 2>&1 || { AP_MISSING="no user $AP_USER"; return 1; }
    [ "$(id -u)" = 0 ] || { AP_MISSING="needs root (httpd switches to $AP_USER)"; return 1; }
    return 0
}

ap_tls_cert() {
    mkdir -p "$LAB/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$LAB/tls/key.pem" -out "$LAB/tls/cert.pem" -days 2 \
        -subj "/CN=$AP_SERVERNAME" -addext "subjectAltName=DNS:$AP_SERVERNAME" \
        >/dev/null 2>&1
}

ap_give_host_to_user() {
    local d=$LAB/$1
    chown -R "$AP_USER:$AP_GROUP" "$d/tokens" "$d/pin"
    chmod 0600 "$d/pin"
    runuser -u "$AP_USER" -- test -r "$d/pin" -a -x "$d/tokens" || {
        echo "# $AP_USER cannot reach $d (is a parent of \$LAB closed? TMPDIR=${TMPDIR:-/tmp})" >&2
        return 1
    }
}

# ap_write_conf NAME IP PORT MPM HOST [extra config lines...]
ap_write_conf() {
    local name=$1 ip=$2 port=$3 mpm=$4 host=$5; shift 5
    local d=$LAB/apache-$name uri=""
    # A private copy: a concurrent `make` must not rewrite a loaded module.
    [ -f "$LAB/mod_hsmkeys.so" ] || cp "$AP_MODULE" "$LAB/mod_hsmkeys.so"
    [ -n "$host" ] && uri=$(eval echo "\$${host}_URI")
    mkdir -p "$d/run" "$d/htdocs" "$d/logs"
    echo "server: $name" > "$d/htdocs/index.html"
    chmod -R a+rX "$d/htdocs"
    {
        echo "ServerRoot $d"
        echo "PidFile $d/run/httpd.pid"
        echo "DefaultRuntimeDir $d/run"
        echo "Mutex file:$d/run default"
        echo "ErrorLog $d/logs/error.log"
        echo "LogLevel warn hsmkeys:info"
        if [ -z "${AP_NO_SSL:-}" ]; then # %x comes from mod_ssl
            echo "LogFormat \"%P %{SSL_PROTOCOL}x %{SSL_SESSION_RESUMED}x\" hsmk"
            echo "CustomLog $d/logs/access.log hsmk"
        fi
        echo "LoadModule mpm_${mpm}_module $AP_MODDIR/mod_mpm_${mpm}.so"
        echo "LoadModule authz_core_module $AP_MODDIR/mod_authz_core.so"
        echo "LoadModule headers_module $AP_MODDIR/mod_headers.so"
        [ -z "${AP_NO_SSL:-}" ] && echo "LoadModule ssl_module $AP_MODDIR/mod_ssl.so"
        echo "LoadModule hsmkeys_module $LAB/mod_hsmkeys.so"
        echo "User $AP_USER"
        echo "Group $AP_GROUP"
        if [ "$mpm" = prefork ]; then
            echo "StartServers 3"; echo "MinSpareServers 2"; echo "MaxSpareServers 4"
        else
            echo "StartServers 2"; echo "ServerLimit 2"; echo "ThreadsPerChild 8"
            echo "MaxRequestWorkers 16"; echo "MinSpareThreads 4"; echo "MaxSpareThreads 16"
        fi
        echo "Listen $ip:$port"
        echo "ServerName $AP_SERVERNAME:443"
        echo "DocumentRoot $d/htdocs"
        echo "Header always set X-Server $name"
        if [ -z "${AP_NO_SSL:-}" ]; then
            echo "SSLEngine on"
            echo "SSLCertificateFile ${AP_CERT:-$LAB/tls/cert.pem}"
            echo "SSLCertificateKeyFile \"${AP_KEY:-$LAB/tls/key.pem}\""
            echo "SSLProtocol -all +TLSv1.2 +TLSv1.3"
        fi
        if [ -n "$uri" ]; then
            echo "HSMKeysTickets On"
            echo "HSMKeysURI \"$uri\""
            echo "HSMKeysDomain $AP_SERVERNAME"
            echo "HSMKeysEpoch $AP_EPOCH"
            echo "HSMKeysLifetime $AP_LIFETIME"
        fi
        local l
        for l in "$@"; do echo "$l"; done
    } > "$d/httpd.conf"
}

ap_start() {
    local name=$1 host=$2 conf=""
    [ -n "$host" ] && conf=$(eval echo "\$${host}_CONF")
    # Own session: the prefork MPM stops its children with killpg(), which
    # must not reach the test script (or tests/run.sh).  A background job of
    # a non-interactive shell is no group leader, so setsid does not fork and
    # the PID stays the httpd parent's (ap_wait checks it against PidFile).
    # shellcheck disable=SC2086 # AP_ENV: words NAME=VALUE
    lab_spawn "apache-$name" setsid env SOFTHSM2_CONF="$conf" ${AP_ENV:-} \
        apache2 -f "$LAB/apache-$name/httpd.conf" -DFOREGROUND
}

# Wait until NAME listens on IP:PORT, or it died; 0 when it listens.
ap_wait() {
    local name=$1 ip=$2 port=$3
    if lab_wait_port "$port" "$ip"; then
        local pf=$LAB/apache-$name/run/httpd.pid
        for _ in $(seq 1 50); do [ -s "$pf" ] && break; sleep 0.1; done
        if [ "$(cat "$pf" 2>/dev/null)" != "$(lab_pid "apache-$name")" ]; then
            echo "# apache-$name: PidFile says $(cat "$pf" 2>/dev/null), recorded $(lab_pid "apache-$name")"
            [ -s "$pf" ] && lab_record_pid "apache-$name" "$(cat "$pf")"
        fi
        return 0
    fi
    echo "# apache-$name did not start; its output and error log:"
    sed 's/^/#   /' "$LAB/apache-$name.log" "$LAB/apache-$name/logs/error.log" 2>/dev/null | tail -20
    return 1
}

ap_test() {
    local name=$1 host=$2 conf=""
    [ -n "$host" ] && conf=$(eval echo "\$${host}_CONF")
    # shellcheck disable=SC2086
    AP_OUT=$(env SOFTHSM2_CONF="$conf" ${AP_ENV:-} apache2 -f "$LAB/apache-$name/httpd.conf" -t 2>&1)
}

# ap_lb IP PORT IP:PORT...
ap_lb() {
    local ip=$1 port=$2 i=0 b; shift 2
    {
        echo "global"
        echo "  maxconn 512"
        echo "defaults"
        echo "  mode tcp"
        echo "  timeout connect 2s"
        echo "  timeout client 10s"
        echo "  timeout server 10s"
        echo "frontend fe"
        echo "  bind $ip:$port"
        echo "  default_backend be"
        echo "backend be"
        echo "  balance roundrobin"
        for b in "$@"; do i=$((i + 1)); echo "  server s$i $b"; done
    } > "$LAB/haproxy.cfg"
    lab_spawn lb haproxy -f "$LAB/haproxy.cfg" -db
    lab_wait_port "$port" "$ip"
}

# ap_probe ARGS... -> AP_TOTAL, AP_OFFERED (reconnects that offered a
# ticket), AP_RESUMED, AP_RENEWED, AP_FAILED, AP_EPOCHS (distinct hsmkeys
# epochs of the tickets issued), AP_BACKENDS (backends that answered); the
# probe's JSON stays in $LAB/probe-$AP_RUN.json.
AP_RUN=0
ap_probe() {
    AP_RUN=$((AP_RUN + 1))
    local j=$LAB/probe-$AP_RUN.json
    "$AP_PROBE" --sni "$AP_SERVERNAME" --path /index.html --json "$j" -q "$@" >"$LAB/probe-$AP_RUN.out" 2>&1
    AP_PROBE_RC=$?
    read -r AP_TOTAL AP_OFFERED AP_RESUMED AP_RENEWED AP_FAILED AP_EPOCHS AP_BACKENDS < <(python3 - "$j" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    a = j["all"]
    epochs = {c["ticket_epoch"] for c in j["connections"] if c.get("ticket_epoch") is not None}
    backends = {b["name"] for b in j["backends"] if b["connections"] > 0}
    offered = a.get("reconnects", a.get("offered", 0))  # older probes: "offered"
    print(a["connections"], offered, a["resumed"], a.get("renewals", 0), a["failed"], len(epochs), len(backends))
except Exception as e:
    print("0 0 0 0 0 0 0")
PY
)
    echo "# probe $*: $AP_RESUMED of $AP_OFFERED reconnects resumed ($AP_TOTAL connections, $AP_FAILED failed, $AP_RENEWED renewals, $AP_EPOCHS ticket epochs, $AP_BACKENDS backends)"
}

# ap_rate_at_least PCT: AP_RESUMED >= PCT% of AP_OFFERED (and something offered)
ap_rate_at_least() {
    [ "$AP_OFFERED" -gt 0 ] && [ $((AP_RESUMED * 100)) -ge $(($1 * AP_OFFERED)) ]
}
