#!/bin/bash
# test_cli.sh - hsmkeys-tool's command line: help for every subcommand,
# usage errors, token initialisation (SoftHSM2), listing tokens, and the
# checks on times that need no token.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
T=$HSMKEYS_BUILD/hsmkeys-tool
lab_init
lab_host X none

help=$("$T" --help); rc=$?
cmds="init create import-test-master rotate transport-keygen transport-export trust wrap unwrap seal verify kcv destroy retire status"
miss=
for c in $cmds; do printf '%s\n' "$help" | grep -q "^  $c " || miss="$miss $c"; done
[ $rc = 0 ] && [ -z "$miss" ]; tap_ok $? "--help lists every subcommand${miss:+ (missing:$miss)}"
bad=
for c in $cmds; do "$T" $c --help 2>&1 | grep -q "^usage: hsmkeys-tool" || bad="$bad $c"; done
[ -z "$bad" ]; tap_ok $? "every subcommand has --help${bad:+ (broken:$bad)}"
"$T" frobnicate >/dev/null 2>&1; [ $? = 2 ]; tap_ok $? "an unknown subcommand is a usage error (exit 2)"
"$T" status --bogus >/dev/null 2>&1; [ $? = 2 ]; tap_ok $? "an unknown option is a usage error (exit 2)"
# Per-command option tables: an option the command does not take is refused
# (it was silently ignored), and --help lists exactly what is accepted.
out=$("$T" kcv --to x --format der --clonable 2>&1); rc=$?
[ $rc = 2 ] && printf '%s' "$out" | grep -q "'kcv' does not take --to" && printf '%s' "$out" | grep -q -- '--expect-kcv'
tap_ok $? "kcv --to x --format der --clonable: refused, naming --to and kcv's own options (rc $rc)"
out=$("$T" seal --token X --no-clone --out f 2>&1); rc=$?
[ $rc = 2 ] && printf '%s' "$out" | grep -q "'seal' does not take --out"
tap_ok $? "seal --out: refused before any token is opened (rc $rc)"
bad=
for c in $cmds; do
    h=$("$T" "$c" --help 2>&1)
    # every --option of the synopsis (the lines before the notes) is listed under options:
    syn=$(printf '%s\n' "$h" | awk 'NR == 1 || /^       / { print } /^  [^ ]/ { exit }' | grep -oE -- '--[a-z-]+' | sort -u)
    listed=$(printf '%s\n' "$h" | sed -n '/^options:/,/^$/p' | grep -oE '^  --[a-z-]+' | sed 's/^  //' | sort -u)
    for o in $syn; do printf '%s\n' "$listed" | grep -qx -- "$o" || bad="$bad $c:$o"; done
    # ... and every listed option is accepted by the parser for that command
    for o in $listed; do
        out=$("$T" "$c" "$o" 2>&1 </dev/null)
        printf '%s' "$out" | grep -q "does not take" && bad="$bad $c:$o(refused)"
    done
done
[ -z "$bad" ]; tap_ok $? "each command's --help lists its synopsis' options, and takes every option it lists${bad:+ (bad:$bad)}"
out=$("$T" destroy --token NOSUCH --generation 1 --epoch 1h30m --lifetime 2h 2>&1)
! printf '%s' "$out" | grep -q 'not a duration'
tap_ok $? "--epoch 1h30m is a duration, as in the servers' configuration"
out=$("$T" create --pin-source /dev/null 2>&1); [ $? != 0 ] && printf '%s' "$out" | grep -q -- '--token LABEL'
tap_ok $? "no token selected: the error says how to select one"
out=$("$T" rotate --token X --activate-in 1x 2>&1); [ $? = 2 ] && printf '%s' "$out" | grep -q 'not a duration'
tap_ok $? "a malformed duration is refused"

# init on a free SoftHSM2 slot, next to X.
export SOFTHSM2_CONF=$X_CONF
(umask 077; printf 'so-pin-new-1' > "$LAB/so"; printf 'user-pin-new-1' > "$LAB/user")
(umask 077; printf 'abc' > "$LAB/short")
out=$("$T" init --token SHORT --so-pin-source "$LAB/short" --pin-source "$LAB/user" 2>&1)
[ $? != 0 ] && printf '%s' "$out" | grep -q 'PIN must have 4 to'
tap_ok $? "init refuses a PIN shorter than the token allows, saying the limits"
"$T" init --token NEW --so-pin-source "$LAB/so" --pin-source "$LAB/user" >/dev/null 2>&1
tap_ok $? "init makes a new token with SO and user PIN from files"
out=$("$T" status 2>&1); printf "%s" "$out" | grep -q "token .NEW."; tap_ok $? "status lists the new token"; printf "%s\n" "$out" | sed "s/^/# /"
"$T" create --token NEW --pin-source "$LAB/user" >/dev/null 2>&1; tap_ok $? "the new token's user PIN works (create)"
out=$("$T" init --token NEW --so-pin-source "$LAB/so" --pin-source "$LAB/user" 2>&1)
[ $? != 0 ] && printf '%s' "$out" | grep -q 'already exists'
tap_ok $? "init refuses a label that exists (it would destroy the master)"
s=$("$T" status --token NEW --pin-source "$LAB/user" 2>&1)
printf '%s' "$s" | grep -q 'sensitive=yes extractable=no always-sensitive=yes never-extractable=yes wrap-with-trusted=yes'
tap_ok $? "a master made by create (not clonable) is sensitive and never extractable"
out=$("$T" status --token NEW --uri pkcs11:token=NEW 2>&1); [ $? = 2 ]; tap_ok $? "--token and --uri together are refused"
"$T" verify --uri "pkcs11:token=NEW?pin-source=$LAB/user" >/dev/null 2>&1
tap_ok $? "a pkcs11: URI with pin-source selects the token"
tap_done
