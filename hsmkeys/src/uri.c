/*
 * uri.c - RFC 7512 "pkcs11:" URIs, parsed by p11-kit.
 *
 * Owns the selection of token and master object and the query attributes
 * module-path and pin-source.  Threat: a pin-value in a URI is a PIN in a
 * config file; it is accepted for tests with a warning, copied into locked
 * memory, and wiped from p11-kit's copy (p11-kit frees it without wiping).
 */
#include <stdlib.h>
#include <string.h>
#include <p11-kit/uri.h>
#include "uri.h"

struct hk_uri {
    P11KitUri *p;
    char *object_label;
    unsigned char *object_id;
    size_t object_id_len;
    char *module_path;
    char *pin_source;
    int has_pin_value;
};

static char *dup_attr(const CK_ATTRIBUTE *a)
{
    char *s = malloc(a->ulValueLen + 1);
    if (s != NULL) {
        memcpy(s, a->pValue, a->ulValueLen);
        s[a->ulValueLen] = '\0';
    }
    return s;
}

static void wipe_p11kit_pin(P11KitUri *p)
{
    const char *v = p11_kit_uri_get_pin_value(p);
    if (v != NULL)
        hsmkeys_wipe((void *)(uintptr_t)v, strlen(v));
}

int hk_uri_parse(const char *text, hk_uri **out)
{
    hk_uri *u;
    CK_ATTRIBUTE *a;
    CK_OBJECT_CLASS cls;
    int r;

    *out = NULL;
    if (text == NULL || strncmp(text, "pkcs11:", 7) != 0)
        return hk_fail(HSMKEYS_E_URI,
                       "not a PKCS#11 URI: it must start with \"pkcs11:\" "
                       "(e.g. pkcs11:token=S1;object=hsmkeys-master)");
    u = calloc(1, sizeof *u);
    if (u == NULL || (u->p = p11_kit_uri_new()) == NULL) {
        free(u);
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory parsing URI");
    }
    r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_OBJECT_ON_TOKEN_AND_MODULE, u->p);
    if (r != P11_KIT_URI_OK) {
        hk_uri_free(u);
        return hk_fail(HSMKEYS_E_URI, "malformed PKCS#11 URI: %s (see RFC 7512)",
                       p11_kit_uri_message(r));
    }
    if (p11_kit_uri_any_unrecognized(u->p)) {
        hk_uri_free(u);
        return hk_fail(HSMKEYS_E_URI,
                       "PKCS#11 URI has an attribute hsmkeys does not understand; "
                       "use token, serial, model, manufacturer, object, id, type and "
                       "the query attributes module-path and pin-source");
    }
    a = p11_kit_uri_get_attribute(u->p, CKA_CLASS);
    if (a != NULL && a->ulValueLen == sizeof cls) {
        memcpy(&cls, a->pValue, sizeof cls);
        if (cls != CKO_SECRET_KEY) {
            hk_uri_free(u);
            return hk_fail(HSMKEYS_E_URI, "PKCS#11 URI selects type other than "
                           "secret-key: the master is a secret key (type=secret-key)");
        }
    }
    if ((a = p11_kit_uri_get_attribute(u->p, CKA_LABEL)) != NULL &&
        (u->object_label = dup_attr(a)) == NULL)
        goto nomem;
    if ((a = p11_kit_uri_get_attribute(u->p, CKA_ID)) != NULL) {
        u->object_id = malloc(a->ulValueLen ? a->ulValueLen : 1);
        if (u->object_id == NULL)
            goto nomem;
        memcpy(u->object_id, a->pValue, a->ulValueLen);
        u->object_id_len = a->ulValueLen;
    }
    if (u->object_label == NULL && u->object_id == NULL) {
        hk_uri_free(u);
        return hk_fail(HSMKEYS_E_URI, "PKCS#11 URI names no master object: add "
                       "object=<label> or id=<hex> (e.g. ;object=hsmkeys-master)");
    }
    if (p11_kit_uri_get_module_path(u->p) != NULL &&
        (u->module_path = strdup(p11_kit_uri_get_module_path(u->p))) == NULL)
        goto nomem;
    if (p11_kit_uri_get_pin_source(u->p) != NULL &&
        (u->pin_source = strdup(p11_kit_uri_get_pin_source(u->p))) == NULL)
        goto nomem;
    u->has_pin_value = p11_kit_uri_get_pin_value(u->p) != NULL;
    *out = u;
    return HSMKEYS_OK;
nomem:
    hk_uri_free(u);
    return hk_fail(HSMKEYS_E_NOMEM, "out of memory parsing URI");
}

void hk_uri_free(hk_uri *u)
{
    if (u == NULL)
        return;
    if (u->p != NULL) {
        wipe_p11kit_pin(u->p);
        p11_kit_uri_free(u->p);
    }
    free(u->object_label);
    free(u->object_id);
    free(u->module_path);
    free(u->pin_source);
    free(u);
}

const char *hk_uri_module_path(const hk_uri *u) { return u->module_path; }
const char *hk_uri_pin_source(const hk_uri *u) { return u->pin_source; }
int hk_uri_has_pin_value(const hk_uri *u) { return u->has_pin_value; }
const char *hk_uri_object_label(const hk_uri *u) { return u->object_label; }

const unsigned char *hk_uri_object_id(const hk_uri *u, size_t *len)
{
    *len = u->object_id_len;
    return u->object_id;
}

int hk_uri_pin_value(const hk_uri *u, hk_secret *pin)
{
    const char *v = p11_kit_uri_get_pin_value(u->p);
    size_t n;
    if (v == NULL)
        return hk_fail(HSMKEYS_E_PIN, "the URI has no pin-value");
    n = strlen(v);
    HK_TRY(hk_secret_alloc(pin, n + 1));
    memcpy(pin->data, v, n);
    pin->len = n;
    return HSMKEYS_OK;
}

int hk_uri_match_token(const hk_uri *u, const CK_TOKEN_INFO *info)
{
    return p11_kit_uri_match_token_info(u->p, (CK_TOKEN_INFO *)(uintptr_t)info) == 1;
}
