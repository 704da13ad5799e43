/*
 * master.h - master generations on a token, and the policy they must meet.
 *
 * A master is a secret-key object (CKK_GENERIC_SECRET or CKK_SHA256_HMAC)
 * with CKA_SIGN.  All generations share the label named by the URI; each
 * carries hsmkeys' CKA_ID, which records its generation and activation time
 * so every server reads the same schedule from its own token:
 *
 *   CKA_ID = 'H' 'K' 0x01 || generation uint32 BE || activation int64 BE
 *            (15 bytes; activation in unix seconds)
 *
 * A master whose CKA_ID has another form (one a vendor tool created) is
 * read as generation 0, active since time 0, until `hsmkeys-tool adopt`
 * gives it a generation and activation.
 */
#ifndef HSMKEYS_MASTER_H
#define HSMKEYS_MASTER_H

#include <stdint.h>
#include "p11.h"
#include "kdf.h"

#define HK_MASTER_ID_LEN 15
#define HK_MASTER_ID_VERSION 0x01

typedef struct hk_master {
    CK_OBJECT_HANDLE handle;
    uint32_t generation;
    int64_t activation;           /* unix seconds */
    unsigned char tag[HK_TAG_LEN];/* name tag for the configured domain */
    int sensitive, extractable;   /* 1, 0, or -1 if unreadable */
    int always_sensitive, never_extractable, wrap_with_trusted;
    /* usages other than CKA_SIGN, and whether the object can change or be
     * copied with other attributes: 1, 0, or -1 if unreadable */
    int derive, encrypt, decrypt, wrap, unwrap;
    int modifiable, copyable;
    CK_KEY_TYPE key_type;
} hk_master;

void hk_master_id_encode(uint32_t generation, int64_t activation,
                         unsigned char id[HK_MASTER_ID_LEN]);
/* Returns HSMKEYS_OK, or HSMKEYS_E_MALFORMED for an id of another form. */
int hk_master_id_decode(const unsigned char *id, size_t len,
                        uint32_t *generation, int64_t *activation);

/* Find every secret key matching the URI's object label/id (all of them:
 * C_FindObjects is called until it returns none), read its attributes, and
 * sort by activation.  Two masters of one generation are refused ("two
 * masters of generation N").  *out is malloc'd (free()).
 * Returns HSMKEYS_OK, HSMKEYS_E_NO_MASTER, HSMKEYS_E_TOKEN, HSMKEYS_E_NOMEM. */
int hk_master_find(hk_module *m, CK_SESSION_HANDLE s, const hk_uri *u,
                   hk_master **out, size_t *n) HK_WARN_UNUSED;
/* hk_master_find without the duplicate check: the provisioning tool lists
 * every key so an operator can see which of two of a generation to remove. */
int hk_master_list(hk_module *m, CK_SESSION_HANDLE s, const hk_uri *u,
                   hk_master **out, size_t *n) HK_WARN_UNUSED;
/* 1 and the generation if two keys of the list share one, else 0.  Such a
 * token is refused: servers could pick different keys for one name. */
int hk_master_duplicate(const hk_master *list, size_t n, uint32_t *generation);

/* The one judge of a master's attributes, used by hsmkeys_open and by
 * hsmkeys-tool alike.  Refuses a master that is not SENSITIVE, or
 * EXTRACTABLE (unless allow_extractable), or EXTRACTABLE without
 * WRAP_WITH_TRUSTED (always), or that has CKA_DERIVE, CKA_ENCRYPT,
 * CKA_DECRYPT, CKA_WRAP or CKA_UNWRAP set (the message names the attribute
 * and the fix).  A master that is still CKA_MODIFIABLE or CKA_COPYABLE is
 * accepted with one warning each through warn (may be NULL), unless it is
 * a clonable generation not yet sealed (extractable: seal clears both).
 * Returns HSMKEYS_OK, HSMKEYS_E_NO_MASTER (wrong key type) or
 * HSMKEYS_E_UNSAFE_MASTER. */
typedef void (*hk_master_warn_fn)(void *arg, const char *msg);
int hk_master_check_policy(const hk_master *mk, int allow_extractable,
                           hk_master_warn_fn warn, void *warn_arg) HK_WARN_UNUSED;

/* PRF adapter for kdf.h: arg is a struct hk_master_prf. */
struct hk_master_prf {
    hk_module *module;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key;
    CK_RV last_rv;
    unsigned calls;
};
int hk_master_prf(void *arg, const unsigned char *msg, size_t len,
                  unsigned char out[32]);

#endif /* HSMKEYS_MASTER_H */
