#!/bin/bash
# test_nss_softokn.sh - hsmkeys on a second, independent PKCS#11
# implementation: NSS's softokn (libsoftokn3.so).  A throwaway NSS db in the
# lab gets the test master of seed "fleet"; hsmkeys, configured with
# module-args, must derive the published vectors on it, and tickets must
# cross between it and a SoftHSM2 token holding the same master, both ways,
# TLS 1.2 and 1.3.  Also: the error without module-args, how NSS protects a
# master generated inside it, hsmkeys-tool --module-args, and the cost of one
# epoch derivation on each module.  Helper: tests/modules/nss-token.c.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
NSS_MODULE=${HSMKEYS_NSS_MODULE:-/usr/lib/x86_64-linux-gnu/libsoftokn3.so}
H=$HSMKEYS_BUILD/tests/nss-token
TOOL=$HSMKEYS_BUILD/hsmkeys-tool
VECTORS=$HSMKEYS_ROOT/tests/data/derivation-vectors.txt
FLEET_KCV=69636f0f65e6eb77   # key check value of the seed "fleet" master (vectors file)
if [ ! -r "$NSS_MODULE" ]; then
    tap_skip "hsmkeys on NSS softokn" "$NSS_MODULE absent (apt-get install libnss3)"
    tap_done; exit
fi
lab_init
OUT=$LAB/out            # every output of the helpers, scanned for secrets at the end
mkdir -p "$OUT"
lab_host S1 fleet

# (1) a throwaway NSS db; its password (the token's user PIN) only in a 0600 file.
command -v certutil >/dev/null; tap_ok $? "certutil is installed (libnss3-tools, ci/deps.sh)"
nss_db() {   # nss_db DIR: make DIR/db with DIR/pw
    mkdir -p "$1/db"
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '\n/+=' > "$1/pw")
    certutil -N -d "sql:$1/db" -f "$1/pw" >"$OUT/certutil-$(basename "$1").log" 2>&1
}
nss_db "$LAB/nss"; rc=$?
PW=$LAB/nss/pw
[ $rc = 0 ] && [ -f "$LAB/nss/db/key4.db" ] && [ "$(stat -c %a "$PW")" = 600 ]
tap_ok $? "certutil -N made an NSS db in the lab; password file mode 0600"
ARGS="configdir='sql:$LAB/nss/db' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
NSS=(--nss-dir "$LAB/nss/db" --pin-source "$PW" --module "$NSS_MODULE")

# (2) import the known test master: C_CreateObject in a R/W session after C_Login.
"$H" import "${NSS[@]}" >"$OUT/import.txt" 2>&1
grep -q '^create_object=CKR_OK' "$OUT/import.txt" && grep -q '^sensitive=TRUE' "$OUT/import.txt" &&
    grep -q '^extractable=FALSE' "$OUT/import.txt" &&
    grep -q '^value_read=CKR_ATTRIBUTE_SENSITIVE' "$OUT/import.txt"
tap_ok $? "test master imported into NSS by C_CreateObject: SENSITIVE, not EXTRACTABLE, value unreadable"
grep -q '^create_object=CKR_OK' "$OUT/import.txt" || sed 's/^/# /' "$OUT/import.txt"
TOOLNSS=(--module "$NSS_MODULE" --module-args "$ARGS" --token "NSS Certificate DB" --pin-source "$PW")
k_nss=$("$TOOL" verify "${TOOLNSS[@]}" 2>"$OUT/verify-nss.err" | awk '{print $3}')
k_shsm=$(SOFTHSM2_CONF=$S1_CONF "$TOOL" verify --token S1 --pin-source "$S1_PIN_FILE" 2>/dev/null | awk '{print $3}')
[ "$k_nss" = "$FLEET_KCV" ] && [ "$k_shsm" = "$FLEET_KCV" ]
tap_ok $? "hsmkeys-tool --module-args: same key check value on NSS and SoftHSM2 ($k_nss, $k_shsm)"

