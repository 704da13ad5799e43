#!/bin/bash
# test_tpm2_pkcs11.sh - hsmkeys on tpm2-pkcs11 over a software TPM (swtpm in
# socket mode, tpm2-abrmd on a private session bus, a tpm2-pkcs11 store, all
# in the lab; tests/lib/tpm.sh).  tpm2-pkcs11 makes secret keys only with its
# own tool, so its masters come in through `hsmkeys-tool adopt`:
#   - create/import-test-master fail and point to the vendor tool + adopt;
#   - the known test master of seed "fleet", created inside the TPM
#     (tpm2_create -i), adopted as generation 1: same key check value as on
#     SoftHSM2, the published vectors, tickets crossing between the TPM and a
#     SoftHSM2 token both ways, TLS 1.2 and 1.3;
#   - TPM-made keys (tpm2_ptool addkey) adopted as generation 1 and as
#     generation 2 activating later: names carry the new tag after activation;
#   - adopt's refusals, a duplicate generation in status/verify/the library,
#     the C_Initialize hint naming the module's environment;
#   - the median time of one epoch derivation on the TPM.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/tpm.sh"
TOOL=$HSMKEYS_BUILD/hsmkeys-tool
TC=$HSMKEYS_BUILD/tests/token-check
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
VECTORS=$HSMKEYS_ROOT/tests/data/derivation-vectors.txt
FLEET_KCV=69636f0f65e6eb77   # key check value of the seed "fleet" master (vectors file)
D=www.example.com
why=$(tpm_missing)
if [ -n "$why" ]; then
    tap_skip "hsmkeys on tpm2-pkcs11 over swtpm" "$why"
    tap_done; exit
fi
lab_init
OUT=$LAB/out; mkdir -p "$OUT"
lab_host S1 fleet
expect_fail() {   # expect_fail DESC PATTERN CMD...: CMD exits non-zero and says PATTERN
    local desc=$1 pat=$2 out rc; shift 2
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" >>"$OUT/expect_fail.txt"
    if [ $rc != 0 ] && printf '%s\n' "$out" | grep -qiE -- "$pat"; then tap_ok 0 "$desc"
    else tap_ok 1 "$desc"; echo "# rc=$rc, wanted /$pat/, got:"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}

# (1) the TPM stack and two tokens: "fleet" (the known master) and "made".
tpm_start; tap_ok $? "swtpm, tpm2-abrmd on a private bus and a tpm2-pkcs11 store started in the lab"
P=$LAB/tpm
tpm_token fleet "$P/fleet.pin" "$P/fleet.so" && tpm_token made "$P/made.pin" "$P/made.so"
tap_ok $? "tpm2_ptool addtoken made tokens 'fleet' and 'made'"
TF=(--module "$TPM_MODULE" --token fleet --pin-source "$P/fleet.pin")
TM=(--module "$TPM_MODULE" --token made --pin-source "$P/made.pin")
URI_F="pkcs11:token=fleet;object=hsmkeys-master?module-path=$TPM_MODULE&pin-source=$P/fleet.pin"
URI_M="pkcs11:token=made;object=hsmkeys-master?module-path=$TPM_MODULE&pin-source=$P/made.pin"

# (2) PKCS#11 cannot make the master here: the tool says what to do instead.
expect_fail "create on tpm2-pkcs11 fails naming the vendor tool and adopt" \
    "C_GenerateKey failed: CKR_FUNCTION_NOT_SUPPORTED" \
    "$TOOL" create "${TF[@]}"
grep -q "does not generate secret keys through PKCS#11.*tpm2_ptool addkey.*hsmkeys-tool adopt" "$OUT/expect_fail.txt"
tap_ok $? "... the advice is printed (not only the CKR code)"
(umask 077; head -c 32 /dev/urandom > "$LAB/random-master")
expect_fail "import-test-master on tpm2-pkcs11 fails naming the vendor tool and adopt" \
    "does not import secret keys through PKCS#11.*adopt" \
    "$TOOL" import-test-master --i-understand-this-is-for-tests --in "$LAB/random-master" "${TF[@]}"
