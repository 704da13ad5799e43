#!/bin/bash
# test_sni.sh - two name-based virtual servers on one TLS address, each with
# its own ticket domain, on two nginx servers behind HAProxy round robin.
#
# Threat: OpenSSL 3.0 decrypts a ticket before nginx's servername callback
# picks the virtual server, so without a per-connection choice the default
# server's keys decrypt and the virtual server's keys encrypt: the virtual
# server resumes nothing (0%), and a ticket of one domain could be judged by
# another's keys.  Here each virtual server resumes its own tickets across
# the fleet (>= 99%, TLS 1.2 and 1.3, every resumption on the other server),
# a ticket of one offered to the other gets a full handshake, and the
# configurations that cannot work fail "nginx -t" with what to change.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
if [ -n "$why" ]; then tap_skip "nginx SNI suite" "$why"; tap_done; exit; fi

lab_init
A=a.hsmkeys.test B=b.hsmkeys.test
mk_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$LAB/pki/$1.key" -out "$LAB/pki/$1.pem" -days 2 -subj "/CN=$1" \
        -addext "subjectAltName=DNS:$1,DNS:*.$1" >/dev/null 2>&1 && chmod 600 "$LAB/pki/$1.key"
}
lab_host S1 fleet && lab_host S2 fleet && mkdir -p "$LAB/pki" && mk_cert $A && mk_cert $B
tap_ok $? "two tokens with the same master, a certificate per virtual server"

# sni_conf NAME IP PORT URI A_ON B_ON: default server a.* and virtual server
# b.* (exact, wildcard and regex names) on one address, each with its own
# domain.
sni_conf() {
    local name=$1 ip=$2 port=$3 uri=$4 a_on=$5 b_on=$6 d=$LAB/$1
    mkdir -p "$d/tmp"
    cat > "$d/nginx.conf" <<CONF
load_module $NGX_HTTP_MOD;
daemon off;
worker_processes 2;
user root;
pid $d/nginx.pid;
error_log $d/error.log info;
env SOFTHSM2_CONF;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    hsmkeys_uri   "$uri";
    hsmkeys_epoch 1h;

    server {
        listen $ip:$port ssl default_server;
        server_name $A;
        ssl_certificate     $LAB/pki/$A.pem;
        ssl_certificate_key $LAB/pki/$A.key;
        hsmkeys_tickets $a_on;
        hsmkeys_domain  $A;
        location / { add_header X-Server $name-a always; return 200 "server: $name-a\n"; }
    }
    server {
        listen $ip:$port ssl;
        server_name $B *.$B ~^c[0-9]+\.hsmkeys\.test\$;
        ssl_certificate     $LAB/pki/$B.pem;
        ssl_certificate_key $LAB/pki/$B.key;
        hsmkeys_tickets $b_on;
        hsmkeys_domain  $B;
        location / { add_header X-Server $name-b always; return 200 "server: $name-b\n"; }
    }
}
CONF
}

# Configurations that cannot work, or that leave a server without tickets.
P=$(lab_port)
sni_conf T 127.0.0.11 "$P" "$S1_URI" off on
ngx_test T S1; rc=$?
if [ $rc != 0 ] && grep -Eq '\[emerg\] .*"hsmkeys_tickets on" in .*/T/nginx\.conf:[0-9]+ is set for a server on 127\.0\.0\.11:'"$P"', but not for that address.s default server \(.*/T/nginx\.conf:[0-9]+\).*set "hsmkeys_tickets on" \(with its own "hsmkeys_domain"\) in the default server too' "$LAB/T/t.out"; then
    tap_ok 0 "nginx -t fails when a virtual server has hsmkeys_tickets on and the address's default server off, and says what to change"
else
    sed 's/^/# /' "$LAB/T/t.out"; tap_ok 1 "nginx -t fails for hsmkeys on in a virtual server only (status $rc)"
fi
sni_conf T 127.0.0.11 "$P" "$S1_URI" on off
ngx_test T S1; rc=$?
grep -Eq '\[warn\] .*the server "'"$B"'" in .*/T/nginx\.conf:[0-9]+ on 127\.0\.0\.11:'"$P"' has "hsmkeys_tickets" off while the address.s default server has it on: it issues and resumes no session tickets' "$LAB/T/t.out"
w=$?
[ $rc = 0 ] && [ $w = 0 ]
r=$?; [ $r = 0 ] || sed 's/^/# /' "$LAB/T/t.out"
tap_ok $r "nginx -t passes, with a warning naming it, when a virtual server has hsmkeys_tickets off under a default server with it on"

