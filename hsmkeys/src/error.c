/*
 * error.c - the thread's last error message and result names (see error.h).
 *
 * The message buffer is thread-local so concurrent handshakes never see each
 * other's errors.  Callers must never format secrets into it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "error.h"

#define HK_ERRMSG_MAX 1024 /* room for a module-environment hint (modenv.c) */

static _Thread_local char hk_errmsg[HK_ERRMSG_MAX];

int hk_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hk_errmsg, sizeof hk_errmsg, fmt, ap);
    va_end(ap);
    return code;
}

int hk_fail_prefix(int code, const char *fmt, ...)
{
    char old[HK_ERRMSG_MAX], prefix[HK_ERRMSG_MAX];
    va_list ap;
    memcpy(old, hk_errmsg, sizeof old);
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    {
        size_t n = strnlen(prefix, sizeof hk_errmsg - 3);
        memcpy(hk_errmsg, prefix, n);
        memcpy(hk_errmsg + n, ": ", 2);
        n += 2;
        memcpy(hk_errmsg + n, old, strnlen(old, sizeof hk_errmsg - n - 1));
        hk_errmsg[n + strnlen(old, sizeof hk_errmsg - n - 1)] = '\0';
    }
    return code;
}

void hk_error_clear(void)
{
    hk_errmsg[0] = '\0';
}

const char *hsmkeys_last_error(void)
{
    return hk_errmsg;
}

const char *hsmkeys_result_name(int result)
{
    switch (result) {
    case HSMKEYS_OK:              return "HSMKEYS_OK";
    case HSMKEYS_E_INVALID:       return "HSMKEYS_E_INVALID";
    case HSMKEYS_E_NOMEM:         return "HSMKEYS_E_NOMEM";
    case HSMKEYS_E_URI:           return "HSMKEYS_E_URI";
    case HSMKEYS_E_PIN:           return "HSMKEYS_E_PIN";
    case HSMKEYS_E_MODULE:        return "HSMKEYS_E_MODULE";
    case HSMKEYS_E_NO_TOKEN:      return "HSMKEYS_E_NO_TOKEN";
    case HSMKEYS_E_LOGIN:         return "HSMKEYS_E_LOGIN";
    case HSMKEYS_E_NO_MASTER:     return "HSMKEYS_E_NO_MASTER";
    case HSMKEYS_E_UNSAFE_MASTER: return "HSMKEYS_E_UNSAFE_MASTER";
    case HSMKEYS_E_TOKEN:         return "HSMKEYS_E_TOKEN";
    case HSMKEYS_E_FOREIGN:       return "HSMKEYS_E_FOREIGN";
    case HSMKEYS_E_EXPIRED:       return "HSMKEYS_E_EXPIRED";
    case HSMKEYS_E_UNAVAILABLE:   return "HSMKEYS_E_UNAVAILABLE";
    case HSMKEYS_E_MALFORMED:     return "HSMKEYS_E_MALFORMED";
    case HSMKEYS_E_STATE:         return "HSMKEYS_E_STATE";
    default:                      return "HSMKEYS_E_UNKNOWN";
    }
}

const char *hsmkeys_version(void)
{
    return HSMKEYS_VERSION_STRING;
}
