#!/bin/bash
# test_forward_erasable.sh - hsmkeys-tool and the forward-erasable mode on two
# SoftHSM2 "hosts": create --forward-erasable starts the chain inside token A,
# the clone ceremony carries the master and then the current chain state to B
# (blob v2, RSA-OAEP, no plaintext; an edited header or a wrong check value is
# refused), kcv --epoch E agrees on A and B and differs from the static mode's,
# a ticket issued with A resumes with B, and once E left the window on a token
# its kcv fails with "erased".
#
# Threat: a chain clone that silently differs (the fleet would stop resuming),
# a blob whose epoch or generation was edited in transit, and a tool that
# reports keys of an epoch the token should have forgotten.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
export HSMKEYS_TOOL=$HSMKEYS_BUILD/hsmkeys-tool
P=$HSMKEYS_ROOT/provisioning
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
CHAIN=$HSMKEYS_BUILD/tests/t-chain
D=fleet.hsmkeys.test
lab_init
lab_host A none
lab_host B none
W=$LAB/work; mkdir -p "$W"
tool() { local h=$1 conf pin; shift; conf=${h}_CONF; pin=${h}_PIN_FILE
         SOFTHSM2_CONF=${!conf} "$HSMKEYS_TOOL" "$@" --token "$h" --pin-source "${!pin}"; }

