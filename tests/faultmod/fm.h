/*
 * fm.h - internals of the fault-injecting PKCS#11 module (tests only).
 *
 * The module (module.c) wraps the real module's function list; every wrapped
 * call first enters the rule engine (rules.c), which counts it and decides
 * whether to stall it and whether to fail it with an injected CKR.  Rules
 * come from the in-process control API (faultmod.h) or from a control file
 * named by HSMKEYS_FAULT_CONTROL, re-read whenever it changes.
 *
 * Threat handled: none in production; it lets tests reach the failure
 * branches of libhsmkeys (device removed, session lost, slow token) against
 * the real SoftHSM2 instead of a mock.
 */
#ifndef HSMKEYS_FM_H
#define HSMKEYS_FM_H

#include <p11-kit/pkcs11.h>

/* The wrapped (counted, faultable) functions.  Others pass straight through. */
enum fm_fn {
    FM_C_Initialize, FM_C_Finalize, FM_C_GetInfo, FM_C_GetSlotList,
    FM_C_GetSlotInfo, FM_C_GetTokenInfo, FM_C_GetMechanismList,
    FM_C_GetMechanismInfo, FM_C_InitToken, FM_C_InitPIN, FM_C_OpenSession,
    FM_C_CloseSession, FM_C_CloseAllSessions, FM_C_GetSessionInfo, FM_C_Login,
    FM_C_Logout, FM_C_CreateObject, FM_C_DestroyObject, FM_C_GetAttributeValue,
    FM_C_SetAttributeValue, FM_C_FindObjectsInit, FM_C_FindObjects,
    FM_C_FindObjectsFinal, FM_C_SignInit, FM_C_Sign, FM_C_SignUpdate,
    FM_C_SignFinal, FM_C_GenerateKey, FM_C_GenerateKeyPair, FM_C_WrapKey,
    FM_C_UnwrapKey, FM_C_DeriveKey, FM_C_GenerateRandom,
    FM_N
};

/* Count the call, apply a stall rule, then a fail rule.  Returns 1 and sets
 * *rv when the call must fail with *rv without reaching the real module. */
int fm_enter(enum fm_fn fn, CK_RV *rv);
/* After the real call: its rv, or the rv of a late-fail rule (the module did
 * the work but answered an error, as SoftHSM2's C_CreateObject can). */
CK_RV fm_leave(enum fm_fn fn, CK_RV real_rv);

/* Name of a wrapped function ("C_Sign"); index by name, -1 if unknown. */
const char *fm_fn_name(enum fm_fn fn);
int fm_fn_index(const char *name);

#endif
