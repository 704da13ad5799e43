/* template.c - the master's attribute template (see template.h). */
#include <string.h>
#include "template.h"

void hkt_master_tmpl_add(struct hkt_master_tmpl *m, CK_ATTRIBUTE_TYPE type, void *value,
                         CK_ULONG len)
{
    CK_ULONG at = m->n;
    if (m->n >= HKT_TMPL_MAX)
        return;
    /* CKA_MODIFIABLE stays last: SoftHSM2 2.6.1 applies a C_UnwrapKey
     * template in order and refuses (CKR_ATTRIBUTE_READ_ONLY) attributes
     * that follow MODIFIABLE=FALSE. */
    if (at > 0 && m->attrs[at - 1].type == CKA_MODIFIABLE) {
        m->attrs[at] = m->attrs[at - 1];
        at--;
    }
    m->attrs[at].type = type;
    m->attrs[at].pValue = value;
    m->attrs[at].ulValueLen = len;
    m->n++;
}

int hkt_master_tmpl_drop(struct hkt_master_tmpl *m, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < m->n; i++) {
        if (m->attrs[i].type == type) {
            memmove(&m->attrs[i], &m->attrs[i + 1], (m->n - i - 1) * sizeof m->attrs[0]);
            m->n--;
            return 1;
        }
    }
    return 0;
}

int hkt_copyable_refused(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_VALUE_INVALID;
}

void hkt_master_tmpl_init(struct hkt_master_tmpl *m, CK_KEY_TYPE key_type, int token,
                          int extractable, const char *label,
                          const unsigned char id[HK_MASTER_ID_LEN])
{
    memset(m, 0, sizeof *m);
    m->cls = CKO_SECRET_KEY;
    m->key_type = key_type;
    m->yes = CK_TRUE;
    m->no = CK_FALSE;
    m->token = token ? CK_TRUE : CK_FALSE;
    m->extractable = extractable ? CK_TRUE : CK_FALSE;
    /* Only a clonable generation may change later: seal copies it into a
     * non-modifiable object, which needs it copyable (cmd_seal.c). */
    m->changeable = m->extractable;
    memcpy(m->id, id, HK_MASTER_ID_LEN);
    hkt_master_tmpl_add(m, CKA_CLASS, &m->cls, sizeof m->cls);
    hkt_master_tmpl_add(m, CKA_KEY_TYPE, &m->key_type, sizeof m->key_type);
    hkt_master_tmpl_add(m, CKA_TOKEN, &m->token, sizeof m->token);
    hkt_master_tmpl_add(m, CKA_PRIVATE, &m->yes, sizeof m->yes);
    hkt_master_tmpl_add(m, CKA_SENSITIVE, &m->yes, sizeof m->yes);
    hkt_master_tmpl_add(m, CKA_EXTRACTABLE, &m->extractable, sizeof m->extractable);
    hkt_master_tmpl_add(m, CKA_WRAP_WITH_TRUSTED, &m->yes, sizeof m->yes);
    hkt_master_tmpl_add(m, CKA_SIGN, &m->yes, sizeof m->yes);
    hkt_master_tmpl_add(m, CKA_VERIFY, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_ENCRYPT, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_DECRYPT, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_WRAP, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_UNWRAP, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_DERIVE, &m->no, sizeof m->no);
    hkt_master_tmpl_add(m, CKA_COPYABLE, &m->changeable, sizeof m->changeable);
    hkt_master_tmpl_add(m, CKA_LABEL, (void *)(uintptr_t)label, strlen(label));
    hkt_master_tmpl_add(m, CKA_ID, m->id, HK_MASTER_ID_LEN);
    hkt_master_tmpl_add(m, CKA_MODIFIABLE, &m->changeable, sizeof m->changeable);
}

int hkt_master_id_free(struct hkt_conn *c, const unsigned char id[HK_MASTER_ID_LEN],
                       uint32_t generation)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[2] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, (void *)(uintptr_t)id, HK_MASTER_ID_LEN},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    if (hkt_find(c, t, 2, &h, 1, &n) != 0)
        return -1;
    if (n > 0) {
        hkt_err("token '%s' already holds a secret key with the CKA_ID of generation %u "
                "(possibly under another label): some modules (NSS softokn) would overwrite "
                "it. Pick another generation or activation time (--generation, "
                "--activate-at); 'hsmkeys-tool status' lists what is there",
                c->token_label, (unsigned)generation);
        return -1;
    }
    return 0;
}