out=$(tool A create --clonable --forward-erasable --epoch 2s 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
X0=$(printf '%s\n' "$out" | sed -n 's/.*chain of generation 1 starts at epoch \([0-9]*\).*/\1/p')
[ $rc = 0 ] && [ -n "$X0" ]
tap_ok $? "create --forward-erasable: master and the chain's first state S(1, $X0) made in token A"

out=$(tool A status --epoch 2s --domain $D 2>&1)
printf '%s\n' "$out" | grep -q "generation 1: 1 state, epochs $X0..$X0" &&
    printf '%s\n' "$out" | grep -q "forward-erasable key names for domain '$D'"
tap_ok $? "status lists the chain and its key names"

# The ceremony for the master, then the current state for a host joining.
out=$(SOFTHSM2_CONF=$B_CONF bash "$P/ceremony-host-b-prepare.sh" --token B --pin-source "$B_PIN_FILE" --out "$W/B.pem" 2>&1)
FP=$(printf '%s\n' "$out" | awk '$1 == "fingerprint" { v = $2 } END { print v }')
out=$(SOFTHSM2_CONF=$A_CONF bash "$P/ceremony-host-a-wrap.sh" --token A --pin-source "$A_PIN_FILE" \
      --so-pin-source "$A_SO_PIN_FILE" --pub "$W/B.pem" --expect-fingerprint "$FP" --name B --out "$W/blob" 2>&1)
KCV=$(printf '%s\n' "$out" | awk '$1 == "kcv" && NF == 2 { v = $2 } END { print v }')
SOFTHSM2_CONF=$B_CONF bash "$P/ceremony-host-b-import.sh" --token B --pin-source "$B_PIN_FILE" \
      --blob "$W/blob" --expect-kcv "$KCV" >/dev/null 2>&1 &&
    SOFTHSM2_CONF=$A_CONF bash "$P/ceremony-host-a-seal.sh" --token A --pin-source "$A_PIN_FILE" \
      --expect-kcv "$KCV" >/dev/null 2>&1
tap_ok $? "the master is cloned to B and sealed on A by the usual ceremony"

out=$(tool A wrap --forward-erasable --to "$W/B.pem" --out "$W/state.blob" 2>&1); rc=$?
SKCV=$(printf '%s\n' "$out" | awk '$1 == "kcv" { v = $3 } END { print v }')
[ $rc = 0 ] && [ ${#SKCV} = 16 ] && [ "$SKCV" != "$KCV" ]
tap_ok $? "wrap --forward-erasable: the newest chain state wrapped for B (check value $SKCV)"

# An edited header: the state's epoch (last byte of the CKA_ID at offset 38),
# with the trailing checksum recomputed.
python3 - "$W/state.blob" "$W/edited.blob" <<'PY'
import hashlib, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[38 + 14] ^= 1
body = bytes(b[:-32])
open(sys.argv[2], "wb").write(body + hashlib.sha256(body).digest())
PY
out=$(tool B unwrap --in "$W/edited.blob" --expect-kcv "$SKCV" 2>&1); rc=$?
[ $rc != 0 ] && printf '%s\n' "$out" | grep -q "header MAC" &&
    [ -z "$(SOFTHSM2_CONF=$B_CONF "$CHAIN" list B "$B_PIN_FILE")" ]
tap_ok $? "a state blob with an edited epoch is refused by its header MAC; nothing imported"
out=$(tool B unwrap --in "$W/state.blob" --expect-kcv 0000000000000000 2>&1); rc=$?
[ $rc != 0 ] && printf '%s\n' "$out" | grep -q "not the chain state host A wrapped"
tap_ok $? "a state blob with another check value than A's is refused"

out=$(tool B unwrap --in "$W/state.blob" --expect-kcv "$SKCV" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(SOFTHSM2_CONF=$B_CONF "$CHAIN" list B "$B_PIN_FILE")" = "1 $X0" ]
tap_ok $? "B imports the state: one object, S(1, $X0)"

# rotate --forward-erasable: generation 2 with its own chain from the epoch
# before its first (activation in 1 h: epoch 1800 epochs of 2 s ahead).
out=$(tool A rotate --forward-erasable --activate-in 1h --epoch 2s 2>&1); rc=$?
G2=$(( ( $(date +%s) + 3600 + 1 ) / 2 - 1 ))
first=$(printf '%s\n' "$out" | sed -n 's/.*chain of generation 2 starts at epoch \([0-9]*\).*/\1/p')
echo "# rotate: chain of generation 2 starts at $first (expected about $G2)"
[ $rc = 0 ] && [ -n "$first" ] && [ $((first - G2)) -le 1 ] && [ $((G2 - first)) -le 1 ] &&
    SOFTHSM2_CONF=$A_CONF "$CHAIN" list A "$A_PIN_FILE" | grep -qx "2 $first"
tap_ok $? "rotate --forward-erasable: generation 2 and its chain, starting the epoch before its first"

kcv_of() { tool "$1" kcv --epoch "$2" --domain $D --epoch-length 2s ${3:-} 2>&1; }
ka=$(kcv_of A "$X0" --forward-erasable); kb=$(kcv_of B "$X0" --forward-erasable); ks=$(kcv_of A "$X0")
echo "# A: $ka"; echo "# B: $kb"; echo "# static: $ks"
[ "${ka##*epoch kcv }" = "${kb##*epoch kcv }" ] && [ "${ka##*epoch kcv }" != "${ks##*epoch kcv }" ] &&
    printf '%s\n' "$ka" | grep -q "epoch kcv [0-9a-f]\{16\}$"
tap_ok $? "kcv --epoch $X0 agrees on A and B, and differs from the static mode's"

out=$(kcv_of A $((X0 + 1000)) --forward-erasable); rc=$?
[ $rc != 0 ] && printf '%s\n' "$out" | grep -q "not made yet"
tap_ok $? "kcv of an epoch the chain has not reached: 'not made yet'"

# A ticket issued by A resumes on B; both contexts step their chain forward
# from S(1, X0) to the current epoch on their own.
T=$(date +%s)
s=$(SOFTHSM2_CONF=$A_CONF "$TICKET" issue --uri "$A_URI" --domain $D --epoch 2s --lifetime 4s --at "$T" --forward-erasable) &&
    r=$(printf '%s\n' "$s" | SOFTHSM2_CONF=$B_CONF "$TICKET" resume --uri "$B_URI" --domain $D --epoch 2s --lifetime 4s --at "$T" --forward-erasable)
echo "# $r"
case "$r" in resumed*) true ;; *) false ;; esac
tap_ok $? "a TLS 1.2 ticket of A's forward-erasable keys resumes with B"

# Erasure: a server context whose clock is ten epochs later erases what left
# the window; the tool then refuses the epoch with "erased".
E=$((T / 2))
ka=$(kcv_of A "$E" --forward-erasable) && kb=$(kcv_of B "$E" --forward-erasable)
tap_ok $? "kcv --epoch $E succeeds on both tokens while it is in the window"
T2=$((T + 20))
for h in A B; do
    conf=${h}_CONF; uri=${h}_URI
    SOFTHSM2_CONF=${!conf} "$TICKET" issue --uri "${!uri}" --domain $D --epoch 2s --lifetime 4s --at "$T2" --forward-erasable >/dev/null
done
oa=$(kcv_of A "$E" --forward-erasable); ra=$?; ob=$(kcv_of B "$E" --forward-erasable); rb=$?
echo "# A: $oa"; echo "# B: $ob"
[ $ra != 0 ] && [ $rb != 0 ] && printf '%s\n%s\n' "$oa" "$ob" | grep -c "is erased on token" | grep -qx 2
tap_ok $? "after the window moved on, kcv --epoch $E fails with 'erased' on both tokens"
low=$(( T2 / 2 - 2 - 1 ))
for h in A B; do
    conf=${h}_CONF; pin=${h}_PIN_FILE
    SOFTHSM2_CONF=${!conf} "$CHAIN" list $h "${!pin}" > "$W/$h.states"
done
awk -v low=$low '$1 == 1 && $2 < low { bad = 1 } END { exit bad }' "$W/A.states" "$W/B.states" &&
    [ "$(sort "$W/A.states" | uniq -d)" = "" ] && [ "$(awk '$1 == 1' "$W/A.states" | wc -l)" = 5 ] &&
    grep -qx "2 $first" "$W/A.states"
tap_ok $? "tokens hold no state of generation 1 older than epoch $low (window + 1), one per live epoch, and generation 2's future chain untouched ($(tr '\n' ' ' < "$W/A.states"))"

tap_done
