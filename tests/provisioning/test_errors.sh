#!/bin/bash
# test_errors.sh - hsmkeys-tool refuses dangerous or inconsistent states with
# an error that says what to do, and leaves no half-made object behind:
# untrusted wrap key, corrupted blob, blob for another token, wrong PIN,
# missing SO PIN, loose PIN file, PIN on the command line, sealing before
# cloning, duplicate generation, past activation, extractable master without
# wrap-with-trusted, test import without its flag.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
T=$HSMKEYS_BUILD/hsmkeys-tool
VALUE=$HSMKEYS_BUILD/tests/hk-value
MOD=/usr/lib/softhsm/libsofthsm2.so
lab_init
fp_of() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
lab_host A none
lab_host B none
lab_host C none
W=$LAB/work; mkdir -p "$W"
ta() { SOFTHSM2_CONF=$A_CONF "$T" "$@" --token A; }
tb() { SOFTHSM2_CONF=$B_CONF "$T" "$@" --token B; }
tc() { SOFTHSM2_CONF=$C_CONF "$T" "$@" --token C; }
# expect_fail DESC PATTERN CMD...: CMD exits non-zero and says PATTERN.
expect_fail() {
    local desc=$1 pat=$2 out rc; shift 2
    out=$("$@" 2>&1); rc=$?
    if [ $rc != 0 ] && printf '%s\n' "$out" | grep -qiE -- "$pat"; then tap_ok 0 "$desc"
    else tap_ok 1 "$desc"; echo "# rc=$rc, wanted /$pat/, got:"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
objects_b() { tb verify --pin-source "$B_PIN_FILE" 2>/dev/null | grep -c "^kcv"; }

ta create --pin-source "$A_PIN_FILE" --clonable >/dev/null 2>&1
tb transport-keygen --pin-source "$B_PIN_FILE" --out "$W/B.pem" >/dev/null 2>&1
tc transport-keygen --pin-source "$C_PIN_FILE" --out "$W/C.pem" >/dev/null 2>&1
[ -s "$W/B.pem" ] && [ -s "$W/C.pem" ]; tap_ok $? "set-up: A has a clonable master, B and C have transport keys"

# Sealing before any clone.
expect_fail "seal before cloning is refused" "before cloning" ta seal --pin-source "$A_PIN_FILE"
ta status --pin-source "$A_PIN_FILE" 2>&1 | grep -q 'extractable=yes'
tap_ok $? "... and the master is still clonable"

# Untrusted wrap key: C's public key on A, written without CKA_TRUSTED.
fpc=$(openssl pkey -pubin -in "$W/C.pem" -outform DER | sha256sum | cut -c1-32)
openssl pkey -pubin -in "$W/C.pem" -outform DER -out "$W/C.der"
SOFTHSM2_CONF=$A_CONF pkcs11-tool --module "$MOD" --token-label A --write-object "$W/C.der" --type pubkey \
    --label untrusted-C --id "$fpc" --usage-wrap >/dev/null 2>&1
expect_fail "wrapping with an untrusted key is refused" "not trusted.*trust" \
    ta wrap --pin-source "$A_PIN_FILE" --to "$W/C.pem" --out "$W/blob-untrusted"
[ ! -e "$W/blob-untrusted" ]; tap_ok $? "... and no blob is written"
out=$(SOFTHSM2_CONF=$A_CONF "$VALUE" attack "$MOD" A hsmkeys-master "$A_PIN_FILE" untrusted-C 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
[ $rc = 0 ] && printf '%s' "$out" | grep -q 'untrusted RSA CKR_'
tap_ok $? "without the tool, the token itself refuses to wrap the clonable master with an untrusted or user-made key"

# Missing SO PIN (no pin source and no terminal), loose PIN file, PIN in argv.
expect_fail "trust without an SO PIN says how to give one" "so-pin-source" \
    setsid -w env SOFTHSM2_CONF="$A_CONF" "$T" trust --token A --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")"
cp "$A_SO_PIN_FILE" "$W/loose-pin"; chmod 644 "$W/loose-pin"
expect_fail "a PIN file readable by others is refused" "permission|readable|mode|0600" \
    ta trust --so-pin-source "$W/loose-pin" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")"
expect_fail "a PIN on the command line is refused" "never taken from the command line" \
    ta status --pin 1234
(umask 077; printf 'wrong-pin' > "$W/wrong-pin")
expect_fail "a wrong SO PIN is refused with a clear error" "login.*refused|PIN.*(wrong|incorrect)" \
    ta trust --so-pin-source "$W/wrong-pin" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")"
ta status --pin-source "$A_PIN_FILE" 2>&1 | grep -q 'hsmkeys-trusted'
[ $? != 0 ]; tap_ok $? "... and no trusted key was created"

# trust checks the fingerprint host B's operator read out before creating anything.
expect_fail "trust without --expect-fingerprint (no terminal to type it on) is refused" \
    "needs --expect-fingerprint" \
    setsid -w env SOFTHSM2_CONF="$A_CONF" "$T" trust --token A --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem"
expect_fail "trust with another key's fingerprint is refused" "not host B's key.*Nothing was trusted" \
    ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/C.pem")"
expect_fail "trust with a malformed fingerprint is refused" "not a SHA-256 fingerprint" \
    ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint 1234
ta status --pin-source "$A_PIN_FILE" 2>&1 | grep -q 'hsmkeys-trusted'
[ $? != 0 ]; tap_ok $? "... and none of them created a trusted key"

# A PIN in the URI (argv, shell history) is refused before anything else.
expect_fail "pin-value in --uri is refused" "--uri carries pin-value.*pin-source" \
    env SOFTHSM2_CONF="$A_CONF" "$T" status --uri "pkcs11:token=A?pin-value=$(cat "$A_PIN_FILE")"
expect_fail "pin-value in the path part of --uri is refused too" "--uri carries pin-value" \
    env SOFTHSM2_CONF="$A_CONF" "$T" status --uri "pkcs11:token=A;PIN-VALUE=1234"

ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")" --name B >/dev/null 2>&1
ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")" --name B 2>&1 | grep -q 'already trusted'
tap_ok $? "trusting the same key twice is harmless"
kcv=$(ta wrap --pin-source "$A_PIN_FILE" --to "$W/B.pem" --out "$W/blob" 2>&1 | awk '$1 == "kcv" { print $3 }')
[ ${#kcv} = 16 ]; tap_ok $? "wrap for B's trusted key works ($kcv)"
n0=$(objects_b)

# Corrupted blob: a flipped byte is caught by the checksum...
python3 - "$W/blob" "$W/blob-flip" "$W/blob-forged" <<'PY'
import hashlib, sys
b = bytearray(open(sys.argv[1], 'rb').read())
f = bytearray(b); f[len(f) - 100] ^= 1   # inside the wrapped key
open(sys.argv[2], 'wb').write(f)
# ... and one with a valid checksum over a damaged wrapped key reaches the token.
body = f[:-32]; open(sys.argv[3], 'wb').write(body + hashlib.sha256(body).digest())
PY
expect_fail "a corrupted blob is refused" "corrupted" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob-flip" --expect-kcv "$kcv"
expect_fail "a blob whose wrapped key was damaged is refused by the token" "unwrap|corrupted" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob-forged" --expect-kcv "$kcv"
[ "$(objects_b)" = "$n0" ]; tap_ok $? "... and B holds no half-made object ($n0 objects before and after)"

# Each header field edited, the plain checksum recomputed: the header MAC
# (made by A's token with the master) no longer matches; nothing created.
keys_b() { SOFTHSM2_CONF=$B_CONF "$VALUE" count "$MOD" B any "$B_PIN_FILE"; }
k0=$(keys_b)
python3 - "$W/blob" "$W/tamper" <<'PY'
import hashlib, sys
b = bytearray(open(sys.argv[1], 'rb').read())
def out(name, f):
    body = bytes(f[:-32]); open(sys.argv[2] + '-' + name, 'wb').write(body + hashlib.sha256(body).digest())
L = b[65]
edits = {
    'generation': lambda f: f.__setitem__(44, f[44] ^ 6),          # CKA_ID generation, last byte
    'activation': lambda f: f.__setitem__(47, f[47] ^ 0x40),        # CKA_ID activation (years ahead)
    'keytype':    lambda f: f.__setitem__(56, 0x2b),                # CKK_GENERIC_SECRET -> CKK_SHA256_HMAC
    'label':      lambda f: f.__setitem__(66 + L - 1, ord('X')),    # last label character
    'mac':        lambda f: f.__setitem__(len(f) - 40, f[len(f) - 40] ^ 1),
}
for name, e in edits.items():
    f = bytearray(b); e(f); out(name, f)
f = bytearray(b); f[4] = 1; out('version1', f)
PY
for field in generation activation keytype label mac; do
    expect_fail "blob with an edited $field (checksum recomputed) is refused by the header MAC" \
        "header \(generation, activation, label, key type or format\) was changed after host A wrapped it" \
        tb unwrap --pin-source "$B_PIN_FILE" --in "$W/tamper-$field" --expect-kcv "$kcv"
done
expect_fail "a format-1 blob (no header MAC) is refused with a clear error" \
    "format version 1 .*does not authenticate its header.*wrap again" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/tamper-version1" --expect-kcv "$kcv"
[ "$(keys_b)" = "$k0" ]; tap_ok $? "... and none of them left a key on B, under any label ($k0 before and after)"

# A blob made for C, opened on B.
expect_fail "an untrusted copy of a key must be removed before trusting it" "not as trusted" \
    ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/C.pem" --expect-fingerprint "$(fp_of "$W/C.pem")" --name C
SOFTHSM2_CONF=$A_CONF pkcs11-tool --module "$MOD" --token-label A --delete-object --type pubkey --label untrusted-C >/dev/null 2>&1
ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/C.pem" --expect-fingerprint "$(fp_of "$W/C.pem")" --name C >/dev/null 2>&1
expect_fail "sealing while a trusted clone lacks the generation is refused" "never wrapped.*C" \
    ta seal --pin-source "$A_PIN_FILE"
ta wrap --pin-source "$A_PIN_FILE" --to "$W/C.pem" --out "$W/blob-C" >/dev/null 2>&1
expect_fail "a blob made for another token is refused" "made for another token" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob-C" --expect-kcv "$kcv"
expect_fail "a blob whose kcv differs from the one A read out is refused" "differs" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob" --expect-kcv 0011223344556677
expect_fail "a wrong user PIN is refused with a clear error" "login.*refused" \
    tb unwrap --pin-source "$W/wrong-pin" --in "$W/blob" --expect-kcv "$kcv"
[ "$(objects_b)" = "$n0" ]; tap_ok $? "... none of these left an object on B"
tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob" --expect-kcv "$kcv" >/dev/null 2>&1
tap_ok $? "the right blob with the right kcv imports"
expect_fail "importing the same generation twice is refused" "already holds generation" \
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob" --expect-kcv "$kcv"

# The ceremony script stops before trusting a key whose fingerprint differs.
out=$(SOFTHSM2_CONF=$A_CONF bash "$HSMKEYS_ROOT/provisioning/ceremony-host-a-wrap.sh" --token A \
      --pin-source "$A_PIN_FILE" --so-pin-source "$A_SO_PIN_FILE" --pub "$W/C.pem" \
      --expect-fingerprint "$(printf '%064d' 0)" --out "$W/blob-script" 2>&1); rc=$?
[ $rc != 0 ] && printf '%s' "$out" | grep -q 'CEREMONY STOPPED.*fingerprints' && [ ! -e "$W/blob-script" ] &&
    ! printf '%s' "$out" | grep -q 'trusted transport key'
tap_ok $? "ceremony script: a fingerprint that differs from the phone's stops it before trust"

# Generations.
expect_fail "create on a token that has a master points to rotate" "rotate" \
    ta create --pin-source "$A_PIN_FILE"
expect_fail "a duplicate generation is refused" "already exists" \
    ta rotate --pin-source "$A_PIN_FILE" --generation 1 --activate-in 1d
expect_fail "a master whose CKA_ID another key already has (any label) is refused" \
    "already holds a secret key with the CKA_ID" \
    ta create --label other-service --pin-source "$A_PIN_FILE"
expect_fail "an activation time in the past is refused" "not in the future" \
    ta rotate --pin-source "$A_PIN_FILE" --activate-at 2001-01-01T00:00:00Z
expect_fail "destroying the only generation is refused" "newest" \
    ta destroy --pin-source "$A_PIN_FILE" --generation 1

# Extractable without wrap-with-trusted (a state a foreign tool could leave).
SOFTHSM2_CONF=$C_CONF "$VALUE" unsafe "$MOD" C hsmkeys-master "$C_PIN_FILE" 7
tc status --pin-source "$C_PIN_FILE" 2>&1 | grep -q 'DANGER: .*EXTRACTABLE without CKA_WRAP_WITH_TRUSTED'
tap_ok $? "status flags a master extractable without wrap-with-trusted"
out=$(SOFTHSM2_CONF=$C_CONF "$VALUE" attack "$MOD" C hsmkeys-master "$C_PIN_FILE" hsmkeys-transport 2>&1)
[ $? = 1 ] && printf '%s' "$out" | grep -q 'gen 7: .*own AES CKR_OK'
tap_ok $? "(why: the token lets any user-made AES key wrap such a master)"
tc trust --so-pin-source "$C_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")" --name B >/dev/null 2>&1
expect_fail "... and wrap refuses it even for a trusted key" "EXTRACTABLE without CKA_WRAP_WITH_TRUSTED" \
    tc wrap --pin-source "$C_PIN_FILE" --to "$W/B.pem" --out "$W/blob-unsafe"

# Test-only import.
head -c 32 /dev/urandom > "$W/test-master"
expect_fail "import-test-master needs its explicit flag" "i-understand-this-is-for-tests" \
    tb import-test-master --pin-source "$B_PIN_FILE" --in "$W/test-master" --generation 9
tb import-test-master --i-understand-this-is-for-tests --pin-source "$B_PIN_FILE" --in "$W/test-master" \
    --generation 9 --activate-in 1d >/dev/null 2>&1
tap_ok $? "import-test-master with the flag works"
tap_done
