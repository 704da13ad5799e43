/*
 * module.c - the fault module's PKCS#11 face: C_GetFunctionList returns a
 * copy of the real module's function list in which the functions of fm.h are
 * replaced by wrappers that enter the rule engine, then forward.
 *
 * The real module is dlopen'ed on the first C_GetFunctionList from
 * HSMKEYS_FAULT_REAL_MODULE (default: SoftHSM2).  Functions not wrapped
 * (digest, encrypt, ...) go straight to the real module, uncounted.
 *
 * Threat handled: none in production (tests only).  Faithfulness matters: a
 * failed C_Sign ends the real signing operation, as PKCS#11 says a failed
 * C_Sign does, so the library under test sees a token, not an artefact.
 */
#include "fm.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define FM_DEFAULT_REAL "/usr/lib/softhsm/libsofthsm2.so"

static CK_FUNCTION_LIST fm_list;
static CK_FUNCTION_LIST_PTR real;
static pthread_once_t fm_once = PTHREAD_ONCE_INIT;
static CK_RV fm_load_rv = CKR_GENERAL_ERROR;

/* End an active signing operation on the real module after an injected
 * failure (PKCS#11 2.40 5.12: a failed C_Sign terminates the operation). */
static void fm_end_sign(CK_SESSION_HANDLE s)
{
    unsigned char buf[1024];
    CK_ULONG len = sizeof buf;
    (void)real->C_SignFinal(s, buf, &len);
}

static CK_RV w_Initialize(void *a)
{
    CK_RV rv;
    return fm_enter(FM_C_Initialize, &rv) ? rv : fm_leave(FM_C_Initialize, real->C_Initialize(a));
}

static CK_RV w_Finalize(void *a)
{
    CK_RV rv;
    return fm_enter(FM_C_Finalize, &rv) ? rv : fm_leave(FM_C_Finalize, real->C_Finalize(a));
}

static CK_RV w_GetInfo(CK_INFO_PTR i)
{
    CK_RV rv;
    return fm_enter(FM_C_GetInfo, &rv) ? rv : fm_leave(FM_C_GetInfo, real->C_GetInfo(i));
}

static CK_RV w_GetSlotList(CK_BBOOL p, CK_SLOT_ID_PTR l, CK_ULONG_PTR n)
{
    CK_RV rv;
    return fm_enter(FM_C_GetSlotList, &rv)
               ? rv : fm_leave(FM_C_GetSlotList, real->C_GetSlotList(p, l, n));
}

static CK_RV w_GetSlotInfo(CK_SLOT_ID s, CK_SLOT_INFO_PTR i)
{
    CK_RV rv;
    return fm_enter(FM_C_GetSlotInfo, &rv)
               ? rv : fm_leave(FM_C_GetSlotInfo, real->C_GetSlotInfo(s, i));
}

static CK_RV w_GetTokenInfo(CK_SLOT_ID s, CK_TOKEN_INFO_PTR i)
{
    CK_RV rv;
    return fm_enter(FM_C_GetTokenInfo, &rv)
               ? rv : fm_leave(FM_C_GetTokenInfo, real->C_GetTokenInfo(s, i));
}

static CK_RV w_GetMechanismList(CK_SLOT_ID s, CK_MECHANISM_TYPE_PTR l, CK_ULONG_PTR n)
{
    CK_RV rv;
    return fm_enter(FM_C_GetMechanismList, &rv)
               ? rv : fm_leave(FM_C_GetMechanismList, real->C_GetMechanismList(s, l, n));
}

static CK_RV w_GetMechanismInfo(CK_SLOT_ID s, CK_MECHANISM_TYPE t, CK_MECHANISM_INFO_PTR i)
{
    CK_RV rv;
    return fm_enter(FM_C_GetMechanismInfo, &rv)
               ? rv : fm_leave(FM_C_GetMechanismInfo, real->C_GetMechanismInfo(s, t, i));
}

static CK_RV w_InitToken(CK_SLOT_ID s, CK_UTF8CHAR_PTR pin, CK_ULONG n, CK_UTF8CHAR_PTR label)
{
    CK_RV rv;
    return fm_enter(FM_C_InitToken, &rv)
               ? rv : fm_leave(FM_C_InitToken, real->C_InitToken(s, pin, n, label));
}

static CK_RV w_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_InitPIN, &rv) ? rv : fm_leave(FM_C_InitPIN, real->C_InitPIN(s, pin, n));
}

