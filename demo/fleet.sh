# fleet.sh - start and stop the seed's topology on loopback, for the demo and
# tests/lab.  Source after tests/lib/lab.sh and lab_init; S1 and S2 must be
# lab hosts (lab_host) for the hsmkeys mode.
#
#   fleet_start MODE [EPOCH [LIFETIME]]   MODE: baseline | hsmkeys
#       LB 127.0.0.10, S1 127.0.0.11, S2 127.0.0.12, one port for all three
#       (like :443 on three hosts); exports FLEET_LB (ADDR:PORT) and
#       FLEET_CONNS (the servers' per-connection logs, S1 then S2).
#       S1/S2 are nginx with the hsmkeys module when it is built (else
#       hsmkeys-demo-server); FLEET_SERVER=demo-server|nginx overrides.
#       FLEET_SC: extra hsmkeys directives of the nginx servers (the demo's
#       hsmkeys_session_cache line).
#   fleet_stop                            stop S1, S2 and LB (by recorded PID)
#   fleet_server_view CSV                 compare the servers' per-connection
#       view (resumed or not) with the probe's CSV; prints a summary line and
#       returns 0 only if every connection is known to a server and agrees.
#
# Threat handled: only processes started here are stopped (by PID, lab.sh);
# the servers read their PIN from the lab's 0600 pin file via the URI, never
# from argv or the environment.

FLEET_LB_ADDR=${FLEET_LB_ADDR:-127.0.0.10}
FLEET_S1_ADDR=${FLEET_S1_ADDR:-127.0.0.11}
FLEET_S2_ADDR=${FLEET_S2_ADDR:-127.0.0.12}
FLEET_DOMAIN=${FLEET_DOMAIN:-example.com}
FLEET_NGINX_MOD=$HSMKEYS_BUILD/nginx/ngx_http_hsmkeys_module.so
# S1/S2 are nginx with the hsmkeys module when it is built, else the
# project's hsmkeys-demo-server.  Override with FLEET_SERVER=demo-server.
if [ -z "${FLEET_SERVER:-}" ]; then
    if [ -f "$FLEET_NGINX_MOD" ] && command -v nginx >/dev/null; then FLEET_SERVER=nginx
    else FLEET_SERVER=demo-server; fi
fi

