#!/bin/bash
# test_apache_sni.sh - two name-based virtual hosts on one TLS address, each
# with its own ticket domain, on two Apache httpd (event MPM) behind HAProxy
# round robin.
#
# Threat: tickets of one virtual host judged by another's keys, virtual
# hosts that resume nothing across the fleet, and virtual hosts whose
# tickets fall back to the first virtual host's local random keys.  mod_ssl
# switches to the named virtual host in its client_hello callback, before
# OpenSSL decrypts the ticket; the hsmkeys callback then keeps the virtual
# host's context for the whole connection.  Here each virtual host resumes
# its own tickets across the fleet (>= 99%, TLS 1.2 and 1.3), a ticket of
# one offered to the other gets a full handshake, and HSMKeysTickets On in a
# virtual host whose address's first virtual host has it Off fails
# `apache2 -t` with what to change.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache name-based virtual hosts" "$AP_MISSING"
    tap_done; exit
fi
lab_init
A=a.fleet.test B=b.fleet.test
lab_host S1 fleet && lab_host S2 fleet
tap_ok $? "two throwaway tokens with the same master"
ap_give_host_to_user S1; ap_give_host_to_user S2
mkdir -p "$LAB/tls"
for n in $A $B; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$LAB/tls/$n.key" -out "$LAB/tls/$n.pem" -days 2 -subj "/CN=$n" \
        -addext "subjectAltName=DNS:$n,DNS:*.$n" >/dev/null 2>&1 || break
done
tap_ok $? "a certificate per virtual host"

LB_PORT=$(lab_port); S_PORT=$(lab_port)
# vhost_conf NAME IP HOST A_ON B_ON: the base configuration without a main
# TLS server, then <VirtualHost> a.* (first: the address's default) and b.*
# (ServerAlias with a wildcard), each with its own HSMKeysDomain.
vhost_conf() {
    local name=$1 ip=$2 host=$3 a_on=$4 b_on=$5 uri
    uri=$(eval echo "\$${host}_URI")
    AP_NO_SSL=1 ap_write_conf "$name" "$ip" "$S_PORT" event ""
    sed -i '/^Header always set X-Server/d' "$LAB/apache-$name/httpd.conf"
    cat >> "$LAB/apache-$name/httpd.conf" <<CONF
LoadModule ssl_module $AP_MODDIR/mod_ssl.so
LogFormat "%P %{SSL_PROTOCOL}x %{SSL_SESSION_RESUMED}x %{Host}i" hsmk
CustomLog $LAB/apache-$name/logs/access.log hsmk
HSMKeysURI "$uri"
HSMKeysEpoch 1h
HSMKeysLifetime 2h
<VirtualHost $ip:$S_PORT>
    ServerName $A:443
    SSLEngine on
    SSLCertificateFile $LAB/tls/$A.pem
    SSLCertificateKeyFile $LAB/tls/$A.key
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    HSMKeysTickets $a_on
    HSMKeysDomain $A
    Header always set X-Server $name-a
</VirtualHost>
<VirtualHost $ip:$S_PORT>
    ServerName $B:443
    ServerAlias *.$B
    SSLEngine on
    SSLCertificateFile $LAB/tls/$B.pem
    SSLCertificateKeyFile $LAB/tls/$B.key
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    HSMKeysTickets $b_on
    HSMKeysDomain $B
    Header always set X-Server $name-b
</VirtualHost>
CONF
}

vhost_conf T 127.0.0.11 S1 Off On
ap_test T S1; rc=$?
if [ $rc != 0 ] && grep -Eq "mod_hsmkeys: virtual host $B \(.*httpd\.conf:[0-9]+\) on 127\.0\.0\.11:$S_PORT has HSMKeysTickets On \(.*\), but the first virtual host of that address, $A \(.*httpd\.conf:[0-9]+\), has not.*set HSMKeysTickets On \(with its own HSMKeysDomain\) in $A too" <<<"$AP_OUT"; then
    tap_ok 0 "apache2 -t fails when a virtual host has HSMKeysTickets On and its address's first one Off, and says what to change"
