#!/bin/bash
# test_engine_reconnect.sh - libp11's engine (the server's TLS private key)
# and hsmkeys share one SoftHSM2 in each nginx worker; hsmkeys loses its
# session and its token lookup fails once while it reconnects (injected by
# the fault module, which only hsmkeys goes through).  hsmkeys must not
# C_Finalize the module to re-read it: the worker did not initialise it
# (C_Initialize after fork answered CKR_CRYPTOKI_ALREADY_INITIALIZED), and
# finalizing would close libp11's sessions, so full handshakes (signed by
# the token key) would fail from then on.
#
# Checks: full handshakes verify before and after the fault; the fault did
# happen (the workers looked the token up again); no worker called
# C_Finalize through hsmkeys.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

ENGINE_SO=$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)
IMPORT=$HSMKEYS_BUILD/tests/t-import-key
FAULTMOD=$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so
why=$(ngx_missing)
[ -z "$why" ] && [ -z "$ENGINE_SO" ] && why="libp11's pkcs11 engine not installed (libengine-pkcs11-openssl)"
[ -z "$why" ] && [ ! -x "$IMPORT" ] && why="t-import-key not built (make tests)"
[ -z "$why" ] && [ ! -f "$FAULTMOD" ] && why="$FAULTMOD not built (make)"
if [ -n "$why" ]; then tap_skip "nginx engine key + hsmkeys reconnect" "$why"; tap_done; exit; fi

lab_init
lab_host S1 fleet && mkdir -p "$LAB/pki"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LAB/pki/rsa.pem" 2>/dev/null \
  && openssl req -x509 -key "$LAB/pki/rsa.pem" -out "$LAB/pki/cert.pem" -days 2 \
       -subj "/CN=$NGX_DOMAIN" -addext "subjectAltName=DNS:$NGX_DOMAIN" 2>/dev/null \
  && SOFTHSM2_CONF=$S1_CONF "$IMPORT" "$LAB_SOFTHSM_MODULE" S1 "$S1_PIN_FILE" "$LAB/pki/rsa.pem" tls-key 01
tap_ok $? "the server's RSA key and the ticket master are in token S1"
rm -f "$LAB/pki/rsa.pem"

# libp11 uses SoftHSM2 directly; hsmkeys goes through the fault module,
# which forwards to the same SoftHSM2 instance in the process.
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
cp "$FAULTMOD" "$LAB/faultmod.so"
: > "$LAB/fault.rules"; chmod 0644 "$LAB/fault.rules"
mkdir -p "$LAB/counts"
export HSMKEYS_FAULT_REAL_MODULE=$LAB_SOFTHSM_MODULE HSMKEYS_FAULT_CONTROL=$LAB/fault.rules \
       HSMKEYS_FAULT_COUNTS=$LAB/counts/%p

P=$(lab_port)
NGX_EPOCH=2s NGX_LIFETIME=10s
URI="pkcs11:token=S1;object=hsmkeys-master?module-path=$LAB/faultmod.so&pin-source=$S1_PIN_FILE"
ngx_conf S1 127.0.0.1 "$P" "$URI" "" "engine:pkcs11:pkcs11:token=S1;object=tls-key;type=private?pin-source=$S1_PIN_FILE"
sed -i 's/^env OPENSSL_CONF;/env OPENSSL_CONF;\nenv HSMKEYS_FAULT_REAL_MODULE;\nenv HSMKEYS_FAULT_CONTROL;\nenv HSMKEYS_FAULT_COUNTS;/' \
    "$LAB/S1/nginx.conf"
ngx_start S1 S1
tap_ok $? "nginx is up: TLS key through libp11, tickets through hsmkeys (fault module)"

# full N: N full handshakes (no ticket), each verified against the certificate.
full() {
    local i ok=0
    for i in $(seq 1 "$1"); do
        OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.1:$P" -servername "$NGX_DOMAIN" \
            -CAfile "$LAB/pki/cert.pem" -verify_return_error -no_ticket -brief </dev/null 2>&1 |
            grep -q "Verification: OK" && ok=$((ok + 1))
    done
    echo "$ok"
}
workers() { pgrep -P "$(lab_pid S1)" | tr '\n' ' '; }
count_of() {   # count_of FN PID: the fault module's count of FN in that worker
    awk -v f="$1" '$1 == f { print $2 }' "$LAB/counts/$2" 2>/dev/null | tail -1
}
n=$(full 10)
[ "$n" = 10 ]; tap_ok $? "before the fault: $n of 10 full handshakes signed by the token key verify"

# Let every worker derive once, then note its token lookups so far.
for _ in 1 2 3; do full 2 >/dev/null; sleep 1; done
declare -A before
for w in $(workers); do before[$w]=$(count_of C_GetSlotList "$w"); done

# The fault: hsmkeys' session is lost once (its next HMAC), and the token
# lookup of the reconnect fails once.
printf 'C_Sign fail CKR_SESSION_HANDLE_INVALID 1\nC_GetSlotList fail CKR_DEVICE_ERROR 1\n' > "$LAB/fault.rules"
for _ in $(seq 1 8); do full 2 >/dev/null; sleep 1; done

relooked=0 finalized=0
for w in $(workers); do
    a=$(count_of C_GetSlotList "$w"); f=$(count_of C_Finalize "$w")
    echo "# worker $w: C_GetSlotList ${before[$w]:-0} -> ${a:-0}, C_Finalize ${f:-0}"
    [ "${a:-0}" -gt "${before[$w]:-0}" ] && relooked=$((relooked + 1))
    [ "${f:-0}" -gt 0 ] && finalized=$((finalized + 1))
done
[ "$relooked" -ge 1 ]; tap_ok $? "the fault happened: $relooked worker(s) looked the token up again"
[ "$finalized" = 0 ]; tap_ok $? "no worker finalized the module it shares with libp11 ($finalized did)"
n=$(full 10)
[ "$n" = 10 ]; tap_ok $? "after the reconnect: $n of 10 full handshakes still signed by the token key"
: > "$LAB/fault.rules"
! grep -E '\[(emerg|alert)\]' "$LAB/S1/error.log"
tap_ok $? "no emergency or alert in the error log"
grep -E 'hsmkeys' "$LAB/S1/error.log" | tail -4 | sed 's/^/# /'
tap_done