sni_conf S1 127.0.0.11 "$P" "$S1_URI" on on
sni_conf S2 127.0.0.12 "$P" "$S2_URI" on on
ngx_test S1 S1; rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$LAB/S1/t.out"
tap_ok $rc "nginx -t passes with both virtual servers on, each with its own hsmkeys_domain"
ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.10 "$P" "127.0.0.11:$P" "127.0.0.12:$P"
tap_ok $? "S1 and S2 (2 workers each, two virtual servers) and HAProxy round robin are up"
LBADDR=127.0.0.10:$P

# who NAME: probe 4 connections; prints the backends that answered and the
# domain tags (key name bytes 1..9: master and domain) of the tickets issued.
who() {
    "$PROBE" --quiet -n 4 --sni "$1" --json "$LAB/who.json" "$LBADDR" >/dev/null 2>&1
    python3 - "$LAB/who.json" <<'PY'
import json, sys
conns = json.load(open(sys.argv[1]))["connections"]
print(" ".join(sorted({c["backend"] for c in conns if c["backend"]})),
      " ".join(sorted({c["ticket_name"][2:20] for c in conns if c.get("ticket_name")})))
PY
}
read -r _ _ TAG_A < <(who $A)
read -r _ _ TAG_B < <(who $B)
[ -n "$TAG_A" ] && [ -n "$TAG_B" ] && [ "$TAG_A" != "$TAG_B" ]
tap_ok $? "a.* and b.* issue tickets under different domain tags ($TAG_A, $TAG_B)"

# nginx's wildcard, regex, case and trailing-dot rules pick virtual server
# b; the selector must pick b's domain for the tickets too.
OTHER_NAMES="www.$B c7.hsmkeys.test WWW.B.HSMKEYS.TEST."
for h in $OTHER_NAMES; do
    read -r b1 b2 tags < <(who "$h")
    [ "$b1 $b2" = "S1-b S2-b" ] && [ "$tags" = "$TAG_B" ]
    tap_ok $? "the name $h reaches virtual server b on both servers ($b1 $b2) and gets b's tickets ($tags)"
done

for v in 1.2 1.3; do
    for h in $A $B; do
        probe_rate -n 200 "--tls$v" --sni "$h" "$LBADDR"
        fleet_ok
        tap_ok $? "TLS $v, server name $h: >= 99% of 199 reconnects resumed on the other server ($PROBE_RESUMED resumed, $PROBE_CROSS cross)"
    done
    for h in $OTHER_NAMES; do
        probe_rate -n 100 "--tls$v" --sni "$h" "$LBADDR"
        fleet_ok
        tap_ok $? "TLS $v, server name $h (virtual server b): >= 99% of 99 reconnects resumed on the other server ($PROBE_RESUMED resumed)"
    done
done

# A ticket of one virtual server offered to the other (through the LB, so
# on the other nginx): a full handshake; offered to its own: resumed.
# s_client -sess_out is written once the server's tickets arrived: send a
# request and read the answer first.
sess() { # sess VERSION NAME OUTFILE [INFILE]: prints "New" or "Reused"
    local in=()
    [ -n "${4:-}" ] && in=(-sess_in "$4")
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "$LBADDR" "-tls$1" \
        -servername "$2" -sess_out "$3" "${in[@]}" -ign_eof 2>/dev/null | grep -Eo '^(New|Reused),' | head -1 | tr -d ,
}
for v in 1_2 1_3; do
    sess $v $A "$LAB/a.$v.sess" >/dev/null
    own=$(sess $v $A "$LAB/a2.$v.sess" "$LAB/a.$v.sess")
    sess $v $A "$LAB/a3.$v.sess" >/dev/null
    other=$(sess $v $B "$LAB/b.$v.sess" "$LAB/a3.$v.sess")
    [ "$own" = Reused ] && [ "$other" = New ]
    tap_ok $? "TLS ${v/_/.}: a.*'s ticket resumes on a.* ($own) and gets a full handshake on b.* ($other)"
done

! grep -E '\[(emerg|alert|crit)\]|\[error\].*hsmkeys' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert and no hsmkeys error in the servers' error logs"
tap_done
