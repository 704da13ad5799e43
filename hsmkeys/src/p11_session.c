/*
 * p11_session.c - finding the token a URI names, sessions, login and
 * attribute reads.
 *
 * No state of its own: slots, sessions and logins belong to the caller.
 * Threats handled: an ambiguous URI silently picking one of several tokens
 * (refused, the message lists them), a token list read while another
 * process writes the token (looked up again with backoff), and transient
 * open/login failures (retried).  CKR_USER_ALREADY_LOGGED_IN is the one
 * tolerated login code, named here where it is tolerated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "p11.h"
#include "modenv.h"

static void token_label(const CK_TOKEN_INFO *ti, char *out, size_t outlen)
{
    size_t n = sizeof ti->label;
    while (n > 0 && ti->label[n - 1] == ' ')
        n--;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, ti->label, n);
    out[n] = '\0';
}

static int token_find_once(hk_module *m, const hk_uri *u, CK_SLOT_ID *slot, int *ambiguous)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_TOKEN_INFO ti;
    CK_RV rv;
    int found = 0;
    char names[256] = "", label[40];

    rv = HK_FN(m, C_GetSlotList)(CK_TRUE, NULL, &n);
    HK_TRY(hk_p11_check(rv, "C_GetSlotList"));
    if (n > 0) {
        slots = calloc(n, sizeof *slots);
        if (slots == NULL)
            return hk_fail(HSMKEYS_E_NOMEM, "out of memory listing slots");
        rv = HK_FN(m, C_GetSlotList)(CK_TRUE, slots, &n);
        if (rv != CKR_OK) {
            free(slots);
            return hk_p11_check(rv, "C_GetSlotList");
        }
    }
    for (i = 0; i < n; i++) {
        if (HK_FN(m, C_GetTokenInfo)(slots[i], &ti) != CKR_OK)
            continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        token_label(&ti, label, sizeof label);
        if (strlen(names) + strlen(label) + 4 < sizeof names)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"",
                     names[0] ? ", " : "", label);
        if (hk_uri_match_token(u, &ti)) {
            if (found++ == 0)
                *slot = slots[i];
        }
    }
    free(slots);
    *ambiguous = found > 1;
    if (found == 1)
        return HSMKEYS_OK;
    if (found > 1)
        return hk_fail(HSMKEYS_E_NO_TOKEN, "%d tokens match the URI (%s): add token=<label> "
                       "or serial=<serial> to select one", found, names);
    char hint[700];
    hk_modenv_token_hint(hk_module_path(m), hint, sizeof hint);
    return hk_fail(HSMKEYS_E_NO_TOKEN, "no token matches the URI in module %s (tokens "
                   "present: %s): check token=/serial= and that the token is initialised%s",
                   hk_module_path(m), names[0] ? names : "none", hint);
}

int hk_token_find(hk_module *m, const hk_uri *u, CK_SLOT_ID *slot)
{
    int rc, attempt, ambiguous = 0;
    /* SoftHSM2 can list no token, or fail C_GetTokenInfo, while another
     * process is writing the token directory (many servers starting at
     * once): look again a few times, re-reading the module if it is ours. */
    for (attempt = 0;; attempt++) {
        rc = token_find_once(m, u, slot, &ambiguous);
        if (rc == HSMKEYS_OK || ambiguous || attempt == 3 ||
            (rc != HSMKEYS_E_NO_TOKEN && rc != HSMKEYS_E_TOKEN))
            return rc;
        hk_p11_backoff_sleep(attempt + 2);
        HK_TRY(hk_module_reset_if_sole(m));
    }
}

int hk_session_open(hk_module *m, CK_SLOT_ID slot, int rw, CK_SESSION_HANDLE *out)
{
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    CK_RV rv = CKR_OK;
    int attempt;
    for (attempt = 0; attempt < HK_P11_RETRIES; attempt++) {
        rv = HK_FN(m, C_OpenSession)(slot, flags, NULL, NULL, out);
        if (!hk_p11_transient(rv))
            break;
        hk_p11_backoff_sleep(attempt);
    }
    return hk_p11_check(rv, "C_OpenSession");
}

void hk_session_close(hk_module *m, CK_SESSION_HANDLE s)
{
    if (m != NULL && s != CK_INVALID_HANDLE)
        (void)HK_FN(m, C_CloseSession)(s);
}

int hk_login(hk_module *m, CK_SESSION_HANDLE s, CK_USER_TYPE user, const hk_secret *pin)
{
    CK_RV rv = CKR_OK;
    int attempt;
    for (attempt = 0; attempt < HK_P11_RETRIES; attempt++) {
        rv = HK_FN(m, C_Login)(s, user, pin->data, pin->len);
        if (!hk_p11_transient(rv))
            break;
        hk_p11_backoff_sleep(attempt);
    }
    if (rv == CKR_USER_ALREADY_LOGGED_IN) /* tolerated: another session logged in */
        return HSMKEYS_OK;
    return hk_p11_check(rv, user == CKU_SO ? "C_Login (security officer)" : "C_Login");
}

int hk_attr_bool(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = { type, &v, sizeof v };
    if (HK_FN(m, C_GetAttributeValue)(s, o, &a, 1) != CKR_OK || a.ulValueLen != sizeof v)
        return -1;
    return v ? 1 : 0;
}
