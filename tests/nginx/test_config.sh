#!/bin/bash
# test_config.sh - "nginx -t" refuses bad hsmkeys configurations with a clear
# EMERG message that names the directive, the place and the cause.
#
# Threat: a server that starts anyway and silently issues tickets its peers
# cannot read (or none at all).  Each case asserts nginx -t's exit status and
# the message text; the good configuration passes, and a server without TLS
# ignores hsmkeys_tickets like it ignores other ssl_* settings.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
if [ -n "$why" ]; then tap_skip "nginx configuration suite" "$why"; tap_done; exit; fi

lab_init
lab_host S1 fleet && ngx_lab_init
tap_ok $? "token S1 with a master"
P=$(lab_port)
MOD=$LAB_SOFTHSM_MODULE
uri_with() { echo "pkcs11:token=${1};object=${2}?module-path=${3}&pin-source=${4}"; }

# expect_fail "what" REGEX: nginx -t on $LAB/B fails and prints REGEX (ERE).
expect_fail() {
    local what=$1 re=$2 rc
    ngx_test B S1; rc=$?
    if [ $rc != 0 ] && grep -Eq "$re" "$LAB/B/t.out"; then
        tap_ok 0 "nginx -t fails: $what"
    else
        sed 's/^/# /' "$LAB/B/t.out"
        tap_ok 1 "nginx -t fails: $what (status $rc, expected /$re/)"
    fi
    # no PIN in the message, whatever the case
    local pin; pin=$(cat "$S1_PIN_FILE")
    if grep -qF -- "$pin" "$LAB/B/t.out"; then tap_ok 1 "$what: message leaks the PIN"; fi
}

ngx_conf B 127.0.0.11 "$P" "$S1_URI"
ngx_test B S1
tap_ok $? "nginx -t passes with the good configuration"

ngx_conf B 127.0.0.11 "$P" "$(uri_with S1 no-such-key "$MOD" "$S1_PIN_FILE")"
expect_fail "wrong object in the URI" \
    '\[emerg\] .*"hsmkeys_uri" for the server with "hsmkeys_tickets on" in .*/B/nginx\.conf:[0-9]+: cannot open the ticket master: no secret key labelled "no-such-key".*\(HSMKEYS_E_NO_MASTER\)'

ngx_conf B 127.0.0.11 "$P" "$(uri_with absent hsmkeys-master "$MOD" "$S1_PIN_FILE")"
expect_fail "missing token" '\[emerg\] .*"hsmkeys_uri" .*no token matches the URI.*\(HSMKEYS_E_NO_TOKEN\)'

ngx_conf B 127.0.0.11 "$P" "$(uri_with S1 hsmkeys-master /nonexistent/libpkcs11.so "$S1_PIN_FILE")"
expect_fail "PKCS#11 module not found" '\[emerg\] .*"hsmkeys_uri" .*cannot load PKCS#11 module /nonexistent/libpkcs11\.so.*\(HSMKEYS_E_MODULE\)'

ngx_conf B 127.0.0.11 "$P" "https://example.com/key"
expect_fail "not a pkcs11: URI" '\[emerg\] .*invalid "hsmkeys_uri" .*not a PKCS#11 URI.*\(HSMKEYS_E_URI\)'

cp "$S1_PIN_FILE" "$LAB/pin-0644"; chmod 0644 "$LAB/pin-0644"
ngx_conf B 127.0.0.11 "$P" "$(uri_with S1 hsmkeys-master "$MOD" "$LAB/pin-0644")"
expect_fail "PIN file readable by others" '\[emerg\] .*"hsmkeys_uri" .*PIN file .*pin-0644 is accessible by group or others \(mode 0644\).*\(HSMKEYS_E_PIN\)'

ngx_conf B 127.0.0.11 "$P" "$(uri_with S1 hsmkeys-master "$MOD" "$LAB/no-pin-file")"
expect_fail "PIN file missing" '\[emerg\] .*"hsmkeys_uri" .*no-pin-file.*\(HSMKEYS_E_PIN\)'

(umask 077; printf 'not-the-pin' > "$LAB/pin-wrong")
ngx_conf B 127.0.0.11 "$P" "$(uri_with S1 hsmkeys-master "$MOD" "$LAB/pin-wrong")"
expect_fail "wrong PIN" '\[emerg\] .*"hsmkeys_uri" .*CKR_PIN_INCORRECT.*\(HSMKEYS_E_LOGIN\)'

ngx_conf B 127.0.0.11 "$P" "$S1_URI"
sed -i '/hsmkeys_domain/d' "$LAB/B/nginx.conf"
expect_fail "hsmkeys_domain not set" '\[emerg\] .*"hsmkeys_domain" is not set for the server with "hsmkeys_tickets on" in .*/B/nginx\.conf:[0-9]+'

ngx_conf B 127.0.0.11 "$P" "$S1_URI"
sed -i '/hsmkeys_uri/d' "$LAB/B/nginx.conf"
expect_fail "hsmkeys_uri not set" '\[emerg\] .*"hsmkeys_uri" is not set for the server with "hsmkeys_tickets on"'

ngx_conf B 127.0.0.11 "$P" "$S1_URI" "hsmkeys_lifetime 8d;"
expect_fail "lifetime above 7 days" '\[emerg\] .*"hsmkeys_lifetime" must lie between 1s and 7d'

ngx_conf B 127.0.0.11 "$P" "$S1_URI" "hsmkeys_epoch 0s;"
expect_fail "zero epoch" '\[emerg\] .*"hsmkeys_epoch" must be at least 1s'

ngx_conf B 127.0.0.11 "$P" "$S1_URI" "ssl_session_tickets off;"
expect_fail "tickets disabled" '\[emerg\] .*"hsmkeys_tickets on" in .*conflicts with "ssl_session_tickets off"'

head -c 80 /dev/urandom > "$LAB/ticket.key"; chmod 600 "$LAB/ticket.key"
ngx_conf B 127.0.0.11 "$P" "$S1_URI" "ssl_session_ticket_key $LAB/ticket.key;"
expect_fail "nginx's own ticket key file" '\[emerg\] .*conflicts with "ssl_session_ticket_key"'

ngx_conf B 127.0.0.11 "$P" "$S1_URI"
sed -i 's/hsmkeys_tickets on;/hsmkeys_tickets maybe;/' "$LAB/B/nginx.conf"
expect_fail "bad flag value" '\[emerg\] .*invalid value "maybe" in "hsmkeys_tickets" directive'

# A plain-HTTP server with hsmkeys_tickets inherited from http{} is fine.
ngx_conf B 127.0.0.11 "$P" "$S1_URI"
sed -i "s|^    server {|    hsmkeys_tickets on;\n    server { listen 127.0.0.11:$(lab_port); }\n    server {|" "$LAB/B/nginx.conf"
ngx_test B S1
rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$LAB/B/t.out"
tap_ok $rc "nginx -t passes with hsmkeys_tickets on inherited by a server without TLS"
tap_done
