#!/bin/bash
# test_engine_key.sh - nginx with its TLS private key in the token (libp11's
# pkcs11 engine: ssl_certificate_key "engine:pkcs11:pkcs11:...") and its
# ticket keys from the same token serves and resumes across two servers.
#
# Threat: a server key resting on disk next to a fleet whose ticket keys are
# protected.  The PEM is imported into each throwaway token (S1, S2) and
# deleted; nginx then holds no key file at all.  Two instances behind HAProxy
# round robin must serve (the token signs every full handshake) and resume
# each other's tickets (>= 99%, TLS 1.2 and 1.3).
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

ENGINE_SO=$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)
IMPORT=$HSMKEYS_BUILD/tests/t-import-key
why=$(ngx_missing)
[ -z "$why" ] && [ -z "$ENGINE_SO" ] && why="libp11's pkcs11 engine not installed (libengine-pkcs11-openssl)"
[ -z "$why" ] && [ ! -x "$IMPORT" ] && why="t-import-key not built (make tests)"
if [ -n "$why" ]; then tap_skip "nginx engine-key suite" "$why"; tap_done; exit; fi

lab_init
lab_host S1 fleet && lab_host S2 fleet && mkdir -p "$LAB/pki"
tap_ok $? "two tokens with the same master"

# One RSA server key for the fleet, stored in both tokens, then deleted.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LAB/pki/rsa.pem" 2>/dev/null \
  && openssl req -x509 -key "$LAB/pki/rsa.pem" -out "$LAB/pki/cert.pem" -days 2 \
       -subj "/CN=$NGX_DOMAIN" -addext "subjectAltName=DNS:$NGX_DOMAIN" 2>/dev/null \
  && SOFTHSM2_CONF=$S1_CONF "$IMPORT" "$LAB_SOFTHSM_MODULE" S1 "$S1_PIN_FILE" "$LAB/pki/rsa.pem" tls-key 01 \
  && SOFTHSM2_CONF=$S2_CONF "$IMPORT" "$LAB_SOFTHSM_MODULE" S2 "$S2_PIN_FILE" "$LAB/pki/rsa.pem" tls-key 01
tap_ok $? "the server's RSA key is stored in both tokens (label tls-key)"
rm -f "$LAB/pki/rsa.pem"
[ -f "$LAB/pki/cert.pem" ] && ! ls "$LAB"/pki/*.pem | grep -v cert.pem
tap_ok $? "no private key file remains on disk"

# libp11's engine, told which PKCS#11 module to use (production: the same
# section in the OpenSSL configuration nginx reads).
cat > "$LAB/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $LAB_SOFTHSM_MODULE
init = 1
CNF
export OPENSSL_CONF=$LAB/openssl.cnf

P=$(lab_port)
key_uri() { echo "engine:pkcs11:pkcs11:token=$1;object=tls-key;type=private?pin-source=$2"; }
ngx_conf S1 127.0.0.11 "$P" "$S1_URI" "" "$(key_uri S1 "$S1_PIN_FILE")"
ngx_conf S2 127.0.0.12 "$P" "$S2_URI" "" "$(key_uri S2 "$S2_PIN_FILE")"
ngx_test S1 S1
rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$LAB/S1/t.out"
tap_ok $rc "nginx -t loads the private key through the pkcs11 engine"

ngx_start S1 S1 && ngx_start S2 S2 && lb_start LB 127.0.0.10 "$P" "127.0.0.11:$P" "127.0.0.12:$P"
tap_ok $? "S1 and S2 (key and ticket master in their tokens) and HAProxy are up"

# A full handshake signed by the token key verifies against the certificate.
out=$(OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.11:$P" -servername "$NGX_DOMAIN" \
        -CAfile "$LAB/pki/cert.pem" -verify_return_error -brief </dev/null 2>&1)
echo "$out" | grep -q "Verification: OK"
rc=$?; [ $rc = 0 ] || echo "$out" | sed 's/^/# /'
tap_ok $rc "a full handshake with S1 verifies against the fleet certificate"

for v in 1.2 1.3; do
    probe_rate -n 100 "--tls$v" --cafile "$LAB/pki/cert.pem" --sni "$NGX_DOMAIN" "127.0.0.10:$P"
    fleet_ok
    tap_ok $? "TLS $v with the key in the token: >= 99% of reconnects resumed on the other server ($PROBE_RESUMED of $PROBE_RECONNECTS)"
done

! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert in the servers' error logs"
tap_done
