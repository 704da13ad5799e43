/*
 * objects.c - finding token objects, reading attributes, key check values.
 *
 * Owns: the object searches every subcommand shares and the master list
 * (hk_master_find, with "no master" turned into an empty list).
 * Threat: the tool must never read a secret's value; it reads only public
 * attributes, and a master is identified by the key check value computed
 * inside the token (hk_kdf_check_value), which reveals nothing of it.
 */
#include <stdlib.h>
#include <string.h>
#include "tool.h"

int hkt_find(struct hkt_conn *c, CK_ATTRIBUTE *tmpl, CK_ULONG n,
             CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found)
{
    *found = 0;
    if (hk_p11_check(HK_FN(c->module, C_FindObjectsInit)(c->session, tmpl, n), "C_FindObjectsInit") != HSMKEYS_OK) {
        hkt_err_lib("searching the token");
        return -1;
    }
    CK_RV rv = HK_FN(c->module, C_FindObjects)(c->session, out, max, found);
    /* tolerated: Final only ends the search; C_FindObjects' code is what counts */
    (void)HK_FN(c->module, C_FindObjectsFinal)(c->session);
    if (hk_p11_check(rv, "C_FindObjects") != HSMKEYS_OK) {
        hkt_err_lib("searching the token");
        return -1;
    }
    return 0;
}

int hkt_get_bytes(struct hkt_conn *c, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
                  unsigned char **out, size_t *len)
{
    CK_ATTRIBUTE a = {t, NULL, 0};
    *out = NULL;
    *len = 0;
    if (hk_p11_check(HK_FN(c->module, C_GetAttributeValue)(c->session, o, &a, 1), "C_GetAttributeValue") != HSMKEYS_OK ||
        a.ulValueLen == (CK_ULONG)-1) {
        hkt_err_lib("reading an attribute");
        return -1;
    }
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (!a.pValue) {
        hkt_err("out of memory");
        return -1;
    }
    if (hk_p11_check(HK_FN(c->module, C_GetAttributeValue)(c->session, o, &a, 1), "C_GetAttributeValue") != HSMKEYS_OK) {
        free(a.pValue);
        hkt_err_lib("reading an attribute");
        return -1;
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

int hkt_masters(struct hkt_conn *c, hk_master **out, size_t *n)
{
    uint32_t g;
    if (hkt_masters_all(c, out, n) != 0)
        return -1;
    if (hkt_report_duplicate(c, *out, *n, &g)) {
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int hkt_report_duplicate(struct hkt_conn *c, const hk_master *m, size_t n, uint32_t *gen)
{
    if (!hk_master_duplicate(m, n, gen))
        return 0;
    hkt_err("duplicate generation: token '%s' holds two or more keys of generation %u under "
            "label '%s', so servers cannot tell which one the fleet uses; compare their key "
            "check values with the other servers' (hsmkeys-tool status) and destroy the one "
            "they do not hold with the token's own tool (pkcs11-tool --delete-object)",
            c->token_label, *gen, c->label);
    return 1;
}

int hkt_masters_all(struct hkt_conn *c, hk_master **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = hk_master_list(c->module, c->session, c->master_uri, out, n);
    if (rc == HSMKEYS_E_NO_MASTER) {
        free(*out);
        *out = NULL;
        *n = 0;
        return 0;
    }
    if (rc != HSMKEYS_OK) {
        hkt_err_lib("listing master generations");
        return -1;
    }
    return 0;
}

const hk_master *hkt_master_gen(const hk_master *m, size_t n, uint32_t gen)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].generation == gen)
            return &m[i];
    return NULL;
}

int hkt_kcv(struct hkt_conn *c, CK_OBJECT_HANDLE key, unsigned char kcv[HK_CHECK_VALUE_LEN])
{
    struct hk_master_prf prf;
    memset(&prf, 0, sizeof prf);
    prf.module = c->module;
    prf.session = c->session;
    prf.key = key;
    if (hk_kdf_check_value(hk_master_prf, &prf, kcv) != HSMKEYS_OK) {
        hkt_err_lib("computing the key check value (the key must allow CKA_SIGN with HMAC-SHA256)");
        return -1;
    }
    return 0;
}

int hkt_destroy(struct hkt_conn *c, CK_OBJECT_HANDLE o, const char *what)
{
    if (hk_p11_check(HK_FN(c->module, C_DestroyObject)(c->session, o), "C_DestroyObject") != HSMKEYS_OK) {
        hkt_err("could not remove %s: %s; remove it by hand (pkcs11-tool --delete-object)",
                what, hsmkeys_last_error());
        return -1;
    }
    return 0;
}
