/*
 * p11_check.c - the one PKCS#11 checkpoint: CKR names, CKR -> hsmkeys codes
 * with a fix hint, which codes mean a lost connection, and the retry policy
 * for transient failures.
 *
 * Owns: the per-thread call counter HK_FN bumps, and every mapping of a CK_RV
 * (see p11.h for the table).  No state beyond that counter.
 * Threat: PKCS#11 codes leaking to callers as bare numbers, and processes
 * that start together hammering a busy token (SoftHSM2 #757): retries back
 * off exponentially with per-process jitter, never spin.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "p11.h"

_Thread_local uint64_t hk_p11_thread_calls;

const char *hk_ckr_name(CK_RV rv)
{
    switch (rv) {
#define N(x) case x: return #x
    N(CKR_OK); N(CKR_CANCEL); N(CKR_HOST_MEMORY); N(CKR_SLOT_ID_INVALID);
    N(CKR_GENERAL_ERROR); N(CKR_FUNCTION_FAILED); N(CKR_ARGUMENTS_BAD);
    N(CKR_CANT_LOCK); N(CKR_ATTRIBUTE_READ_ONLY); N(CKR_ATTRIBUTE_SENSITIVE);
    N(CKR_ATTRIBUTE_TYPE_INVALID); N(CKR_ATTRIBUTE_VALUE_INVALID);
    N(CKR_DATA_INVALID); N(CKR_DATA_LEN_RANGE); N(CKR_DEVICE_ERROR);
    N(CKR_DEVICE_MEMORY); N(CKR_DEVICE_REMOVED); N(CKR_ENCRYPTED_DATA_INVALID);
    N(CKR_FUNCTION_CANCELED); N(CKR_FUNCTION_NOT_SUPPORTED); N(CKR_KEY_HANDLE_INVALID);
    N(CKR_KEY_SIZE_RANGE); N(CKR_KEY_TYPE_INCONSISTENT); N(CKR_KEY_FUNCTION_NOT_PERMITTED);
    N(CKR_KEY_NOT_WRAPPABLE); N(CKR_KEY_UNEXTRACTABLE); N(CKR_MECHANISM_INVALID);
    N(CKR_MECHANISM_PARAM_INVALID); N(CKR_OBJECT_HANDLE_INVALID);
    N(CKR_OPERATION_ACTIVE); N(CKR_OPERATION_NOT_INITIALIZED); N(CKR_PIN_INCORRECT);
    N(CKR_PIN_INVALID); N(CKR_PIN_LEN_RANGE); N(CKR_PIN_EXPIRED); N(CKR_PIN_LOCKED);
    N(CKR_SESSION_CLOSED); N(CKR_SESSION_COUNT); N(CKR_SESSION_HANDLE_INVALID);
    N(CKR_SESSION_READ_ONLY); N(CKR_SESSION_EXISTS); N(CKR_SIGNATURE_INVALID);
    N(CKR_TEMPLATE_INCOMPLETE); N(CKR_TEMPLATE_INCONSISTENT); N(CKR_TOKEN_NOT_PRESENT);
    N(CKR_TOKEN_NOT_RECOGNIZED); N(CKR_TOKEN_WRITE_PROTECTED);
    N(CKR_UNWRAPPING_KEY_HANDLE_INVALID); N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    N(CKR_USER_ALREADY_LOGGED_IN); N(CKR_USER_NOT_LOGGED_IN); N(CKR_USER_PIN_NOT_INITIALIZED);
    N(CKR_USER_TYPE_INVALID); N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    N(CKR_WRAPPED_KEY_INVALID); N(CKR_WRAPPED_KEY_LEN_RANGE); N(CKR_WRAPPING_KEY_HANDLE_INVALID);
    N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT); N(CKR_BUFFER_TOO_SMALL);
    N(CKR_CRYPTOKI_NOT_INITIALIZED); N(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    N(CKR_ACTION_PROHIBITED);
#undef N
    default: return "CKR_(unknown)";
    }
}

int hk_p11_check(CK_RV rv, const char *fn)
{
    int code;
    const char *hint = "";

    switch (rv) {
    case CKR_OK:
        return HSMKEYS_OK;
    case CKR_PIN_INCORRECT: case CKR_PIN_INVALID: case CKR_PIN_LEN_RANGE:
        code = HSMKEYS_E_LOGIN;
        hint = ": the PIN is wrong; check the pin-source file (each failure may count toward locking the PIN)";
        break;
    case CKR_PIN_LOCKED: case CKR_PIN_EXPIRED: case CKR_USER_PIN_NOT_INITIALIZED:
        code = HSMKEYS_E_LOGIN;
        hint = ": the security officer must reset or initialise the user PIN";
        break;
    case CKR_HOST_MEMORY:
        code = HSMKEYS_E_NOMEM;
        break;
    case CKR_USER_NOT_LOGGED_IN: case CKR_SESSION_READ_ONLY:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN: case CKR_TOKEN_WRITE_PROTECTED:
        code = HSMKEYS_E_STATE;
        break;
    case CKR_KEY_HANDLE_INVALID: case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED: case CKR_KEY_SIZE_RANGE:
    case CKR_MECHANISM_INVALID: case CKR_MECHANISM_PARAM_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
        code = HSMKEYS_E_NO_MASTER;
        hint = ": the master key cannot do HMAC-SHA256 signing (needs CKA_SIGN, 32+ bytes)";
        break;
    case CKR_ARGUMENTS_BAD: case CKR_ATTRIBUTE_READ_ONLY: case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ATTRIBUTE_TYPE_INVALID: case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCOMPLETE: case CKR_TEMPLATE_INCONSISTENT:
        code = HSMKEYS_E_INVALID;
        break;
    case CKR_TOKEN_NOT_PRESENT: case CKR_DEVICE_REMOVED:
        code = HSMKEYS_E_TOKEN;
        hint = ": the token is gone; check the HSM's connection";
        break;
    default:
        code = HSMKEYS_E_TOKEN;
        break;
    }
    return hk_fail(code, "%s failed: %s (0x%lx)%s", fn, hk_ckr_name(rv), (unsigned long)rv, hint);
}

int hk_p11_rv_is_connection_lost(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID: case CKR_SESSION_CLOSED: case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT: case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_USER_NOT_LOGGED_IN: case CKR_DEVICE_ERROR:
        return 1;
    default:
        return 0;
    }
}

int hk_p11_transient(CK_RV rv)
{
    return rv == CKR_DEVICE_ERROR || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ||
           rv == CKR_DEVICE_MEMORY || rv == CKR_CANT_LOCK || rv == CKR_SESSION_COUNT;
}

void hk_p11_backoff_sleep(int attempt)
{
    /* 10, 20, 40 ... ms, with jitter so racing processes spread out. */
    long ms = 10L << (attempt < 6 ? attempt : 6);
    struct timespec ts;
    ms += (long)((unsigned)getpid() * 7919u % 10u);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
