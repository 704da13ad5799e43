/*
 * cmd_adopt.c - "adopt": make a secret key that a vendor tool created into a
 * master generation.
 *
 * Owns: choosing the key (by its label and/or CKA_ID) and writing the
 * identifiers create writes (CKA_LABEL = the master label, CKA_ID = 'HK' 01
 * || generation || activation, master.h) with C_SetAttributeValue.
 * Many tokens (tpm2-pkcs11, HSMs whose keys come from their own tools)
 * cannot generate or import a secret key through PKCS#11; adopt is how such
 * a token gets a first generation and later rotations.
 * Threat: adopting a key that can leave the token.  The key is judged by the
 * library's own master policy (hk_master_check_policy) before anything is
 * changed, must be a token object, and must compute HMAC-SHA256 (its key
 * check value is taken before and compared after).  The schedule rules of
 * rotate apply (hkt_rotation_time_ok, hkt_next_generation).  Nothing of the
 * key is read but public attributes.
 */
#include <stdlib.h>
#include <string.h>
#include "tool.h"

/* pkcs11:object=L;id=%XX... for hk_master_list. */
static int candidate_uri(const struct hkt_opts *o, const unsigned char *id, size_t idlen,
                         char *out, size_t outlen)
{
    size_t n;
    if (o->key_label) {
        if (hkt_uri_for("object", o->key_label, out, outlen) != 0)
            return -1;
    } else {
        snprintf(out, outlen, "pkcs11:");
    }
    n = strlen(out);
    if (idlen > 0) {
        if (n + 5 + 3 * idlen >= outlen)
            return -1;
        n += (size_t)snprintf(out + n, outlen - n, "%sid=", o->key_label ? ";" : "");
        for (size_t i = 0; i < idlen; i++)
            n += (size_t)snprintf(out + n, outlen - n, "%%%02X", id[i]);
    }
    return 0;
}

/* The one key the options name, with its attributes; -1 (error printed) if none or several. */
static int pick_key(struct hkt_conn *c, const struct hkt_opts *o, hk_master *out)
{
    unsigned char id[128];
    size_t idlen = 0;
    char uri[600];
    hk_uri *u = NULL;
    hk_master *list = NULL;
    size_t n = 0;
    int ret = -1;
    if (o->key_id) {
        idlen = strlen(o->key_id) / 2;
        if (idlen == 0 || idlen > sizeof id || strlen(o->key_id) % 2 || hkt_unhex(o->key_id, id, idlen)) {
            hkt_err("--key-id %s: expected the key's CKA_ID in hex (1..128 bytes)", o->key_id);
            return -1;
        }
    }
    if (candidate_uri(o, id, idlen, uri, sizeof uri) != 0 || hk_uri_parse(uri, &u) != HSMKEYS_OK) {
        hkt_err("--key-label/--key-id: too long or not usable in a pkcs11: URI");
        return -1;
    }
    int rc = hk_master_list(c->module, c->session, u, &list, &n);
    hk_uri_free(u);
    if (rc == HSMKEYS_E_NO_MASTER || (rc == HSMKEYS_OK && n == 0)) {
        hkt_err("token '%s' holds no secret key %s%s%s%s%s: list its objects with the token's tool "
                "(pkcs11-tool --list-objects --login; tpm2_ptool listobjects)", c->token_label,
                o->key_label ? "labelled '" : "", o->key_label ? o->key_label : "",
                o->key_label ? "'" : "", o->key_id ? " with id " : "", o->key_id ? o->key_id : "");
    } else if (rc != HSMKEYS_OK) {
        hkt_err_lib("searching the key to adopt");
    } else if (n > 1) {
        hkt_err("%zu secret keys on token '%s' match: name one by both --key-label and --key-id",
                n, c->token_label);
    } else {
        *out = list[0];
        ret = 0;
    }
    free(list);
    return ret;
}

