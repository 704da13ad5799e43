#!/bin/bash
# test_apache_tlskey.sh - Apache with its TLS private key in the same token
# as the ticket master, through libp11's pkcs11 engine (SSLCryptoDevice
# pkcs11 + a pkcs11: URI as SSLCertificateKeyFile): no key of the server
# rests on disk.  Each host generates its key inside its token
# (non-extractable); the certificate is signed by the token.  Two such
# servers behind HAProxy serve and resume each other's tickets.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

ENGINE_SO=$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)
if ! ap_have_prereqs; then
    tap_skip "apache with its TLS key in the token" "$AP_MISSING"
    tap_done; exit
fi
if [ -z "$ENGINE_SO" ] || ! command -v pkcs11-tool >/dev/null; then
    tap_skip "apache with its TLS key in the token" "libengine-pkcs11-openssl or opensc missing"
    tap_done; exit
fi
lab_init
MOD=/usr/lib/softhsm/libsofthsm2.so
lab_host S1 fleet && lab_host S2 fleet
tap_ok $? "two throwaway tokens with the same master"

# The engine, told which PKCS#11 module to use (else it takes p11-kit-proxy).
cat > "$LAB/openssl-pkcs11.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MOD
init = 0
EOF
mkdir -p "$LAB/tls"
for h in S1 S2; do
    conf=$(eval echo "\$${h}_CONF"); pin=$(eval echo "\$${h}_PIN_FILE")
    # Key pair generated inside the token; the PIN is typed on pkcs11-tool's
    # terminal, never in argv or the environment.
    SOFTHSM2_CONF=$conf python3 "$HSMKEYS_ROOT/tests/apache/p11tool_pin.py" "$pin" \
        pkcs11-tool --module "$MOD" --token-label "$h" --login --keypairgen \
        --key-type EC:prime256v1 --label tls --id 01 >"$LAB/keygen-$h.log" 2>&1
    tap_ok $? "$h: TLS key pair generated inside the token"
    SOFTHSM2_CONF=$conf python3 "$HSMKEYS_ROOT/tests/apache/p11tool_pin.py" "$pin" \
        pkcs11-tool --module "$MOD" --token-label "$h" --login -O --type privkey >"$LAB/keys-$h.log" 2>&1
    grep -q "never extractable" "$LAB/keys-$h.log" && grep -q "sensitive" "$LAB/keys-$h.log"
    tap_ok $? "$h: the TLS private key is sensitive and never extractable"
    SOFTHSM2_CONF=$conf OPENSSL_CONF=$LAB/openssl-pkcs11.cnf openssl req -new -x509 \
        -engine pkcs11 -keyform engine -key "pkcs11:token=$h;object=tls;type=private?pin-source=$pin" \
        -subj "/CN=$AP_SERVERNAME" -addext "subjectAltName=DNS:$AP_SERVERNAME" -days 2 \
        -out "$LAB/tls/$h-cert.pem" >"$LAB/req-$h.log" 2>&1
    tap_ok $? "$h: certificate signed by the token's key"
    ap_give_host_to_user "$h"
done

LB_PORT=$(lab_port); S_PORT=$(lab_port)
AP_ENV="OPENSSL_CONF=$LAB/openssl-pkcs11.cnf"
for h in S1 S2; do
    ip=127.0.0.11; [ $h = S2 ] && ip=127.0.0.12
    AP_CERT=$LAB/tls/$h-cert.pem \
    AP_KEY="pkcs11:token=$h;object=tls;type=private?pin-source=$LAB/$h/pin" \
        ap_write_conf "$h" "$ip" "$S_PORT" event "$h" "SSLCryptoDevice pkcs11"
done
! grep -rlq "PRIVATE KEY" "$LAB/tls" "$LAB"/apache-S1 "$LAB"/apache-S2
tap_ok $? "no private key file anywhere in the servers' configuration"

ap_test S1 S1
rc=$?; echo "$AP_OUT" | sed 's/^/# /'
[ $rc = 0 ]
tap_ok $? "apache2 -t accepts SSLCryptoDevice pkcs11 with a pkcs11: key URI"

ap_start S1 S1; ap_start S2 S2
ap_wait S1 127.0.0.11 "$S_PORT" && ap_wait S2 127.0.0.12 "$S_PORT"
tap_ok $? "S1 and S2 serve TLS with their keys in the tokens"

# The served certificate is the one of the token's key: full handshakes
# were signed by the token.
for h in S1 S2; do
    ip=127.0.0.11; [ $h = S2 ] && ip=127.0.0.12
    openssl s_client -connect "$ip:$S_PORT" -servername "$AP_SERVERNAME" </dev/null 2>/dev/null \
        | openssl x509 -noout -fingerprint -sha256 >"$LAB/served-$h.txt" 2>/dev/null
    [ -s "$LAB/served-$h.txt" ] && diff -q "$LAB/served-$h.txt" \
        <(openssl x509 -in "$LAB/tls/$h-cert.pem" -noout -fingerprint -sha256) >/dev/null
    tap_ok $? "$h serves the certificate of its token key"
done

ap_lb 127.0.0.10 "$LB_PORT" "127.0.0.11:$S_PORT" "127.0.0.12:$S_PORT"
for v in 1.2 1.3; do
    ap_probe --tls$v -n 100 "127.0.0.10:$LB_PORT"
    ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ] && [ "$AP_BACKENDS" = 2 ]
    tap_ok $? "TLS $v: $AP_RESUMED of $AP_OFFERED reconnects resumed across S1/S2 with keys in the tokens"
done
tap_done
