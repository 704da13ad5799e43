#!/bin/bash
# test_ceremony.sh - the full clone ceremony between two SoftHSM2 "hosts"
# (separate SOFTHSM2_CONF), run through the provisioning scripts as an
# operator would, then checked from outside: B's master is sensitive and
# non-extractable, A's is sealed, the key check values agree, CKA_VALUE cannot
# be read on either token, and a ticket issued with token A resumes with B.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
export HSMKEYS_TOOL=$HSMKEYS_BUILD/hsmkeys-tool
P=$HSMKEYS_ROOT/provisioning
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
VALUE=$HSMKEYS_BUILD/tests/hk-value
MOD=/usr/lib/softhsm/libsofthsm2.so
lab_init
lab_host A none
lab_host B none
W=$LAB/work; mkdir -p "$W"

# Host B: transport key, public key file.
out=$(SOFTHSM2_CONF=$B_CONF bash "$P/ceremony-host-b-prepare.sh" --token B --pin-source "$B_PIN_FILE" --out "$W/B.pem" 2>&1)
tap_ok $? "host B prepare: transport key pair made, public key exported"
FP=$(printf '%s\n' "$out" | awk '$1 == "fingerprint" { v = $2 } END { print v }')
grep -q 'BEGIN PUBLIC KEY' "$W/B.pem" && ! grep -q PRIVATE "$W/B.pem"
tap_ok $? "the file B sends holds only a public key"

# Host A: create a clonable master, trust B's key (SO), wrap.
out=$(SOFTHSM2_CONF=$A_CONF bash "$P/ceremony-host-a-wrap.sh" --token A --pin-source "$A_PIN_FILE" \
      --so-pin-source "$A_SO_PIN_FILE" --pub "$W/B.pem" --expect-fingerprint "$FP" --name B --create --out "$W/blob" 2>&1)
tap_ok $? "host A wrap: master created, B's key trusted by the SO, blob written"
KCV=$(printf '%s\n' "$out" | awk '$1 == "kcv" && NF == 2 { v = $2 } END { print v }')
[ ${#KCV} = 16 ]; tap_ok $? "host A reports a key check value ($KCV)"

# Host B: unwrap.
out=$(SOFTHSM2_CONF=$B_CONF bash "$P/ceremony-host-b-import.sh" --token B --pin-source "$B_PIN_FILE" \
      --blob "$W/blob" --expect-kcv "$KCV" 2>&1); rc=$?
tap_ok $rc "host B import: unwrapped, kcv matches, sensitive and non-extractable"
[ $rc = 0 ] || printf '%s\n' "$out" | sed 's/^/# /'

# Host A: seal.
out=$(SOFTHSM2_CONF=$A_CONF bash "$P/ceremony-host-a-seal.sh" --token A --pin-source "$A_PIN_FILE" --expect-kcv "$KCV" 2>&1); rc=$?
tap_ok $rc "host A seal: clone's kcv checked, master sealed"
[ $rc = 0 ] || printf '%s\n' "$out" | sed 's/^/# /'

# Independent checks.
sa=$(SOFTHSM2_CONF=$A_CONF "$HSMKEYS_TOOL" status --token A --pin-source "$A_PIN_FILE" 2>&1)
sb=$(SOFTHSM2_CONF=$B_CONF "$HSMKEYS_TOOL" status --token B --pin-source "$B_PIN_FILE" 2>&1)
printf '%s\n' "$sb" | grep -q 'sensitive=yes extractable=no'
tap_ok $? "B's master is sensitive and not extractable"
printf '%s\n' "$sa" | grep -q 'sensitive=yes extractable=no .*wrap-with-trusted=yes'
tap_ok $? "A's master is sealed (extractable=no)"
ka=$(SOFTHSM2_CONF=$A_CONF "$HSMKEYS_TOOL" verify --token A --pin-source "$A_PIN_FILE" | awk '{print $3}')
kb=$(SOFTHSM2_CONF=$B_CONF "$HSMKEYS_TOOL" verify --token B --pin-source "$B_PIN_FILE" | awk '{print $3}')
[ -n "$ka" ] && [ "$ka" = "$kb" ] && [ "$ka" = "$KCV" ]
tap_ok $? "key check values agree on A and B ($ka / $kb)"
SOFTHSM2_CONF=$A_CONF "$VALUE" read "$MOD" A hsmkeys-master "$A_PIN_FILE" | grep -q CKR_ATTRIBUTE_SENSITIVE && \
    SOFTHSM2_CONF=$A_CONF "$VALUE" read "$MOD" A hsmkeys-master "$A_PIN_FILE" >/dev/null
tap_ok $? "CKA_VALUE cannot be read on A"
SOFTHSM2_CONF=$B_CONF "$VALUE" read "$MOD" B hsmkeys-master "$B_PIN_FILE" | grep -q CKR_ATTRIBUTE_SENSITIVE && \
    SOFTHSM2_CONF=$B_CONF "$VALUE" read "$MOD" B hsmkeys-master "$B_PIN_FILE" >/dev/null
tap_ok $? "CKA_VALUE cannot be read on B"

# The attribute set, read back on both tokens: only SIGN; B's clone is
# neither modifiable nor copyable; A's sealed generation is not modifiable
# (SoftHSM2 cannot clear CKA_COPYABLE on it: a copy of a non-modifiable key
# cannot change any attribute there, checked below).
aa=$(SOFTHSM2_CONF=$A_CONF "$VALUE" attrs "$MOD" A hsmkeys-master "$A_PIN_FILE" 2>&1)
ab=$(SOFTHSM2_CONF=$B_CONF "$VALUE" attrs "$MOD" B hsmkeys-master "$B_PIN_FILE" 2>&1)
printf '%s\n%s\n' "$aa" "$ab" | sed 's/^/# /'
USAGES='derive=0 encrypt=0 decrypt=0 wrap=0 unwrap=0 sign=1'
[ "$ab" = "gen 1: sensitive=1 extractable=0 modifiable=0 copyable=0 $USAGES" ]
tap_ok $? "B's clone: sensitive, not extractable, not modifiable, not copyable, only CKA_SIGN"
[ "$aa" = "gen 1: sensitive=1 extractable=0 modifiable=0 copyable=1 $USAGES" ]
tap_ok $? "A's sealed master: sensitive, not extractable, not modifiable, only CKA_SIGN"
for h in A B; do
    conf=${h}_CONF; pin=${h}_PIN_FILE
    t=$(SOFTHSM2_CONF=${!conf} "$VALUE" tamper "$MOD" $h hsmkeys-master "${!pin}" 2>&1)
    echo "# $h: $t"
    case "$t" in *set_derive=CKR_OK*|*set_id=CKR_OK*|*copy_derive=CKR_OK*) false ;; "gen 1: "*) true ;; *) false ;; esac
    tap_ok $? "token $h refuses CKA_DERIVE=TRUE, a new CKA_ID and a copy with CKA_DERIVE"