/* Refusals before anything is written: the master policy, and what a master needs. */
static int judge(struct hkt_conn *c, hk_master *k, uint32_t gen, unsigned char kcv[HK_CHECK_VALUE_LEN])
{
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE a = {CKA_VALUE_LEN, &vlen, sizeof vlen};
    k->generation = gen; /* messages name the generation it would get */
    if (hk_master_check_policy(k, 1, hkt_warn_cb, NULL) != HSMKEYS_OK) {
        hkt_err("refused, the key was not changed: %s", hsmkeys_last_error());
        return -1;
    }
    if (hk_attr_bool(c->module, c->session, k->handle, CKA_TOKEN) != 1) {
        hkt_err("refused: the key is a session object (CKA_TOKEN false) and would vanish with the "
                "session; make it as a token object with the token's tool");
        return -1;
    }
    if (c->f->C_GetAttributeValue(c->session, k->handle, &a, 1) == CKR_OK &&
        a.ulValueLen == sizeof vlen && vlen > 0 && vlen < 32) {
        hkt_err("refused: the key is %lu bytes; a master needs 32 or more", (unsigned long)vlen);
        return -1;
    }
    return hkt_kcv(c, k->handle, kcv);
}

static int write_ids(struct hkt_conn *c, CK_OBJECT_HANDLE h, uint32_t gen, int64_t act)
{
    unsigned char id[HK_MASTER_ID_LEN];
    char hex[2 * HK_MASTER_ID_LEN + 1];
    hk_master_id_encode(gen, act, id);
    CK_ATTRIBUTE t[2] = {
        {CKA_LABEL, (void *)(uintptr_t)c->label, strlen(c->label)},
        {CKA_ID, id, sizeof id},
    };
    CK_RV rv = c->f->C_SetAttributeValue(c->session, h, t, 2);
    if (hk_p11_check(rv, "C_SetAttributeValue") == HSMKEYS_OK)
        return 0;
    hkt_hex(hex, id, sizeof id);
    hkt_err("the token refused to relabel the key (%s); set these two attributes with its own tool "
            "instead: CKA_LABEL '%s' and CKA_ID %s (hex; tpm2-pkcs11: tpm2_ptool objmod --id N "
            "--key CKA_ID --value %s)", hsmkeys_last_error(), c->label, hex, hex);
    return -1;
}

int hkt_cmd_adopt(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL, key;
    size_t n = 0;
    unsigned char kcv[HK_CHECK_VALUE_LEN], kcv2[HK_CHECK_VALUE_LEN];
    char hex[2 * HK_CHECK_VALUE_LEN + 1], when[40];
    int ret = HKT_EXIT_FAIL;
    uint32_t gen = 1;
    int64_t act = o->have_activate ? o->activate_at : 0;

    if (!o->key_label && !o->key_id) {
        hkt_err("adopt needs --key-label LABEL and/or --key-id HEX: the key the token's own tool made");
        return HKT_EXIT_USAGE;
    }
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0 || pick_key(&c, o, &key) != 0)
        goto out;
    /* A key already under the master label is in m: as generation 0 if its
     * CKA_ID is a vendor's, else it is a generation already. */
    for (size_t i = 0; i < n; i++)
        if (m[i].handle == key.handle) {
            if (m[i].generation != 0) {
                hkt_err("the key already is generation %u of master '%s'", m[i].generation, c.label);
                goto out;
            }
            m[i] = m[--n];
            break;
        }
    if (n > 0) {
        ret = hkt_rotation_time_ok(o);
        if (ret != HKT_EXIT_OK)
            goto out;
        ret = HKT_EXIT_FAIL;
        if (hkt_next_generation(o, &c, m, n, &gen) != 0)
            goto out;
    } else if (o->generation >= 0) {
        gen = (uint32_t)o->generation;
    }
    if (judge(&c, &key, gen, kcv) != 0 || write_ids(&c, key.handle, gen, act) != 0)
        goto out;
    free(m);
    m = NULL;
    const hk_master *mk = NULL;
    if (hkt_masters(&c, &m, &n) == 0)
        mk = hkt_master_gen(m, n, gen);
    if (!mk || hkt_kcv(&c, mk->handle, kcv2) != 0 || memcmp(kcv, kcv2, sizeof kcv)) {
        hkt_err("generation %u cannot be found again under label '%s' after relabelling: check the "
                "token with hsmkeys-tool status", gen, c.label);
        goto out;
    }
    hkt_hex(hex, kcv, sizeof kcv);
    hkt_fmt_time(act, when, sizeof when);
    hkt_info("token '%s': adopted the key as master '%s' generation %u, active from %s (%lld), %s",
             c.token_label, c.label, gen, when, (long long)act,
             mk->extractable == 1 ? "clonable (extractable under trusted keys only): seal it after cloning"
                                  : "sealed (non-extractable)");
    hkt_info("kcv %u %s", gen, hex);
    ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}