# (3) the published vectors, derived by NSS through hsmkeys_open + module-args.
"$H" vectors "${NSS[@]}" --vectors "$VECTORS" >"$OUT/vectors.txt" 2>&1
grep -q '^vectors=5/5$' "$OUT/vectors.txt"
tap_ok $? "NSS derives the published vectors of seed fleet (name, aes, hmac): $(grep '^vectors=' "$OUT/vectors.txt")"
grep -q '^vectors=5/5$' "$OUT/vectors.txt" || sed 's/^/# /' "$OUT/vectors.txt"

# (4) tickets cross between the NSS token and SoftHSM2's S1, both ways.
for v in 1.2 1.3; do
    flag=; [ $v = 1.3 ] && flag=--tls13
    SOFTHSM2_CONF=$S1_CONF "$H" cross "${NSS[@]}" --softhsm-uri "$S1_URI" $flag >"$OUT/cross-$v.txt" 2>&1
    rc=$?
    [ $rc = 0 ] && grep -q "^nss->softhsm2 TLSv$v resumed" "$OUT/cross-$v.txt" &&
        grep -q "^softhsm2->nss TLSv$v resumed" "$OUT/cross-$v.txt"
    tap_ok $? "TLS $v: a ticket from NSS resumes on SoftHSM2 and one from SoftHSM2 resumes on NSS"
    sed 's/^/# /' "$OUT/cross-$v.txt"
done

# (5) without module-args NSS refuses C_Initialize: the message must say what to set.
"$H" open "${NSS[@]}" --no-module-args >"$OUT/noargs.txt" 2>&1
grep -q '^open=HSMKEYS_E_MODULE$' "$OUT/noargs.txt" &&
    grep -q '^message=C_Initialize of .*libsoftokn3.so failed: CKR_ARGUMENTS_BAD.*set module-args' "$OUT/noargs.txt"
tap_ok $? "without module-args: HSMKEYS_E_MODULE and the message names module-args"
sed -n 's/^message=/# /p' "$OUT/noargs.txt"
"$TOOL" verify --module "$NSS_MODULE" --token "NSS Certificate DB" --pin-source "$PW" >"$OUT/noargs-tool.txt" 2>&1
[ $? != 0 ] && grep -q 'module-args' "$OUT/noargs-tool.txt"
tap_ok $? "hsmkeys-tool without --module-args fails naming module-args"

# (6) masters generated inside NSS are judged by their attributes.
gen_and_open() {   # gen_and_open LABEL SENSITIVE EXTRACTABLE [--usages default]
    "$H" generate "${NSS[@]}" --label "$1" --sensitive "$2" --extractable "$3" "${@:4}" >"$OUT/gen-$1.txt" 2>&1
    "$H" open "${NSS[@]}" --label "$1" >>"$OUT/gen-$1.txt" 2>&1
    printf '# generate sensitive=%s extractable=%s -> %s\n' "$2" "$3" \
        "$(grep -E '^(sensitive|extractable|value_read|open)=' "$OUT/gen-$1.txt" | tr '\n' ' ')"
}
gen_and_open gen-defaults default default
grep -q '^generate_key=CKR_OK' "$OUT/gen-gen-defaults.txt" && grep -q '^sensitive=TRUE' "$OUT/gen-gen-defaults.txt" &&
    grep -q '^extractable=TRUE' "$OUT/gen-gen-defaults.txt" &&
    grep -q '^open=HSMKEYS_E_UNSAFE_MASTER' "$OUT/gen-gen-defaults.txt"
tap_ok $? "NSS default for a generated token secret: SENSITIVE=TRUE, EXTRACTABLE=TRUE -> hsmkeys refuses it"
gen_and_open gen-sealed yes no
grep -q '^extractable=FALSE' "$OUT/gen-gen-sealed.txt" && grep -q '^never_extractable=TRUE' "$OUT/gen-gen-sealed.txt" &&
    grep -q '^open=HSMKEYS_OK' "$OUT/gen-gen-sealed.txt"
tap_ok $? "generated SENSITIVE, EXTRACTABLE=FALSE (NEVER_EXTRACTABLE): hsmkeys accepts it"
gen_and_open gen-notsens no no
grep -q '^sensitive=TRUE' "$OUT/gen-gen-notsens.txt" && grep -q '^open=HSMKEYS_OK' "$OUT/gen-gen-notsens.txt"
tap_ok $? "NSS makes a private token secret SENSITIVE even when asked for SENSITIVE=FALSE"