# fleet_nginx_conf MODE NAME ADDR:PORT EPOCH LIFETIME: $LAB/MODE-NAME/nginx.conf.
# One certificate for the fleet (nginx derives the session id context from
# it); the access log line is the demo-server's per-connection line.
fleet_nginx_conf() {
    local mode=$1 name=$2 listen=$3 epoch=$4 lifetime=$5 d=$LAB/$1-$2 hk="" load=""
    mkdir -p "$d/tmp"
    if [ ! -f "$LAB/pki/cert.pem" ]; then
        mkdir -p "$LAB/pki"
        (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$LAB/pki/key.pem" -out "$LAB/pki/cert.pem" -days 2 -subj "/CN=$FLEET_DOMAIN" \
            -addext "subjectAltName=DNS:$FLEET_DOMAIN" >/dev/null 2>&1)
    fi
    load="load_module $FLEET_NGINX_MOD;"
    if [ "$mode" = hsmkeys ]; then
        local uri=${name}_URI
        hk="hsmkeys_tickets on; hsmkeys_uri \"${!uri}\"; hsmkeys_domain $FLEET_DOMAIN;
        hsmkeys_epoch $epoch; hsmkeys_lifetime $lifetime; ${FLEET_SC:-}"
    fi
    cat > "$d/nginx.conf" <<NGX
# $mode $name (demo/fleet.sh)
$load
daemon off;
master_process on;
worker_processes 2;
user root;
pid $d/nginx.pid;
error_log $d/error.log notice;
env SOFTHSM2_CONF;
events { worker_connections 512; }
http {
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    map \$ssl_session_reused \$hk_resumed { r 1; default 0; }
    log_format hkconn 'conn id=\$http_x_probe_id server=$name resumed=\$hk_resumed version=\$ssl_protocol';
    access_log $LAB/$mode-$name.conns hkconn;
    server {
        listen $listen ssl;
        server_name $FLEET_DOMAIN;
        ssl_certificate     $LAB/pki/cert.pem;
        ssl_certificate_key $LAB/pki/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        $hk
        add_header X-Server $name always;
        location / { return 200 "server: $name\n"; }
    }
}
NGX
}

fleet_start() {
    local mode=$1 epoch=${2:-5s} lifetime=${3:-10s} port s addr conf uri
    port=$(lab_port) || return 1
    FLEET_MODE=$mode
    FLEET_LB=$FLEET_LB_ADDR:$port
    FLEET_CONNS="$LAB/$mode-S1.conns $LAB/$mode-S2.conns"
    export FLEET_LB FLEET_CONNS FLEET_MODE
    for s in S1 S2; do
        addr=FLEET_${s}_ADDR; addr=${!addr}
        : > "$LAB/$mode-$s.conns"
        if [ "$FLEET_SERVER" = nginx ]; then
            fleet_nginx_conf "$mode" "$s" "$addr:$port" "$epoch" "$lifetime"
            conf=${s}_CONF
            SOFTHSM2_CONF=${!conf} lab_spawn "$mode-$s" nginx -p "$LAB/$mode-$s" -c "$LAB/$mode-$s/nginx.conf"
            lab_wait_children "$mode-$s" 2 || return 1
        elif [ "$mode" = baseline ]; then
            lab_spawn "$mode-$s" "$HSMKEYS_BUILD/hsmkeys-demo-server" --name "$s" \
                --listen "$addr:$port" --log "$LAB/$mode-$s.conns" --baseline
        else
            conf=${s}_CONF; uri=${s}_URI
            lab_spawn "$mode-$s" env SOFTHSM2_CONF="${!conf}" "$HSMKEYS_BUILD/hsmkeys-demo-server" \
                --name "$s" --listen "$addr:$port" --log "$LAB/$mode-$s.conns" \
                -o "uri=${!uri}" -o "domain=$FLEET_DOMAIN" -o "epoch=$epoch" -o "lifetime=$lifetime"
        fi
    done
    sed -e "s/@LB@/$FLEET_LB/" -e "s/@S1@/$FLEET_S1_ADDR:$port/" -e "s/@S2@/$FLEET_S2_ADDR:$port/" \
        "$HSMKEYS_ROOT/demo/haproxy.cfg.in" > "$LAB/$mode-haproxy.cfg"
    lab_spawn "$mode-LB" haproxy -db -f "$LAB/$mode-haproxy.cfg"
    local ok=0
    lab_wait_port "$port" "$FLEET_S1_ADDR" && lab_wait_port "$port" "$FLEET_S2_ADDR" &&
        lab_wait_port "$port" "$FLEET_LB_ADDR" && ok=1
    if [ "$ok" != 1 ]; then
        echo "fleet_start $mode: a server or the LB did not come up; their logs:" >&2
        tail -n 5 "$LAB/$mode-S1.log" "$LAB/$mode-S2.log" "$LAB/$mode-LB.log" >&2
        return 1
    fi
}

fleet_stop() {
    lab_stop "$FLEET_MODE-LB"
    lab_stop "$FLEET_MODE-S1"
    lab_stop "$FLEET_MODE-S2"
}

# The servers' view against the probe's CSV, connection by connection.
fleet_server_view() {
    local csv=$1
    # shellcheck disable=SC2086
    awk -F'[ ,=]' '
        FNR == 1 && FILENAME ~ /\.csv$/ { next }
        FILENAME ~ /\.csv$/ { if ($5 == 1) { want[$3] = $8; backend[$3] = $4; n++ } next }
        $1 == "conn" { got[$3] = $7; srv[$3] = $5 }
        END {
            bad = 0; missing = 0
            for (id in want) {
                if (!(id in got)) { missing++; if (missing <= 5) print "  no server logged " id > "/dev/stderr"; continue }
                if (got[id] != want[id] || srv[id] != backend[id]) {
                    bad++
                    if (bad <= 5) printf "  %s: client says %s resumed=%s, server %s says resumed=%s\n", id, backend[id], want[id], srv[id], got[id] > "/dev/stderr"
                }
            }
            printf "server view: %d of %d connections agree with the client (%d unknown to the servers)\n", n - bad - missing, n, missing
            exit (bad || missing || n == 0) ? 1 : 0
        }' "$csv" $FLEET_CONNS
}

# fleet_provision: SoftHSM2 hosts S1 and S2 holding the same master.  With
# hsmkeys-tool and the provisioning scripts: the clone ceremony (S1 creates
# the master, wraps it for S2's transport key, S2 unwraps, S1 seals; no
# plaintext anywhere).  Without them: the lab's shared test seed.  Sets
# FLEET_PROVISIONED to a one-line description.  Ceremony output: $LAB/ceremony.log.
fleet_provision() {
    local P=$HSMKEYS_ROOT/provisioning W=$LAB/ceremony out fp kcv
    if [ ! -x "$HSMKEYS_BUILD/hsmkeys-tool" ] || [ ! -f "$P/ceremony-host-a-wrap.sh" ]; then
        lab_host S1 && lab_host S2 || return 1
        FLEET_PROVISIONED="shared test seed (hsmkeys-tool not built)"
        return 0
    fi
    export HSMKEYS_TOOL=$HSMKEYS_BUILD/hsmkeys-tool
    lab_host S1 none && lab_host S2 none || return 1
    mkdir -p "$W"
    {
        out=$(SOFTHSM2_CONF=$S2_CONF bash "$P/ceremony-host-b-prepare.sh" --token S2 \
              --pin-source "$S2_PIN_FILE" --out "$W/S2.pem" 2>&1) || { echo "$out"; return 1; }
        echo "$out"
        fp=$(printf '%s\n' "$out" | awk '$1 == "fingerprint" { v = $2 } END { print v }')
        out=$(SOFTHSM2_CONF=$S1_CONF bash "$P/ceremony-host-a-wrap.sh" --token S1 --pin-source "$S1_PIN_FILE" \
              --so-pin-source "$S1_SO_PIN_FILE" --pub "$W/S2.pem" --expect-fingerprint "$fp" --name S2 \
              --create --out "$W/blob" 2>&1) || { echo "$out"; return 1; }
        echo "$out"
        kcv=$(printf '%s\n' "$out" | awk '$1 == "kcv" && NF == 2 { v = $2 } END { print v }')
        SOFTHSM2_CONF=$S2_CONF bash "$P/ceremony-host-b-import.sh" --token S2 --pin-source "$S2_PIN_FILE" \
            --blob "$W/blob" --expect-kcv "$kcv" 2>&1 || return 1
        SOFTHSM2_CONF=$S1_CONF bash "$P/ceremony-host-a-seal.sh" --token S1 --pin-source "$S1_PIN_FILE" \
            --expect-kcv "$kcv" 2>&1 || return 1
        echo "kcv $kcv"
    } > "$LAB/ceremony.log" 2>&1 || {
        echo "fleet_provision: the clone ceremony failed; its log:" >&2
        sed 's/^/  /' "$LAB/ceremony.log" >&2
        return 1
    }
    kcv=$(awk '$1 == "kcv" && NF == 2 { v = $2 } END { print v }' "$LAB/ceremony.log")
    FLEET_PROVISIONED="clone ceremony: S1 made the master, wrapped it for S2's transport key, sealed it (key check value $kcv on both)"
}