rm -f "$LAB/random-master"

# (3) the known test master created inside the TPM; its bytes travel in a pipe only.
PARENT=$(tpm2_getcap handles-persistent 2>/dev/null | sed -n 's/^- //p' | head -1)
MASTER_HEX=$(sed -n 's/^master = //p' "$VECTORS" | head -1)
printf '%s' "$MASTER_HEX" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' |
    tpm2_create -C "$PARENT" -i - -u "$P/known.pub" -r "$P/known.priv" \
        -a 'fixedtpm|fixedparent|userwithauth|sign|decrypt' >"$OUT/tpm2_create.txt" 2>&1 &&
    tpm2_ptool link --label fleet --key-label fleet-known --userpin "$(cat "$P/fleet.pin")" \
        --path "$TPM2_PKCS11_STORE" "$P/known.pub" "$P/known.priv" >"$OUT/link.txt" 2>&1 &&
    oid=$(tpm_objid fleet fleet-known) && [ -n "$oid" ] &&
    tpm2_ptool objmod --id "$oid" --key CKA_VALUE_LEN --value 32 --type int --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1 &&
    # the TPM object needs sign|decrypt to take given bytes; PKCS#11 may use it for HMAC only
    tpm2_ptool objmod --id "$oid" --key CKA_ENCRYPT --value false --type bool --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1 &&
    tpm2_ptool objmod --id "$oid" --key CKA_DECRYPT --value false --type bool --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1
tap_ok $? "known master created inside the TPM (tpm2_create -i, tpm2_ptool link, objmod CKA_VALUE_LEN 32, no ENCRYPT/DECRYPT)"
"$TOOL" adopt "${TF[@]}" --key-label fleet-known >"$OUT/adopt-fleet.txt" 2>&1 &&
    grep -q "adopted the key as master 'hsmkeys-master' generation 1, active from 1970-01-01T00:00:00Z" "$OUT/adopt-fleet.txt"
tap_ok $? "adopt gives it generation 1, active since time 0"
sed 's/^/# /' "$OUT/adopt-fleet.txt"
k_tpm=$("$TOOL" verify "${TF[@]}" 2>"$OUT/verify-fleet.err" | awk '$1 == "kcv" && $2 == 1 {print $3}')
k_shsm=$(SOFTHSM2_CONF=$S1_CONF "$TOOL" verify --token S1 --pin-source "$S1_PIN_FILE" 2>/dev/null | awk '{print $3}')
[ "$k_tpm" = "$FLEET_KCV" ] && [ "$k_shsm" = "$FLEET_KCV" ]
tap_ok $? "same key check value on the TPM and SoftHSM2 ($k_tpm, $k_shsm)"

# (4) the published vectors, derived by the TPM through hsmkeys_open.
"$TC" vectors --uri "$URI_F" --vectors "$VECTORS" >"$OUT/vectors.txt" 2>&1
grep -q '^vectors=5/5$' "$OUT/vectors.txt"
tap_ok $? "the TPM derives the published vectors of seed fleet: $(grep '^vectors=' "$OUT/vectors.txt")"
grep -q '^vectors=5/5$' "$OUT/vectors.txt" || sed 's/^/# /' "$OUT/vectors.txt"

# (5) tickets cross between the TPM token and SoftHSM2's S1, both ways.
for v in 1.2 1.3; do
    flag=; [ $v = 1.3 ] && flag=--tls13
    SOFTHSM2_CONF=$S1_CONF "$TICKET" pair --uri "$URI_F" --uri2 "$S1_URI" --domain $D $flag \
        >"$OUT/cross-$v.txt" 2>&1
    rc=$?
    [ $rc = 0 ] && grep -q '^1->2 resumed' "$OUT/cross-$v.txt" && grep -q '^2->1 resumed' "$OUT/cross-$v.txt" &&
        grep -q '^pair ok' "$OUT/cross-$v.txt"
    tap_ok $? "TLS $v: a ticket from the TPM resumes on SoftHSM2 and one from SoftHSM2 resumes on the TPM"
    sed 's/^/# /' "$OUT/cross-$v.txt"
