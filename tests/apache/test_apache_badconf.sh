#!/bin/bash
# test_apache_badconf.sh - a bad mod_hsmkeys configuration fails
# `apache2 -t` (and startup) with a message that names the problem: malformed
# or wrong URI, missing token, PIN file with unsafe mode or not readable by
# the Apache User, wrong PIN, token not usable by the User, missing or bad
# directives.  Each case asserts the exit status and the message text.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

if ! ap_have_prereqs; then
    tap_skip "apache bad configuration" "$AP_MISSING"
    tap_done; exit
fi
lab_init
lab_host S1 fleet
tap_ok $? "throwaway token S1"
ap_give_host_to_user S1
ap_tls_cert
PORT=$(lab_port)
MOD=/usr/lib/softhsm/libsofthsm2.so
uri_with() { echo "pkcs11:token=$1;object=$2?module-path=$MOD&pin-source=$3"; }

# expect_t DESCRIPTION REGEX... : apache2 -t fails and prints every REGEX.
expect_t() {
    local what=$1 re r=0; shift
    ap_test bad S1
    local rc=$?
    if [ $rc = 0 ]; then r=1; echo "# apache2 -t passed"; fi
    for re in "$@"; do
        grep -qE -- "$re" <<<"$AP_OUT" || { r=1; echo "# missing: $re"; }
    done
    [ $r = 0 ] || echo "$AP_OUT" | sed 's/^/#   /'
    tap_ok $r "apache2 -t fails: $what"
}

ap_write_conf bad 127.0.0.11 "$PORT" event S1
ap_test bad S1
[ $? = 0 ] && grep -q "Syntax OK" <<<"$AP_OUT"
tap_ok $? "control: the good configuration passes apache2 -t"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 'HSMKeysURI "token=S1;object=hsmkeys-master"'
expect_t "malformed URI, with file and line" "Syntax error on line [0-9]+ of $LAB/apache-bad/httpd.conf" \
    "HSMKeysURI: .*HSMKEYS_E_URI"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 \
    "HSMKeysURI \"pkcs11:token=S1;object=hsmkeys-master?module-path=$MOD&pin-value=1234\""
expect_t "PIN inside the URI (pin-value) is refused" "HSMKeysURI: the URI carries pin-value="

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 no-such-master "$S1_PIN_FILE")\""
expect_t "URI names no master on the token" "mod_hsmkeys: server $AP_SERVERNAME:443 .*cannot use the ticket master" \
    "HSMKEYS_E_NO_MASTER"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with NOTOKEN hsmkeys-master "$S1_PIN_FILE")\""
expect_t "URI names a missing token" "cannot use the ticket master" "HSMKEYS_E_NO_TOKEN"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 hsmkeys-master "$LAB/S1/no-such-pin")\""
expect_t "PIN file missing" "cannot open PIN file $LAB/S1/no-such-pin" "HSMKEYS_E_PIN"

cp -p "$S1_PIN_FILE" "$LAB/S1/pin-open" && chmod 0644 "$LAB/S1/pin-open"
ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 hsmkeys-master "$LAB/S1/pin-open")\""
expect_t "PIN file readable by others (0644)" "PIN file $LAB/S1/pin-open is accessible by group or others" \
    "HSMKEYS_E_PIN"

cp "$S1_PIN_FILE" "$LAB/S1/pin-root" && chown root:root "$LAB/S1/pin-root" && chmod 0600 "$LAB/S1/pin-root"
ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 hsmkeys-master "$LAB/S1/pin-root")\""
expect_t "PIN file the Apache User cannot read (root, 0600)" "as User $AP_USER" \
    "cannot open PIN file $LAB/S1/pin-root: Permission denied" "HSMKEYS_E_PIN"

(umask 077; printf 'wrong-pin' > "$LAB/S1/pin-wrong"); chown "$AP_USER" "$LAB/S1/pin-wrong"
ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 hsmkeys-master "$LAB/S1/pin-wrong")\""
expect_t "wrong PIN" "HSMKEYS_E_LOGIN"

ap_write_conf bad 127.0.0.11 "$PORT" event "" "HSMKeysTickets On" "HSMKeysURI \"$S1_URI\""
expect_t "HSMKeysDomain missing" "HSMKeysTickets On \\($LAB/apache-bad/httpd.conf:[0-9]+\\) needs HSMKeysDomain"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysEpoch soon"
expect_t "bad epoch length" "Syntax error on line" "HSMKeysEpoch: .*HSMKEYS_E_INVALID"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysLifetime 8d"
expect_t "ticket lifetime over 7 days" "HSMKeysLifetime: .*HSMKEYS_E_INVALID"

ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysForwardErasable On"
expect_t "HSMKeysForwardErasable On on a token without the chain" "holds no chain state" \
    "hsmkeys-tool create --forward-erasable" "HSMKEYS_E_NO_MASTER"

AP_NO_SSL=1 ap_write_conf bad 127.0.0.11 "$PORT" event S1
expect_t "HSMKeysTickets On without mod_ssl" "HSMKeysTickets On needs mod_ssl"

# The User cannot reach the token: its directory belongs to root alone.
chown root:root "$LAB/S1/tokens"; chmod 0700 "$LAB/S1/tokens"
ap_write_conf bad 127.0.0.11 "$PORT" event S1
expect_t "token directory not accessible by the Apache User" "as User $AP_USER" "HSMKEYS_E_"
ap_give_host_to_user S1

# Startup, not only -t, fails, and says why in the error log.
ap_write_conf bad 127.0.0.11 "$PORT" event S1 "HSMKeysURI \"$(uri_with S1 hsmkeys-master "$LAB/S1/pin-open")\""
setsid env SOFTHSM2_CONF="$S1_CONF" apache2 -f "$LAB/apache-bad/httpd.conf" -DFOREGROUND >"$LAB/bad-start.log" 2>&1 </dev/null &
lab_record_pid apache-bad $!
wait "$(lab_pid apache-bad)"; rc=$?
grep -q "HSMKEYS_E_PIN" "$LAB/apache-bad/logs/error.log" "$LAB/bad-start.log"
r=$?
[ $rc != 0 ] && [ $r = 0 ]
tap_ok $? "startup with an unsafe PIN file exits ($rc) and logs HSMKEYS_E_PIN"

# Tickets switched off in mod_ssl: the server starts, and says that the
# module has no effect.
ap_write_conf warn 127.0.0.11 "$PORT" event S1 "SSLSessionTickets off"
ap_start warn S1
ap_wait warn 127.0.0.11 "$PORT"
tap_ok $? "a server with SSLSessionTickets off starts"
grep -q "SSLSessionTickets off: HSMKeysTickets On .* has no effect" "$LAB/apache-warn/logs/error.log"
tap_ok $? "... and warns that HSMKeysTickets has no effect"
lab_stop apache-warn
tap_done
