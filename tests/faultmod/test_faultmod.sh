#!/bin/bash
# test_faultmod.sh - the fault module itself, driven through its control
# file by another PKCS#11 consumer (OpenSC's pkcs11-tool): it forwards to the
# real SoftHSM2, counts calls, fails the chosen call for the next N calls
# only, and ignores rules once the control file is emptied.
# Threat handled: a fault module that silently does nothing would make the
# fault tests pass for the wrong reason.
. "$(dirname "$0")/../lib/lab.sh"
lab_init
MOD=$HSMKEYS_BUILD/tests/libhsmkeys-faultmod.so
if ! command -v pkcs11-tool >/dev/null; then
    tap_skip "fault module driven by pkcs11-tool" "pkcs11-tool (opensc) not installed"; tap_done; exit
fi
lab_host F1 || { tap_ok 1 "lab host"; tap_done; exit; }
export SOFTHSM2_CONF=$F1_CONF HSMKEYS_FAULT_CONTROL=$LAB/ctl HSMKEYS_FAULT_COUNTS=$LAB/counts
: > "$LAB/ctl"
p11() { pkcs11-tool --module "$MOD" --token-label F1 "$@" >"$LAB/out" 2>&1; }
count() { awk -v f="$1" '$1 == f { print $2 }' "$LAB/counts"; }

p11 -L
tap_ok $? "forwards to SoftHSM2: slots listed through the module"
grep -q "token label *: F1" "$LAB/out"; tap_ok $? "the real token is visible"
[ "$(count C_GetSlotList)" -ge 1 ] && [ "$(count C_Initialize)" = 1 ]
tap_ok $? "calls are counted per function (C_Initialize $(count C_Initialize), C_GetSlotList $(count C_GetSlotList))"

echo "C_GetSlotList fail CKR_DEVICE_ERROR" > "$LAB/ctl"
p11 -L; rc=$?
[ $rc != 0 ] && grep -q "C_GetSlotList.*CKR_DEVICE_ERROR" "$LAB/out"
tap_ok $? "an injected C_GetSlotList failure reaches the caller with its CKR (rc $rc)"

printf 'C_OpenSession fail CKR_DEVICE_REMOVED 1\nC_GetSlotList fail CKR_DEVICE_ERROR 1 after 5\n' > "$LAB/ctl"
p11 -O; rc=$?
[ $rc != 0 ] && grep -q "CKR_DEVICE_REMOVED" "$LAB/out" && [ "$(count injected)" = 1 ]
tap_ok $? "count 1 fails one call; 'after 5' lets the first calls through (rc $rc, injected $(count injected))"

# fail-late: the real module does the work, the caller gets the error
echo "C_CreateObject fail-late CKR_GENERAL_ERROR 1" > "$LAB/ctl"
echo "fault test data" > "$LAB/data"
p11 --write-object "$LAB/data" --type data --label late-one; rc=$?
: > "$LAB/ctl"
[ $rc != 0 ] && grep -q "C_CreateObject.*CKR_GENERAL_ERROR" "$LAB/out" && p11 -O &&
    grep -q "label: *'late-one'" "$LAB/out"
tap_ok $? "fail-late: C_CreateObject stores the object, then the caller gets CKR_GENERAL_ERROR (rc $rc)"

printf '# nothing\n' > "$LAB/ctl"
p11 -T; tap_ok $? "emptying the control file clears the faults"
tap_done