done

# (5b) the same through real servers: hsmkeys-demo-server on the TPM token and
# one on SoftHSM2's S1 behind HAProxy (tcp, round robin), hsmkeys-probe clients.
if command -v haproxy >/dev/null && [ -x "$HSMKEYS_BUILD/hsmkeys-demo-server" ] && [ -x "$HSMKEYS_BUILD/hsmkeys-probe" ]; then
    source "$HSMKEYS_ROOT/tests/lab/lib-probe.sh"
    port=$(lab_port) pt=$(lab_port) ps=$(lab_port)
    lab_spawn TPMSRV "$HSMKEYS_BUILD/hsmkeys-demo-server" --name TPM --listen 127.0.0.1:$pt \
        --log "$LAB/TPMSRV.conns" -o "uri=$URI_F" -o "domain=$D" -o epoch=2s -o lifetime=20s
    lab_spawn SHSMSRV env SOFTHSM2_CONF="$S1_CONF" "$HSMKEYS_BUILD/hsmkeys-demo-server" --name SHSM \
        --listen 127.0.0.1:$ps --log "$LAB/SHSMSRV.conns" -o "uri=$S1_URI" -o "domain=$D" -o epoch=2s -o lifetime=20s
    sed -e "s/@LB@/127.0.0.1:$port/" -e "s/@S1@/127.0.0.1:$pt/" -e "s/@S2@/127.0.0.1:$ps/" \
        "$HSMKEYS_ROOT/demo/haproxy.cfg.in" > "$LAB/haproxy.cfg"
    lab_spawn LB haproxy -db -f "$LAB/haproxy.cfg"
    lab_wait_port $pt && lab_wait_port $ps && lab_wait_port $port
    tap_ok $? "demo servers on the TPM token and on SoftHSM2 behind HAProxy are up"
    for v in 1.3 1.2; do
        "$HSMKEYS_BUILD/hsmkeys-probe" --tls$v -c 2 -d 4 -i 20 --sni $D --min-rate 99 \
            --csv "$OUT/lb-$v.csv" 127.0.0.1:$port >"$OUT/lb-$v.out" 2>&1
        rc=$?
        r=$(csv_rate "$OUT/lb-$v.csv")
        rt=$(csv_count "$OUT/lb-$v.csv" '$4 == "TPM" && $8 == 1') rs=$(csv_count "$OUT/lb-$v.csv" '$4 == "SHSM" && $8 == 1')
        [ $rc = 0 ] && [ "$rt" -gt 0 ] && [ "$rs" -gt 0 ]
        tap_ok $? "TLS $v through round robin: $r% of reconnects resumed (>= 99%), on the TPM server ($rt) and the SoftHSM2 one ($rs)"
        sed -n 's/^resumed/# TLS '$v': resumed/p' "$OUT/lb-$v.out"
    done
    lab_stop LB; lab_stop TPMSRV; lab_stop SHSMSRV
else
    tap_skip "TPM and SoftHSM2 servers behind HAProxy" "haproxy, hsmkeys-demo-server or hsmkeys-probe missing"
fi

# (6) TPM-made keys: generation 1 now, generation 2 activating in an hour.
tpm2_ptool addkey --label made --key-label vendor-1 --userpin "$(cat "$P/made.pin")" --algorithm=hmac:sha256 \
    --path "$TPM2_PKCS11_STORE" >"$OUT/addkey1.txt" 2>&1 &&
tpm2_ptool addkey --label made --key-label vendor-2 --userpin "$(cat "$P/made.pin")" --algorithm=hmac:sha256 \
    --path "$TPM2_PKCS11_STORE" >"$OUT/addkey2.txt" 2>&1
tap_ok $? "tpm2_ptool addkey made two HMAC keys inside the TPM"
"$TOOL" adopt "${TM[@]}" --key-label vendor-1 >"$OUT/adopt-1.txt" 2>&1 &&
    grep -q 'generation 1, active from 1970' "$OUT/adopt-1.txt"
