#!/bin/bash
# test_adopt.sh - on SoftHSM2 and p11-kit-client.so, the parts of issue 12
# that need no TPM (test_tpm2_pkcs11.sh adopts real vendor-made keys):
# adopt's usage and refusals (the master policy, nothing changed), two keys
# of one generation (a distinct error from status and verify, non-zero
# exits), status failing when a server could not open what it shows, and
# the hints naming a module's environment (SOFTHSM2_CONF,
# P11_KIT_SERVER_ADDRESS) rather than init args.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
T=$HSMKEYS_BUILD/hsmkeys-tool
TC=$HSMKEYS_BUILD/tests/token-check
VALUE=$HSMKEYS_BUILD/tests/hk-value
MOD=/usr/lib/softhsm/libsofthsm2.so
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so
lab_init
lab_host A fleet
lab_host B fleet
ta() { SOFTHSM2_CONF=$A_CONF "$T" "$@" --token A --pin-source "$A_PIN_FILE"; }
tb() { SOFTHSM2_CONF=$B_CONF "$T" "$@" --token B --pin-source "$B_PIN_FILE"; }
expect_fail() {   # expect_fail DESC PATTERN CMD...: CMD exits non-zero and says PATTERN
    local desc=$1 pat=$2 out rc; shift 2
    out=$("$@" 2>&1); rc=$?
    if [ $rc != 0 ] && printf '%s\n' "$out" | grep -qiE -- "$pat"; then tap_ok 0 "$desc"
    else tap_ok 1 "$desc"; echo "# rc=$rc, wanted /$pat/, got:"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}

# adopt: usage and refusals.
expect_fail "adopt without --key-label/--key-id is a usage error" "needs --key-label" ta adopt
SOFTHSM2_CONF=$A_CONF "$T" adopt --token A --pin-source "$A_PIN_FILE" >/dev/null 2>&1
[ $? = 2 ]; tap_ok $? "... exit code 2"
expect_fail "adopt of a key that does not exist names the tools that list objects" "no secret key labelled 'nope'.*list-objects" \
    ta adopt --key-label nope
expect_fail "adopt: a malformed --key-id is refused" "expected the key's CKA_ID in hex" ta adopt --key-id 0g
SOFTHSM2_CONF=$A_CONF "$VALUE" unsafe "$MOD" A vendor-loose "$A_PIN_FILE" 5 >/dev/null
expect_fail "adopt refuses a key the master policy refuses (EXTRACTABLE without WRAP_WITH_TRUSTED)" \
    "refused, the key was not changed.*CKA_EXTRACTABLE without CKA_WRAP_WITH_TRUSTED.*hsmkeys-tool adopt" \
    ta adopt --key-label vendor-loose --activate-in 1d
n=$(ta verify 2>/dev/null | grep -c '^kcv'); [ "$n" = 1 ]
tap_ok $? "... and the master still has its one generation"
expect_fail "adopt: the key already a generation is refused" "already is generation 1" \
    ta adopt --key-label hsmkeys-master

# Two keys of one generation under the label (a foreign tool's doing).
SOFTHSM2_CONF=$B_CONF "$VALUE" unsafe "$MOD" B hsmkeys-master "$B_PIN_FILE" 1 >/dev/null
expect_fail "status names the duplicate generation and exits non-zero" "duplicate generation: .*generation 1" \
    tb status --domain example.com
out=$(tb status --domain example.com 2>&1); n=$(printf '%s\n' "$out" | grep -c '^  generation 1')
[ "$n" = 2 ]; tap_ok $? "... after listing both keys of generation 1 so one can be removed"
expect_fail "verify names the duplicate generation and exits non-zero" "duplicate generation: .*generation 1" \
    tb verify
out=$(SOFTHSM2_CONF=$B_CONF "$TC" open --uri "$B_URI" 2>&1)
printf '%s\n' "$out" | grep -q '^message=the token holds two masters of generation 1'
tap_ok $? "the library refuses it too (HSMKEYS_E_NO_MASTER with its own message)"

# status exits non-zero when its own server-side open fails.
lab_host C fleet
SOFTHSM2_CONF=$C_CONF "$VALUE" unsafe "$MOD" C hsmkeys-master "$C_PIN_FILE" 2 >/dev/null
out=$(SOFTHSM2_CONF=$C_CONF "$T" status --token C --pin-source "$C_PIN_FILE" --domain example.com 2>&1); rc=$?
[ $rc = 1 ] && printf '%s\n' "$out" | grep -q 'opening the master as a server would'
tap_ok $? "status exits 1 when the servers could not open what it shows (unsafe generation 2)"
SOFTHSM2_CONF=$A_CONF "$T" status --token A --pin-source "$A_PIN_FILE" --domain example.com >/dev/null 2>&1
tap_ok $? "control: status exits 0 on a good token"

# Hints: a module configured by its environment is named with its variables.
out=$(SOFTHSM2_CONF=$LAB/no-such.conf "$TC" open --uri "$A_URI" 2>&1)
printf '%s\n' "$out" | grep -q "^message=C_Initialize of .*libsofthsm2.so failed.*SOFTHSM2_CONF (set).*nginx 'env NAME;'.*envvars.*Environment=" &&
    ! printf '%s\n' "$out" | grep -qi 'init args\|module-args'
tap_ok $? "SoftHSM2 C_Initialize failure: names SOFTHSM2_CONF and how servers pass it, not init args"
printf '%s\n' "$out" | sed -n 's/^message=/# /p'
if [ -r "$CLIENT" ]; then
    out=$(P11_KIT_SERVER_ADDRESS=unix:path=$LAB/no-server "$TC" open \
          --uri "pkcs11:token=A;object=hsmkeys-master?module-path=$CLIENT&pin-source=$A_PIN_FILE" 2>&1)
    printf '%s\n' "$out" | grep -q "^message=no token matches the URI in module .*p11-kit-client.so.*P11_KIT_SERVER_ADDRESS (set).*p11-kit server"
    tap_ok $? "p11-kit-client.so without a server: 'no token matches' names P11_KIT_SERVER_ADDRESS"
    out=$(env -u P11_KIT_SERVER_ADDRESS XDG_RUNTIME_DIR=$LAB/none "$TC" open \
          --uri "pkcs11:token=A;object=hsmkeys-master?module-path=$CLIENT&pin-source=$A_PIN_FILE" 2>&1)
    printf '%s\n' "$out" | grep -q "P11_KIT_SERVER_ADDRESS (not set in this process)"
    tap_ok $? "... and says when it is not set"
else
    tap_skip "p11-kit-client.so hint" "$CLIENT absent (apt-get install p11-kit)"
fi
tap_done