done

# Tickets: issued with token A, resumed with token B (and back), TLS 1.2 and 1.3.
for v in "" --tls13; do
    r=$(SOFTHSM2_CONF=$A_CONF "$TICKET" issue --uri "$A_URI" --domain ceremony $v 2>/dev/null |
        SOFTHSM2_CONF=$B_CONF "$TICKET" resume --uri "$B_URI" --domain ceremony $v 2>/dev/null)
    [ "${r%% *}" = resumed ]; tap_ok $? "ticket issued with token A resumes with token B ${v:-(TLS 1.2)} [$r]"
done
r=$(SOFTHSM2_CONF=$B_CONF "$TICKET" issue --uri "$B_URI" --domain ceremony 2>/dev/null |
    SOFTHSM2_CONF=$A_CONF "$TICKET" resume --uri "$A_URI" --domain ceremony 2>/dev/null)
[ "${r%% *}" = resumed ]; tap_ok $? "ticket issued with token B resumes with token A [$r]"
# Control: another domain must not resume (the check above can fail).
r=$(SOFTHSM2_CONF=$A_CONF "$TICKET" issue --uri "$A_URI" --domain ceremony 2>/dev/null |
    SOFTHSM2_CONF=$B_CONF "$TICKET" resume --uri "$B_URI" --domain other 2>/dev/null)
[ "${r%% *}" = full ]; tap_ok $? "control: a server of another domain does not resume it [$r]"

# rotate and create make their generations final at once.
SOFTHSM2_CONF=$B_CONF "$HSMKEYS_TOOL" rotate --token B --pin-source "$B_PIN_FILE" --activate-in 1d >/dev/null 2>&1
r=$(SOFTHSM2_CONF=$B_CONF "$VALUE" attrs "$MOD" B hsmkeys-master "$B_PIN_FILE" 2>&1 | grep '^gen 2:')
[ "$r" = "gen 2: sensitive=1 extractable=0 modifiable=0 copyable=0 $USAGES" ]
tap_ok $? "rotate: generation 2 is final from the start [$r]"
SOFTHSM2_CONF=$B_CONF "$HSMKEYS_TOOL" create --token B --pin-source "$B_PIN_FILE" --label fresh --generation 7 >/dev/null 2>&1
r=$(SOFTHSM2_CONF=$B_CONF "$VALUE" attrs "$MOD" B fresh "$B_PIN_FILE" 2>&1)
[ "$r" = "gen 7: sensitive=1 extractable=0 modifiable=0 copyable=0 $USAGES" ]
tap_ok $? "create: the new master is final from the start [$r]"

# Nothing secret in the files that travelled.
! grep -rqa "$(cat "$A_PIN_FILE")" "$W" && ! grep -rqa "$(cat "$A_SO_PIN_FILE")" "$W"
tap_ok $? "no PIN in the ceremony's files"
tap_done