tap_ok $? "adopt: the first TPM-made key becomes generation 1"
expect_fail "adopt: a later generation without an activation time is refused" "activate-at" \
    "$TOOL" adopt "${TM[@]}" --key-label vendor-2
expect_fail "adopt: an activation time in the past is refused" "not in the future" \
    "$TOOL" adopt "${TM[@]}" --key-label vendor-2 --activate-at 2001-01-01T00:00:00Z
"$TOOL" adopt "${TM[@]}" --key-label vendor-2 --activate-in 1h >"$OUT/adopt-2.txt" 2>&1 &&
    grep -q 'generation 2, active from' "$OUT/adopt-2.txt"
tap_ok $? "adopt --activate-in 1h: the second becomes generation 2"
A=$(sed -n 's/.*generation 2, active from [^ ]* (\([0-9]*\)).*/\1/p' "$OUT/adopt-2.txt")
expect_fail "adopt: a key that already is a generation is refused" "already is generation 1" \
    "$TOOL" adopt "${TM[@]}" --key-label hsmkeys-master --key-id 484b01000000010000000000000000
"$TOOL" status "${TM[@]}" --domain $D >"$OUT/status-made.txt" 2>&1; rc=$?
tag1=$(awk '/generation 1 /{g=1} /generation 2 /{g=2} /key names for domain/{print g, $NF=="epoch" ? $(NF-2) : ""}' "$OUT/status-made.txt" | awk '$1==1{print $2}')
tag2=$(awk '/generation 1 /{g=1} /generation 2 /{g=2} /key names for domain/{print g, $NF=="epoch" ? $(NF-2) : ""}' "$OUT/status-made.txt" | awk '$1==2{print $2}')
[ $rc = 0 ] && [ -n "$tag1" ] && [ -n "$tag2" ] && [ "$tag1" != "$tag2" ] && grep -q 'generation 2 \[scheduled\]' "$OUT/status-made.txt"
tap_ok $? "status shows generation 1 current and 2 scheduled, with distinct name tags ($tag1, $tag2)"
# A generation takes over from the first epoch that starts at or after its
# activation: "after" is inside the epoch following it.
before=$(( A - 600 )) after=$(( (A / 3600 + 1) * 3600 + 600 ))
"$TICKET" issue --uri "$URI_M" --domain $D --at $before >"$OUT/t-before.pem" 2>"$OUT/t-before.txt"
"$TICKET" issue --uri "$URI_M" --domain $D --at $after >"$OUT/t-after.pem" 2>"$OUT/t-after.txt"
n_before=$(sed -n 's/^issued //p' "$OUT/t-before.txt") n_after=$(sed -n 's/^issued //p' "$OUT/t-after.txt")
case "$n_before" in "$tag1"*) r1=0 ;; *) r1=1 ;; esac
case "$n_after" in "$tag2"*) r2=0 ;; *) r2=1 ;; esac
[ $r1 = 0 ] && [ $r2 = 0 ]
tap_ok $? "rotation takes effect: names carry generation 1's tag before activation, generation 2's after ($n_before, $n_after)"
"$TICKET" resume --uri "$URI_M" --domain $D --at $after <"$OUT/t-before.pem" >"$OUT/t-resume.txt" 2>&1
grep -q "^resumed $n_before" "$OUT/t-resume.txt"
tap_ok $? "a ticket of generation 1 still resumes after generation 2 took over"

# (7) adopt refuses keys the master policy refuses, and changes nothing then.
printf '%s' "$MASTER_HEX" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' |
    tpm2_create -C "$PARENT" -i - -u "$P/loose.pub" -r "$P/loose.priv" \
        -a 'fixedtpm|fixedparent|userwithauth|sign|decrypt' >/dev/null 2>&1 &&
    tpm2_ptool link --label made --key-label loose --userpin "$(cat "$P/made.pin")" \
        --path "$TPM2_PKCS11_STORE" "$P/loose.pub" "$P/loose.priv" >/dev/null 2>&1 &&
    oid=$(tpm_objid made loose) &&
    tpm2_ptool objmod --id "$oid" --key CKA_VALUE_LEN --value 32 --type int --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1 &&
    tpm2_ptool objmod --id "$oid" --key CKA_EXTRACTABLE --value true --type bool --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1
