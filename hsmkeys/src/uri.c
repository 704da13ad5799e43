/*
 * uri.c - RFC 7512 "pkcs11:" URIs, parsed by p11-kit.
 *
 * Owns the selection of token and master object and the query attributes
 * module-path and pin-source.  Threat: a pin-value in a URI is a PIN in a
 * config file; it is accepted for tests with a warning, copied into locked
 * memory, and wiped from p11-kit's copy (p11-kit frees it without wiping).
 */
#include <stdint.h>
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

/* p11-kit's parse plus the attributes hsmkeys understands: the checks of
 * hk_uri_parse and hk_uri_build, with the same messages. */
static int parse_checked(const char *text, P11KitUri *p)
{
    int r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_OBJECT_ON_TOKEN_AND_MODULE, p);
    if (r != P11_KIT_URI_OK)
        return hk_fail(HSMKEYS_E_URI, "malformed PKCS#11 URI: %s (see RFC 7512)",
                       p11_kit_uri_message(r));
    if (p11_kit_uri_any_unrecognized(p))
        return hk_fail(HSMKEYS_E_URI,
                       "PKCS#11 URI has an attribute hsmkeys does not understand; "
                       "use token, serial, model, manufacturer, object, id, type and "
                       "the query attributes module-path and pin-source");
    return HSMKEYS_OK;
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
    if ((r = parse_checked(text, u->p)) != HSMKEYS_OK) {
        hk_uri_free(u);
        return r;
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

static int set_bytes(P11KitUri *p, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
    CK_ATTRIBUTE a = { type, (void *)(uintptr_t)v, len };
    return p11_kit_uri_set_attribute(p, &a) == P11_KIT_URI_OK
               ? HSMKEYS_OK : hk_fail(HSMKEYS_E_NOMEM, "out of memory building a URI");
}

int hk_uri_build(const hk_uri_parts *parts, char **out)
{
    P11KitUri *p;
    CK_TOKEN_INFO *ti;
    size_t n;
    int rc = HSMKEYS_OK;

    *out = NULL;
    if (parts->base != NULL && strncmp(parts->base, "pkcs11:", 7) != 0)
        return hk_fail(HSMKEYS_E_URI,
                       "not a PKCS#11 URI: it must start with \"pkcs11:\" "
                       "(e.g. pkcs11:token=S1;object=hsmkeys-master)");
    if ((p = p11_kit_uri_new()) == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory building a URI");
    if (parts->base != NULL)
        rc = parse_checked(parts->base, p);
    if (rc == HSMKEYS_OK && parts->token != NULL) {
        n = strlen(parts->token);
        ti = p11_kit_uri_get_token_info(p);
        if (n == 0 || n > sizeof ti->label) {
            rc = hk_fail(HSMKEYS_E_URI, "token label \"%.40s\" must be 1 to %zu bytes",
                         parts->token, sizeof ti->label);
        } else {
            memset(ti->label, ' ', sizeof ti->label); /* PKCS#11 pads with blanks */
            memcpy(ti->label, parts->token, n);
        }
    }
    if (rc == HSMKEYS_OK && parts->object != NULL)
        rc = set_bytes(p, CKA_LABEL, parts->object, strlen(parts->object));
    if (rc == HSMKEYS_OK && parts->id_len > 0)
        rc = set_bytes(p, CKA_ID, parts->id, parts->id_len);
    if (rc == HSMKEYS_OK && parts->default_object != NULL &&
        p11_kit_uri_get_attribute(p, CKA_LABEL) == NULL &&
        p11_kit_uri_get_attribute(p, CKA_ID) == NULL)
        rc = set_bytes(p, CKA_LABEL, parts->default_object, strlen(parts->default_object));
    if (rc == HSMKEYS_OK && p11_kit_uri_format(p, P11_KIT_URI_FOR_ANY, out) != P11_KIT_URI_OK)
        rc = hk_fail(HSMKEYS_E_NOMEM, "out of memory formatting a URI");
    wipe_p11kit_pin(p);
    p11_kit_uri_free(p);
    return rc;
}

void hk_uri_string_free(char *s)
{
    if (s != NULL) {
        hsmkeys_wipe(s, strlen(s));
        free(s);
    }
}
