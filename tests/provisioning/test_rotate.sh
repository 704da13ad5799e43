#!/bin/bash
# test_rotate.sh - master rotation on a cloned pair of tokens: generation 2
# is added with activation time T (stored on the token) and cloned to B with
# the trusted transport key; tickets issued before T still resume after T,
# tickets issued after T use generation 2, and destroying generation 1 once
# its window has passed breaks nothing current.  Clocks are given to the
# library (hk-ticket --at) and the tool (--now): no waiting, no wall-clock
# assertions.  Epoch 60 s, lifetime 120 s (2 past epochs).
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
T_=$HSMKEYS_BUILD/hsmkeys-tool
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
lab_init
fp_of() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
lab_host A fleet
lab_host B fleet
W=$LAB/work; mkdir -p "$W"
ta() { SOFTHSM2_CONF=$A_CONF "$T_" "$@" --token A; }
tb() { SOFTHSM2_CONF=$B_CONF "$T_" "$@" --token B; }
SCHED=(--epoch 60 --lifetime 120)
D=rotation
# issue_resume AT1 AT2: ticket from A at AT1 offered to B at AT2; prints "resumed|full NAME".
issue_resume() {
    SOFTHSM2_CONF=$A_CONF "$TICKET" issue --uri "$A_URI" --domain $D "${SCHED[@]}" --at "$1" 2>/dev/null |
        SOFTHSM2_CONF=$B_CONF "$TICKET" resume --uri "$B_URI" --domain $D "${SCHED[@]}" --at "$2" 2>/dev/null
}
tag() { printf '%s' "${1#* }" | cut -c1-20; }   # version + 9-byte tag, hex

NOW=$(date +%s)
T=$(( (NOW / 60 + 1000) * 60 ))   # an epoch boundary well in the future

ka=$(ta verify --pin-source "$A_PIN_FILE" | awk '{print $3}')
kb=$(tb verify --pin-source "$B_PIN_FILE" | awk '{print $3}')
[ -n "$ka" ] && [ "$ka" = "$kb" ]; tap_ok $? "A and B start with the same generation 1 ($ka)"

# Generation 2 on A, activation T, cloned to B.
ta rotate --pin-source "$A_PIN_FILE" --clonable --activate-at $T >"$W/rot" 2>&1
tap_ok $? "rotate: generation 2 added on A, active from T"
grep -q 'generation 2, active from' "$W/rot"; tap_ok $? "... the tool reports generation 2 and its activation"
tb transport-keygen --pin-source "$B_PIN_FILE" --out "$W/B.pem" >/dev/null 2>&1
ta trust --so-pin-source "$A_SO_PIN_FILE" --in "$W/B.pem" --expect-fingerprint "$(fp_of "$W/B.pem")" --name B >/dev/null 2>&1
k2=$(ta wrap --pin-source "$A_PIN_FILE" --generation 2 --to "$W/B.pem" --out "$W/blob2" 2>&1 | awk '$1=="kcv"{print $3}')
tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob2" --expect-kcv "$k2" >/dev/null 2>&1 &&
    ta seal --pin-source "$A_PIN_FILE" --generation 2 >/dev/null 2>&1
tap_ok $? "generation 2 cloned to B and sealed on A"
tb status --pin-source "$B_PIN_FILE" --now $((T - 600)) 2>&1 | grep -q 'generation 2 \[scheduled\]: active from'
tap_ok $? "B's status shows generation 2 scheduled, with A's activation time"

# A later generation needs no SO: the trusted transport key is reused.
ta rotate --pin-source "$A_PIN_FILE" --clonable --activate-at $((T + 86400)) >/dev/null 2>&1 &&
k3=$(ta wrap --pin-source "$A_PIN_FILE" --generation 3 --to "$W/B.pem" --out "$W/blob3" 2>&1 | awk '$1=="kcv"{print $3}') &&
    tb unwrap --pin-source "$B_PIN_FILE" --in "$W/blob3" --expect-kcv "$k3" >/dev/null 2>&1 &&
    ta seal --pin-source "$A_PIN_FILE" --generation 3 >/dev/null 2>&1