static CK_RV w_OpenSession(CK_SLOT_ID s, CK_FLAGS f, CK_VOID_PTR a, CK_NOTIFY n,
                           CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv;
    return fm_enter(FM_C_OpenSession, &rv)
               ? rv : fm_leave(FM_C_OpenSession, real->C_OpenSession(s, f, a, n, out));
}

static CK_RV w_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv;
    return fm_enter(FM_C_CloseSession, &rv)
               ? rv : fm_leave(FM_C_CloseSession, real->C_CloseSession(s));
}

static CK_RV w_CloseAllSessions(CK_SLOT_ID s)
{
    CK_RV rv;
    return fm_enter(FM_C_CloseAllSessions, &rv)
               ? rv : fm_leave(FM_C_CloseAllSessions, real->C_CloseAllSessions(s));
}

static CK_RV w_GetSessionInfo(CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR i)
{
    CK_RV rv;
    return fm_enter(FM_C_GetSessionInfo, &rv)
               ? rv : fm_leave(FM_C_GetSessionInfo, real->C_GetSessionInfo(s, i));
}

static CK_RV w_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_Login, &rv) ? rv : fm_leave(FM_C_Login, real->C_Login(s, u, pin, n));
}

static CK_RV w_Logout(CK_SESSION_HANDLE s)
{
    CK_RV rv;
    return fm_enter(FM_C_Logout, &rv) ? rv : fm_leave(FM_C_Logout, real->C_Logout(s));
}

static CK_RV w_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                            CK_OBJECT_HANDLE_PTR o)
{
    CK_RV rv;
    return fm_enter(FM_C_CreateObject, &rv)
               ? rv : fm_leave(FM_C_CreateObject, real->C_CreateObject(s, t, n, o));
}

static CK_RV w_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    CK_RV rv;
    return fm_enter(FM_C_DestroyObject, &rv)
               ? rv : fm_leave(FM_C_DestroyObject, real->C_DestroyObject(s, o));
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                 CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_GetAttributeValue, &rv)
               ? rv : fm_leave(FM_C_GetAttributeValue, real->C_GetAttributeValue(s, o, t, n));
}

static CK_RV w_SetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                 CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_SetAttributeValue, &rv)
               ? rv : fm_leave(FM_C_SetAttributeValue, real->C_SetAttributeValue(s, o, t, n));
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_FindObjectsInit, &rv)
               ? rv : fm_leave(FM_C_FindObjectsInit, real->C_FindObjectsInit(s, t, n));
}

static CK_RV w_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max,
                           CK_ULONG_PTR n)
{
    CK_RV rv;
    return fm_enter(FM_C_FindObjects, &rv)
               ? rv : fm_leave(FM_C_FindObjects, real->C_FindObjects(s, o, max, n));
}

static CK_RV w_FindObjectsFinal(CK_SESSION_HANDLE s)
{
    CK_RV rv;
    return fm_enter(FM_C_FindObjectsFinal, &rv)
               ? rv : fm_leave(FM_C_FindObjectsFinal, real->C_FindObjectsFinal(s));
}

static CK_RV w_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
    CK_RV rv;
    return fm_enter(FM_C_SignInit, &rv) ? rv : fm_leave(FM_C_SignInit, real->C_SignInit(s, m, k));
}

static CK_RV w_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR sig,
                    CK_ULONG_PTR sn)
{
    CK_RV rv;
    if (fm_enter(FM_C_Sign, &rv)) {
        fm_end_sign(s);
        return rv;
    }
    return fm_leave(FM_C_Sign, real->C_Sign(s, d, dn, sig, sn));
}

static CK_RV w_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dn)
{
    CK_RV rv;
    if (fm_enter(FM_C_SignUpdate, &rv)) {
        fm_end_sign(s);
        return rv;
    }
    return fm_leave(FM_C_SignUpdate, real->C_SignUpdate(s, d, dn));
}

static CK_RV w_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sn)
{
    CK_RV rv;
    if (fm_enter(FM_C_SignFinal, &rv)) {
        fm_end_sign(s);
        return rv;
    }
    return fm_leave(FM_C_SignFinal, real->C_SignFinal(s, sig, sn));
}

static CK_RV w_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
                           CK_ULONG n, CK_OBJECT_HANDLE_PTR k)
{
    CK_RV rv;
    return fm_enter(FM_C_GenerateKey, &rv)
               ? rv : fm_leave(FM_C_GenerateKey, real->C_GenerateKey(s, m, t, n, k));
}

