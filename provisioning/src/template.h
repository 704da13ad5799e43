/*
 * template.h - the one attribute template of a master generation, used
 * where a master comes into a token: create, rotate, import-test-master
 * (C_GenerateKey / C_CreateObject) and unwrap (C_UnwrapKey).
 *
 * The master may sign (HMAC) and nothing else (DERIVE, ENCRYPT, DECRYPT,
 * WRAP, UNWRAP, VERIFY all FALSE); it is SENSITIVE and PRIVATE, and
 * extractable only under a trusted wrapping key (WRAP_WITH_TRUSTED), so the
 * library's policy (master.c) accepts it.  A sealed master is neither
 * MODIFIABLE nor COPYABLE: nobody can turn a usage on or rewrite its CKA_ID
 * (the schedule) later.  A clonable generation (extractable) stays
 * MODIFIABLE and COPYABLE until seal copies it into a non-modifiable object
 * (cmd_seal.c): SoftHSM2 2.6.1 refuses CKA_MODIFIABLE=FALSE in
 * C_SetAttributeValue (CKR_ATTRIBUTE_READ_ONLY) but takes it in a
 * C_CopyObject template, and refuses CKA_COPYABLE=FALSE in both, so a
 * sealed clonable generation stays COPYABLE there (a copy of a
 * non-modifiable key cannot change any attribute on SoftHSM2).
 * NSS softokn has no CKA_COPYABLE (C_GenerateKey fails CKR_GENERAL_ERROR
 * with it): callers retry once without it (hkt_master_tmpl_drop).
 */
#ifndef HKT_TEMPLATE_H
#define HKT_TEMPLATE_H

#include "tool.h"

#define HKT_TMPL_MAX 20

struct hkt_master_tmpl {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;
    CK_BBOOL yes, no, token, extractable, changeable;
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
/* Remove an attribute (returns 1 if it was there, 0 if not). */
int hkt_master_tmpl_drop(struct hkt_master_tmpl *m, CK_ATTRIBUTE_TYPE type);
/* True if rv is how a module that lacks CKA_COPYABLE refuses a template
 * holding it (NSS softokn: CKR_GENERAL_ERROR; others: TYPE_INVALID...). */
int hkt_copyable_refused(CK_RV rv);

/* Refuse an id another secret key on the token already has, under any
 * label: NSS softokn treats a new token key with an existing CKA_ID as the
 * same object and silently overwrites it (value and label).  Returns 0 if
 * the id is free, -1 (message printed) if taken or the search failed. */
int hkt_master_id_free(struct hkt_conn *c, const unsigned char id[HK_MASTER_ID_LEN],
                       uint32_t generation);

#endif