tap_ok $? "set-up: a key recorded as CKA_EXTRACTABLE (as tpm2_ptool import makes them)"
expect_fail "adopt refuses an EXTRACTABLE key without WRAP_WITH_TRUSTED (the master policy)" \
    "refused, the key was not changed.*CKA_EXTRACTABLE without CKA_WRAP_WITH_TRUSTED" \
    "$TOOL" adopt "${TM[@]}" --key-label loose --activate-in 2h
[ -n "$(tpm_objid made loose)" ]; tap_ok $? "... and the key keeps its label"

# (8) two keys of one generation: a distinct error, non-zero exits.
oid2=$(tpm_objid made hsmkeys-master | tail -1)
objid() { tpm2_ptool objmod --id "$1" --key CKA_ID --path "$TPM2_PKCS11_STORE" 2>/dev/null | tr -d "' \n" | sed 's/^CKA_ID://'; }
id2=$(objid "$oid2")
dup() { tpm2_ptool objmod --id "$oid2" --key CKA_ID --value "$1" --type raw --path "$TPM2_PKCS11_STORE" >/dev/null 2>&1; }
ids=$(for o in $(tpm_objid made hsmkeys-master); do
      objid "$o"; echo; done)
gen1id=$(printf '%s\n' "$ids" | grep -v "^$id2$" | head -1)
dup "$gen1id"
expect_fail "status reports a duplicate generation and exits non-zero" "duplicate generation.*generation 1" \
    "$TOOL" status "${TM[@]}" --domain $D
expect_fail "verify reports a duplicate generation and exits non-zero" "duplicate generation.*generation 1" \
    "$TOOL" verify "${TM[@]}"
expect_fail "the library refuses it as a server would" "two masters of generation 1" "$TC" open --uri "$URI_M"
dup "$id2"
"$TOOL" verify "${TM[@]}" >/dev/null 2>&1; tap_ok $? "... and all is well again once the CKA_ID is restored"

# (9) C_Initialize failing for lack of environment: the hint names it.
out=$(env -u DBUS_SESSION_BUS_ADDRESS "$TC" open --uri "$URI_F" 2>/dev/null)
printf '%s\n' "$out" | grep -q '^message=C_Initialize of .*libtpm2_pkcs11.so failed.*TPM2_PKCS11_STORE (set).*DBUS_SESSION_BUS_ADDRESS (not set in this process).*nginx .env NAME;.*envvars.*Environment=' &&
    ! printf '%s\n' "$out" | grep -qi 'init args\|module-args'
tap_ok $? "C_Initialize without the session bus: the message names the module's variables and how servers pass them, not init args"
printf '%s\n' "$out" | sed -n 's/^message=/# /p'

# (10) the cost of one epoch on the TPM (median of 40), next to SoftHSM2.
"$TC" bench --uri "$URI_F" --what tpm2-pkcs11 --n 40 >"$OUT/bench.txt" 2>&1 &&
    SOFTHSM2_CONF=$S1_CONF "$TC" bench --uri "$S1_URI" --what softhsm2 --n 40 >>"$OUT/bench.txt" 2>&1
tap_ok $? "derivation cost measured on the TPM and on SoftHSM2"
sed 's/^/# /' "$OUT/bench.txt"

# No key bytes or PINs in anything the helpers and tools printed.
leak=0
for s in "$MASTER_HEX" "$(cat "$P/fleet.pin")" "$(cat "$P/made.pin")" "$(cat "$S1_PIN_FILE")"; do
    grep -rqiF -- "$s" "$OUT" && leak=1
done
tap_ok $leak "no master bytes or PIN in any output"
tap_done