gen_and_open gen-nss-usages yes no --usages default
sed -n 's/^\(derive=.*\)/# NSS default usages of a generated secret: \1/p' "$OUT/gen-gen-nss-usages.txt"
grep -q '^open=HSMKEYS_E_UNSAFE_MASTER' "$OUT/gen-gen-nss-usages.txt" &&
    grep -qE '^message=.*CKA_(DERIVE|ENCRYPT|DECRYPT|WRAP|UNWRAP)=TRUE' "$OUT/gen-gen-nss-usages.txt"
tap_ok $? "NSS's default usages for a generated secret (ENCRYPT, DERIVE...): hsmkeys refuses it, naming the attribute"
grep -q '^modifiable=FALSE' "$OUT/import.txt"
tap_ok $? "NSS accepts CKA_MODIFIABLE=FALSE at creation (the imported test master)"

# hsmkeys-tool create on NSS, in a second db: NSS keeps one token key per
# CKA_ID, so a second master of the same generation id (another label)
# would replace the first one (see docs/PROVISIONING.md).
nss_db "$LAB/nss2"
T2=(--module "$NSS_MODULE" --module-args "configdir='sql:$LAB/nss2/db' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
    --token "NSS Certificate DB" --pin-source "$LAB/nss2/pw")
"$TOOL" create "${T2[@]}" >"$OUT/create.txt" 2>&1 &&
    "$TOOL" status "${T2[@]}" --domain www.example.com >>"$OUT/create.txt" 2>&1 &&
    "$H" open --nss-dir "$LAB/nss2/db" --pin-source "$LAB/nss2/pw" --module "$NSS_MODULE" >>"$OUT/create.txt" 2>&1 &&
    grep -q '^open=HSMKEYS_OK' "$OUT/create.txt"
tap_ok $? "hsmkeys-tool create --module-args makes a master on NSS that hsmkeys accepts"
grep -q '^open=HSMKEYS_OK' "$OUT/create.txt" || sed 's/^/# /' "$OUT/create.txt"
k1=$("$TOOL" verify "${T2[@]}" 2>/dev/null | awk '{print $3}')
"$TOOL" create "${T2[@]}" --label second-master >/dev/null 2>&1
k2=$("$TOOL" verify "${T2[@]}" 2>/dev/null | awk '{print $3}')
if [ -n "$k1" ] && [ "$k1" = "$k2" ]; then echo "# note: NSS kept both masters of generation id 1"
else echo "# note: NSS replaced master 'hsmkeys-master' when 'second-master' got the same CKA_ID (kcv '$k1' -> '${k2:-gone}')"; fi

# (7) cost of one epoch derivation (median of 100), NSS vs SoftHSM2, one process.
SOFTHSM2_CONF=$S1_CONF "$H" bench "${NSS[@]}" --softhsm-uri "$S1_URI" --n 100 >"$OUT/bench.txt" 2>&1
tap_ok $? "derivation cost measured on both modules"
sed 's/^/# /' "$OUT/bench.txt"

# rotate on NSS: generation 2 gets its own CKA_ID and coexists with generation 1.
"$TOOL" rotate "${TOOLNSS[@]}" --activate-in 1d >"$OUT/rotate.txt" 2>&1 &&
    "$TOOL" verify "${TOOLNSS[@]}" >>"$OUT/rotate.txt" 2>&1 &&
    grep -q "^kcv 1 $FLEET_KCV" "$OUT/rotate.txt" && grep -q '^kcv 2 ' "$OUT/rotate.txt"
tap_ok $? "hsmkeys-tool rotate on NSS: generations 1 and 2 side by side"

# No key bytes or PINs in anything the helpers and tools printed.
MASTER_HEX=$(sed -n 's/^master = //p' "$VECTORS" | head -1)
leak=0
for s in "$MASTER_HEX" "$(cat "$PW")" "$(cat "$LAB/nss2/pw")" "$(cat "$S1_PIN_FILE")"; do
    grep -rqiF -- "$s" "$OUT" && leak=1
done
tap_ok $leak "no master bytes, NSS db password or PIN in any output"
tap_done