static CK_RV w_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
                               CK_ATTRIBUTE_PTR pt, CK_ULONG pn, CK_ATTRIBUTE_PTR qt,
                               CK_ULONG qn, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
    CK_RV rv;
    return fm_enter(FM_C_GenerateKeyPair, &rv)
               ? rv : fm_leave(FM_C_GenerateKeyPair,
                               real->C_GenerateKeyPair(s, m, pt, pn, qt, qn, pub, priv));
}

static CK_RV w_WrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wk,
                       CK_OBJECT_HANDLE k, CK_BYTE_PTR out, CK_ULONG_PTR n)
{
    CK_RV rv;
    return fm_enter(FM_C_WrapKey, &rv)
               ? rv : fm_leave(FM_C_WrapKey, real->C_WrapKey(s, m, wk, k, out, n));
}

static CK_RV w_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE uk,
                         CK_BYTE_PTR w, CK_ULONG wn, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                         CK_OBJECT_HANDLE_PTR k)
{
    CK_RV rv;
    return fm_enter(FM_C_UnwrapKey, &rv)
               ? rv : fm_leave(FM_C_UnwrapKey, real->C_UnwrapKey(s, m, uk, w, wn, t, n, k));
}

static CK_RV w_DeriveKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b,
                         CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k)
{
    CK_RV rv;
    return fm_enter(FM_C_DeriveKey, &rv)
               ? rv : fm_leave(FM_C_DeriveKey, real->C_DeriveKey(s, m, b, t, n, k));
}

static CK_RV w_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG n)
{
    CK_RV rv;
    return fm_enter(FM_C_GenerateRandom, &rv)
               ? rv : fm_leave(FM_C_GenerateRandom, real->C_GenerateRandom(s, out, n));
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

static void fm_load(void)
{
    const char *path = getenv("HSMKEYS_FAULT_REAL_MODULE");
    if (!path || !*path)
        path = FM_DEFAULT_REAL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "hsmkeys-faultmod: cannot load %s: %s\n", path, dlerror());
        return;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    if (!get || get(&real) != CKR_OK || !real) {
        fprintf(stderr, "hsmkeys-faultmod: %s has no usable C_GetFunctionList\n", path);
        return;
    }
    fm_list = *real;
    fm_list.C_GetFunctionList = C_GetFunctionList;
    fm_list.C_Initialize = w_Initialize;
    fm_list.C_Finalize = w_Finalize;
    fm_list.C_GetInfo = w_GetInfo;
    fm_list.C_GetSlotList = w_GetSlotList;
    fm_list.C_GetSlotInfo = w_GetSlotInfo;
    fm_list.C_GetTokenInfo = w_GetTokenInfo;
    fm_list.C_GetMechanismList = w_GetMechanismList;
    fm_list.C_GetMechanismInfo = w_GetMechanismInfo;
    fm_list.C_InitToken = w_InitToken;
    fm_list.C_InitPIN = w_InitPIN;
    fm_list.C_OpenSession = w_OpenSession;
    fm_list.C_CloseSession = w_CloseSession;
    fm_list.C_CloseAllSessions = w_CloseAllSessions;
    fm_list.C_GetSessionInfo = w_GetSessionInfo;
    fm_list.C_Login = w_Login;
    fm_list.C_Logout = w_Logout;
    fm_list.C_CreateObject = w_CreateObject;
    fm_list.C_DestroyObject = w_DestroyObject;
    fm_list.C_GetAttributeValue = w_GetAttributeValue;
    fm_list.C_SetAttributeValue = w_SetAttributeValue;
    fm_list.C_FindObjectsInit = w_FindObjectsInit;
    fm_list.C_FindObjects = w_FindObjects;
    fm_list.C_FindObjectsFinal = w_FindObjectsFinal;
    fm_list.C_SignInit = w_SignInit;
    fm_list.C_Sign = w_Sign;
    fm_list.C_SignUpdate = w_SignUpdate;
    fm_list.C_SignFinal = w_SignFinal;
    fm_list.C_GenerateKey = w_GenerateKey;
    fm_list.C_GenerateKeyPair = w_GenerateKeyPair;
    fm_list.C_WrapKey = w_WrapKey;
    fm_list.C_UnwrapKey = w_UnwrapKey;
    fm_list.C_DeriveKey = w_DeriveKey;
    fm_list.C_GenerateRandom = w_GenerateRandom;
    fm_load_rv = CKR_OK;
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&fm_once, fm_load);
    if (fm_load_rv != CKR_OK)
        return fm_load_rv;
    *out = &fm_list;
    return CKR_OK;
}