else
    echo "$AP_OUT" | sed 's/^/# /'; tap_ok 1 "apache2 -t fails for HSMKeysTickets On in a later virtual host only (status $rc)"
fi
vhost_conf T 127.0.0.11 S1 On Off
ap_test T S1; rc=$?
[ $rc = 0 ] && grep -q "Syntax OK" <<<"$AP_OUT" \
    && grep -Eq "mod_hsmkeys: virtual host $B .* has HSMKeysTickets Off while the first virtual host of that address, $A, has it On: it issues and resumes no session tickets" <<<"$AP_OUT"
r=$?; [ $r = 0 ] || echo "$AP_OUT" | sed 's/^/# /'
tap_ok $r "apache2 -t passes, with a warning naming it, for HSMKeysTickets Off under a first virtual host with it On"

vhost_conf S1 127.0.0.11 S1 On On
vhost_conf S2 127.0.0.12 S2 On On
ap_test S1 S1; rc=$?
[ $rc = 0 ] && grep -q "Syntax OK" <<<"$AP_OUT"
r=$?; [ $r = 0 ] || echo "$AP_OUT" | sed 's/^/# /'
tap_ok $r "apache2 -t passes with both virtual hosts On, each with its own HSMKeysDomain"
ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.11 "$S_PORT" && ap_wait S2 127.0.0.12 "$S_PORT" \
    && ap_lb 127.0.0.10 "$LB_PORT" "127.0.0.11:$S_PORT" "127.0.0.12:$S_PORT"
tap_ok $? "S1 and S2 (two virtual hosts each) and HAProxy round robin are up"
LBADDR=127.0.0.10:$LB_PORT

ap_probe -n 4 --sni "www.$B" "$LBADDR"
grep -q '"S1-b"' "$LAB/probe-$AP_RUN.json" && grep -q '"S2-b"' "$LAB/probe-$AP_RUN.json" \
    && ! grep -q -- '-a"' "$LAB/probe-$AP_RUN.json"
tap_ok $? "the alias www.$B reaches virtual host b on both servers"

for v in 1.2 1.3; do
    for h in $A $B "www.$B"; do
        ap_probe -n 200 "--tls$v" --sni "$h" "$LBADDR"
        ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ] && [ "$AP_BACKENDS" = 2 ]
        tap_ok $? "TLS $v, server name $h: $AP_RESUMED of $AP_OFFERED reconnects resumed across S1/S2 (>= 99%)"
    done
done

# One virtual host's ticket offered to the other, through the LB.
sess() { # sess VERSION NAME OUTFILE [INFILE]: prints "New" or "Reused"
    local in=()
    [ -n "${4:-}" ] && in=(-sess_in "$4")
    printf 'GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" | timeout 10 openssl s_client \
        -connect "$LBADDR" "-tls$1" -servername "$2" -sess_out "$3" "${in[@]}" -ign_eof 2>/dev/null \
        | grep -Eo '^(New|Reused),' | head -1 | tr -d ,
}
for v in 1_2 1_3; do
    sess $v $A "$LAB/a.$v.sess" >/dev/null
    own=$(sess $v $A "$LAB/a2.$v.sess" "$LAB/a.$v.sess")
    sess $v $A "$LAB/a3.$v.sess" >/dev/null
    other=$(sess $v $B "$LAB/b.$v.sess" "$LAB/a3.$v.sess")
    [ "$own" = Reused ] && [ "$other" = New ]
    tap_ok $? "TLS ${v/_/.}: a.*'s ticket resumes on a.* ($own) and gets a full handshake on b.* ($other)"
done

! grep -E "\[(emerg|alert|crit)\]|\[hsmkeys:error\]" "$LAB/apache-S1/logs/error.log" "$LAB/apache-S2/logs/error.log"
tap_ok $? "no alert and no hsmkeys error in the servers' error logs"
tap_done