tap_ok $? "generation 3 is cloned with the user PIN alone (trusted key reused)"

# A generation scheduled by mistake can be cancelled before anyone used it.
ta rotate --pin-source "$A_PIN_FILE" --activate-at $((T + 5 * 86400)) >/dev/null 2>&1 &&
    ta destroy --pin-source "$A_PIN_FILE" --generation 4 "${SCHED[@]}" 2>&1 | grep -q 'cancelled scheduled generation 4'
tap_ok $? "a scheduled generation not yet active can be cancelled"
out=$(ta destroy --pin-source "$A_PIN_FILE" --generation 3 "${SCHED[@]}" --i-understand-this-is-for-tests --now $((T + 86400 - 30)) 2>&1)
[ $? != 0 ] && printf '%s' "$out" | grep -q 'newest'
tap_ok $? "... but not within an epoch of its activation (a fast clock may already use it)"

r0=$(issue_resume $((T - 600)) $((T - 590)))
[ "${r0%% *}" = resumed ]; tap_ok $? "before T: A's ticket resumes on B [$r0]"
r1=$(issue_resume $((T - 30)) $((T + 30)))
[ "${r1%% *}" = resumed ]; tap_ok $? "ticket issued before T resumes after T [$r1]"
[ "$(tag "$r1")" = "$(tag "$r0")" ]; tap_ok $? "... it was made with generation 1 (same name tag)"
r2=$(issue_resume $((T + 30)) $((T + 40)))
[ "${r2%% *}" = resumed ]; tap_ok $? "ticket issued after T resumes [$r2]"
[ "$(tag "$r2")" != "$(tag "$r0")" ]; tap_ok $? "... and uses another generation's name tag"
g2=$(ta status --pin-source "$A_PIN_FILE" --domain $D 2>/dev/null |
     awk '$1=="generation" && $2=="2" {f=1} f && /key names for domain/ {print $NF=="epoch" ? $(NF-2) : ""; exit}')
[ -n "$g2" ] && [ "$(tag "$r2")" = "$g2" ]; tap_ok $? "... namely generation 2's ($g2)"

# Destroy generation 1: refused inside its window, accepted after, then nothing breaks.
out=$(ta destroy --pin-source "$A_PIN_FILE" --generation 1 "${SCHED[@]}" --now $((T + 240)) 2>&1)
[ $? = 2 ] && printf '%s' "$out" | grep -q 'bypass'
tap_ok $? "--now on destroy needs the test-only flag"
out=$(ta destroy --pin-source "$A_PIN_FILE" --generation 1 "${SCHED[@]}" --i-understand-this-is-for-tests --now $((T + 30)) 2>&1)
[ $? != 0 ] && printf '%s' "$out" | grep -q 'within the window'
tap_ok $? "destroying generation 1 inside its window is refused"
ta destroy --pin-source "$A_PIN_FILE" --generation 1 "${SCHED[@]}" --i-understand-this-is-for-tests --now $((T + 240)) >/dev/null 2>&1 &&
    tb destroy --pin-source "$B_PIN_FILE" --generation 1 "${SCHED[@]}" --i-understand-this-is-for-tests --now $((T + 240)) >/dev/null 2>&1
tap_ok $? "generation 1 destroyed on A and B once its last epoch left the window"
ta verify --pin-source "$A_PIN_FILE" --generation 1 >/dev/null 2>&1
[ $? != 0 ]; tap_ok $? "... it is gone"
r3=$(issue_resume $((T + 300)) $((T + 310)))
[ "${r3%% *}" = resumed ]; tap_ok $? "after destroying generation 1, current tickets still resume [$r3]"
r4=$(issue_resume $((T + 250)) $((T + 300)))
[ "${r4%% *}" = resumed ]; tap_ok $? "... and so do recent ones [$r4]"
tap_done
