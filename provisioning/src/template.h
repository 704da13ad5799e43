/*
 * template.h - the one attribute template of a master generation, used
 * where a master comes into a token: create, rotate, import-test-master
 * (C_GenerateKey / C_CreateObject) and unwrap (C_UnwrapKey).
 *
 * The master may sign (HMAC) and nothing else; it is SENSITIVE and
 * PRIVATE, and extractable only under a trusted wrapping key
 * (WRAP_WITH_TRUSTED), so the library's policy (master.c) accepts it.
 */
#ifndef HKT_TEMPLATE_H
#define HKT_TEMPLATE_H

#include "tool.h"

#define HKT_TMPL_MAX 18

struct hkt_master_tmpl {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;
    CK_BBOOL yes, no, token, extractable;
    unsigned char id[HK_MASTER_ID_LEN];
    CK_ATTRIBUTE attrs[HKT_TMPL_MAX]; /* n used; room for two more */
    CK_ULONG n;
};

/* Fill the template; the caller may append up to two attributes (CKA_VALUE
 * or CKA_VALUE_LEN).  The struct owns every value the template points to. */
void hkt_master_tmpl_init(struct hkt_master_tmpl *m, CK_KEY_TYPE key_type, int token,
                          int extractable, const char *label,
                          const unsigned char id[HK_MASTER_ID_LEN]);
void hkt_master_tmpl_add(struct hkt_master_tmpl *m, CK_ATTRIBUTE_TYPE type, void *value,
                         CK_ULONG len);

/* Refuse an id another secret key on the token already has, under any
 * label: NSS softokn treats a new token key with an existing CKA_ID as the
 * same object and silently overwrites it (value and label).  Returns 0 if
 * the id is free, -1 (message printed) if taken or the search failed. */
int hkt_master_id_free(struct hkt_conn *c, const unsigned char id[HK_MASTER_ID_LEN],
                       uint32_t generation);

#endif
