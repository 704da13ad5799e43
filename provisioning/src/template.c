/* template.c - the master's attribute template (see template.h). */
#include <string.h>
#include "template.h"

void hkt_master_tmpl_add(struct hkt_master_tmpl *m, CK_ATTRIBUTE_TYPE type, void *value,
                         CK_ULONG len)
{
    if (m->n < HKT_TMPL_MAX) {
        m->attrs[m->n].type = type;
        m->attrs[m->n].pValue = value;
        m->attrs[m->n].ulValueLen = len;
        m->n++;
    }
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
    hkt_master_tmpl_add(m, CKA_LABEL, (void *)(uintptr_t)label, strlen(label));
    hkt_master_tmpl_add(m, CKA_ID, m->id, HK_MASTER_ID_LEN);
}
