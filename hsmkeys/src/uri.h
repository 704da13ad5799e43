/*
 * uri.h - RFC 7512 "pkcs11:" URIs: which module, token and object to use.
 *
 * Owns: the parsed selection (hk_uri, opaque; p11-kit's P11KitUri inside)
 * and the query attributes module-path, module-name, pin-source, pin-value.
 * Threat: a pin-value in a URI is a PIN in a config file: it is copied into
 * locked memory and wiped from p11-kit's copy (see uri.c).
 * Layering: below p11.h (the token layer selects slots with it); it uses
 * only PKCS#11 types and the secret memory, never the token layer.
 */
#ifndef HSMKEYS_URI_H
#define HSMKEYS_URI_H

#include <stddef.h>
#include <p11-kit/pkcs11.h>
#include "error.h"
#include "secret.h"

typedef struct hk_uri hk_uri;

/* Parse a "pkcs11:" URI with p11-kit.  Accepted: token, manufacturer, model,
 * serial, object, id, type (secret-key), and the query attributes
 * module-path, module-name, pin-source, pin-value (tests only: a warning is
 * logged).  Returns HSMKEYS_OK, HSMKEYS_E_URI, HSMKEYS_E_NOMEM. */
int hk_uri_parse(const char *text, hk_uri **out) HK_WARN_UNUSED;
void hk_uri_free(hk_uri *u);
const char *hk_uri_module_path(const hk_uri *u); /* NULL if absent */
const char *hk_uri_pin_source(const hk_uri *u);  /* NULL if absent */
int hk_uri_has_pin_value(const hk_uri *u);
/* Copy the URI's pin-value (if any) into locked memory. */
int hk_uri_pin_value(const hk_uri *u, hk_secret *pin) HK_WARN_UNUSED;
/* Object selection: label (NULL if absent) and id (NULL/0 if absent). */
const char *hk_uri_object_label(const hk_uri *u);
const unsigned char *hk_uri_object_id(const hk_uri *u, size_t *len);
/* True if the token in slot matches the URI's token attributes. */
int hk_uri_match_token(const hk_uri *u, const CK_TOKEN_INFO *info);

/* What hk_uri_build puts together. */
typedef struct hk_uri_parts {
    const char *base;            /* a "pkcs11:" URI to start from, or NULL */
    const char *token;           /* token label to set (<= 32 bytes), or NULL */
    const char *object;          /* object label to set, or NULL */
    const char *default_object;  /* object label set only when the result would
                                  * name neither an object nor an id, or NULL */
    const unsigned char *id;     /* object id to set; id_len 0: none */
    size_t id_len;
} hk_uri_parts;

/* Build a URI with p11-kit's parser and formatter (percent-encoding and
 * attribute syntax are p11-kit's, never spliced by hand).  The base is
 * checked as hk_uri_parse checks it (prefix, syntax, unknown attributes:
 * same messages); whether an object is named is left to hk_uri_parse.
 * *out is malloc'd; free it with hk_uri_string_free (it may hold a
 * pin-value from the base, which callers refuse after parsing).
 * Returns HSMKEYS_OK, HSMKEYS_E_URI, HSMKEYS_E_NOMEM. */
int hk_uri_build(const hk_uri_parts *parts, char **out) HK_WARN_UNUSED;
void hk_uri_string_free(char *s);

#endif /* HSMKEYS_URI_H */
