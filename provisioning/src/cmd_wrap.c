/*
 * cmd_wrap.c - "wrap" (host A) and "unwrap" (host B): clone a master
 * generation from one token into another with no plaintext anywhere.
 *
 * Owns: C_WrapKey / C_UnwrapKey with RSA-PKCS-OAEP (SHA-1, MGF1-SHA1, the
 * only OAEP SoftHSM2 offers), the wrap records A keeps (CKO_DATA objects
 * labelled hsmkeys-wrap-record, value 'W' 01 || generation || target
 * fingerprint) that "seal" checks, and the checks on both ends.
 * Threat: wrapping to a key the SO has not vouched for (refused, and the
 * token refuses too: WRAP_WITH_TRUSTED), a blob substituted in transit
 * (refused unless its key check value matches the one A's operator reads
 * out), a blob whose header was edited (generation, activation, label, key
 * type: refused unless the header MAC, computed by A's token with the
 * master, matches the one B's token computes with the unwrapped key), a
 * blob for another token (refused before any unwrap), and a half-imported
 * master (the key is unwrapped as a session object and checked; only then
 * is it unwrapped again as a token object, checked again, and kept).
 */
#include <stdlib.h>
#include <string.h>
#include "blob.h"
#include "template.h"

static const hk_master *pick(const hk_master *m, size_t n, long gen)
{
    const hk_master *best = NULL;
    for (size_t i = 0; i < n; i++) {
        if (gen >= 0 && m[i].generation == (uint32_t)gen)
            return &m[i];
        if (gen < 0 && (!best || m[i].generation > best->generation))
            best = &m[i];
    }
    return best;
}

/* The blob's header MAC, computed by the token with `key` (blob.h). */
int hkt_blob_mac(struct hkt_conn *c, CK_OBJECT_HANDLE key, const struct hkt_blob *b,
                    unsigned char mac[HKT_BLOB_MAC_LEN])
{
    struct hk_master_prf prf;
    memset(&prf, 0, sizeof prf);
    prf.module = c->module;
    prf.session = c->session;
    prf.key = key;
    if (hk_kdf_counter(hk_master_prf, &prf, HKT_BLOB_MAC_LABEL, b->body_digest,
                       sizeof b->body_digest, mac, HKT_BLOB_MAC_LEN) != HSMKEYS_OK) {
        hkt_err_lib("computing the blob's header MAC with the master");
        return -1;
    }
    return 0;
}

static int record_wrap(struct hkt_conn *c, uint32_t gen, const unsigned char fp[HKT_FP_LEN])
{
    unsigned char v[2 + 4 + HKT_FP_LEN] = {'W', 0x01,
        (unsigned char)(gen >> 24), (unsigned char)(gen >> 16), (unsigned char)(gen >> 8), (unsigned char)gen};
    memcpy(v + 6, fp, HKT_FP_LEN);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    const char *app = "hsmkeys";
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_LABEL, HKT_WRAPLOG_LABEL, strlen(HKT_WRAPLOG_LABEL)},
        {CKA_APPLICATION, (void *)app, strlen(app)},
        {CKA_VALUE, v, sizeof v},
    };
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE find[] = {t[0], t[3], t[5]};
    CK_ULONG n = 0;
    if (hkt_find(c, find, 3, &h, 1, &n) != 0)
        return -1;
    if (n)
        return 0;
    if (hk_p11_check(HK_FN(c->module, C_CreateObject)(c->session, t, 6, &h), "C_CreateObject") != HSMKEYS_OK) {
        hkt_err_lib("recording the wrap on the token (seal checks it)");
        return -1;
    }
    return 0;
}

int hkt_cmd_wrap(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    unsigned char *mod = NULL, *exp = NULL, fp[HKT_FP_LEN];
    size_t ml = 0, el = 0;
    char hex[2 * HKT_FP_LEN + 1];
    struct hkt_blob b;
    unsigned char out[HKT_BLOB_MAX];
    int ret = HKT_EXIT_FAIL;
    if (!o->to || !o->out) {
        hkt_err("wrap needs --to PUBFILE (host B's transport public key) and --out BLOB");
        return HKT_EXIT_USAGE;
    }
    if (hkt_pubkey_read(o->to, &mod, &ml, &exp, &el, fp) != 0)
        return HKT_EXIT_FAIL;
    free(mod);
    free(exp);
    hkt_hex(hex, fp, sizeof fp);
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    CK_OBJECT_HANDLE wk;
    int found = hkt_find_transport(&c, CKO_PUBLIC_KEY, fp, &wk);
    if (found < 0)
        goto out;
    if (!found || hk_attr_bool(c.module, c.session, wk, CKA_TRUSTED) != 1) {
        hkt_err("the wrap key %s is not trusted on token '%s': a master may only be wrapped for "
                "a key the security officer imported with 'hsmkeys-tool trust --so-pin-source FILE "
                "--in %s' after checking its fingerprint with host B", hex, c.token_label, o->to);
        goto out;
    }
    if (hk_attr_bool(c.module, c.session, wk, CKA_WRAP) != 1) {
        hkt_err("the trusted key %s lacks CKA_WRAP: remove it and run 'hsmkeys-tool trust' again", hex);
        goto out;
    }
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    const hk_master *mk = pick(m, n, o->generation);
    if (mk && o->forward_erasable) {
        /* a host joining a running fleet: the newest chain state (cmd_chain.c) */
        ret = hkt_chain_wrap(&c, o, wk, fp, mk->generation);
        goto out;
    }
    if (!mk) {
        hkt_err("no master '%s'%s on token '%s': create it first (hsmkeys-tool create --clonable)",
                c.label, o->generation >= 0 ? " of that generation" : "", c.token_label);
        goto out;
    }
    if (hk_master_check_policy(mk, 1, hkt_warn_cb, NULL) != HSMKEYS_OK) {
        hkt_err_lib("refusing to wrap");
        goto out;
    }
    if (mk->extractable != 1) {
        hkt_err("generation %u of '%s' is sealed (non-extractable): it can no longer be cloned. "
                "Add a clonable generation (hsmkeys-tool rotate --clonable) and clone that one, "
                "or share one token (docs/PROVISIONING.md)", mk->generation, c.label);
        goto out;
    }
    memset(&b, 0, sizeof b);
    b.mech = HKT_BLOB_MECH_OAEP_SHA1;
    memcpy(b.target, fp, HKT_FP_LEN);
    hk_master_id_encode(mk->generation, mk->activation, b.id);
    b.key_type = (uint32_t)mk->key_type;
    snprintf(b.label, sizeof b.label, "%s", c.label);
    if (hkt_kcv(&c, mk->handle, b.kcv) != 0)
        goto out;
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    CK_ULONG wl = sizeof b.wrapped;
    if (hk_p11_check(HK_FN(c.module, C_WrapKey)(c.session, &mech, wk, mk->handle, b.wrapped, &wl), "C_WrapKey") != HSMKEYS_OK) {
        hkt_err_lib("wrapping the master");
        goto out;
    }
    b.wrapped_len = wl;
    size_t len = hkt_blob_encode_body(&b, out);
    if (len != 0 && hkt_blob_mac(&c, mk->handle, &b, b.mac) != 0) {
        hsmkeys_wipe(b.wrapped, sizeof b.wrapped);
        goto out;
    }
    if (len != 0)
        len = hkt_blob_encode(&b, out);
    hsmkeys_wipe(b.wrapped, sizeof b.wrapped);
    if (len == 0) {
        hkt_err("cannot encode the blob (label longer than %d?)", HKT_BLOB_MAX_LABEL);
        goto out;
    }
    if (hkt_write_new_file(o->out, out, len, 0644) != 0 || record_wrap(&c, mk->generation, fp) != 0)
        goto out;
    char kcv[2 * HK_CHECK_VALUE_LEN + 1];
    hkt_hex(kcv, b.kcv, sizeof b.kcv);
    hkt_info("wrapped generation %u of '%s' for transport key %s into %s", mk->generation, c.label, hex, o->out);
    hkt_info("kcv %u %s", mk->generation, kcv);
    hkt_info("send %s to host B; read it this kcv over another channel; B runs: "
             "hsmkeys-tool unwrap --in BLOB --expect-kcv %s", o->out, kcv);
    ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}

/* Find this token's transport key for the blob, or explain whose it is. */
int hkt_unwrap_key(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE *priv)
{
    char want[2 * HKT_FP_LEN + 1], have[2 * HKT_FP_LEN + 1];
    CK_OBJECT_HANDLE pub;
    hkt_hex(want, b->target, HKT_FP_LEN);
    int found = hkt_find_transport(c, CKO_PUBLIC_KEY, b->target, &pub);
    if (found < 0)
        return -1;
    if (found && hkt_find_transport(c, CKO_PRIVATE_KEY, b->target, priv) == 1)
        return 0;
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_LABEL, HKT_TRANSPORT_LABEL, strlen(HKT_TRANSPORT_LABEL)}};
    CK_ULONG n = 0;
    unsigned char fp[HKT_FP_LEN];
    snprintf(have, sizeof have, "none");
    if (hkt_find(c, t, 2, &pub, 1, &n) == 0 && n == 1 && hkt_pubkey_fingerprint(c, pub, fp) == 0)
        hkt_hex(have, fp, HKT_FP_LEN);
    hkt_err("this blob was made for another token: it names transport key %s, but token '%s' "
            "holds transport key %s. Send host A this token's public key "
            "(hsmkeys-tool transport-export) and ask for a blob wrapped for it", want,
            c->token_label, have);
    return -1;
}

/* C_UnwrapKey into a master object (token or session object), with the
 * final attributes (template.c); once more without CKA_COPYABLE for a
 * module that lacks it. */
static CK_RV unwrap_as(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE priv,
                       CK_BBOOL token, CK_OBJECT_HANDLE *h)
{
    struct hkt_master_tmpl m;
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    CK_RV rv;

    /* A clone is never extractable: only host A's copy may be wrapped. */
    hkt_master_tmpl_init(&m, b->key_type, token, 0, b->label, b->id);
    for (int attempt = 0;; attempt++) {
        *h = CK_INVALID_HANDLE;
        rv = HK_FN(c->module, C_UnwrapKey)(c->session, &mech, priv, (unsigned char *)b->wrapped,
                               b->wrapped_len, m.attrs, m.n, h);
        if (rv == CKR_OK || attempt > 0 || !hkt_copyable_refused(rv) ||
            !hkt_master_tmpl_drop(&m, CKA_COPYABLE))
            return rv;
    }
}

/* The unwrapped key must have the blob's check value, and compute the
 * blob's header MAC: else the blob was substituted or edited. */
int hkt_check_unwrapped(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE h)
{
    unsigned char kcv[HK_CHECK_VALUE_LEN], mac[HKT_BLOB_MAC_LEN];
    if (hkt_kcv(c, h, kcv) != 0)
        return -1;
    if (hk_ct_memcmp(kcv, b->kcv, sizeof kcv) != 0) {
        hkt_err("the unwrapped key's check value differs from the blob's: corrupted blob; "
                "nothing was imported. Ask host A for a fresh blob");
        return -1;
    }
    if (hkt_blob_mac(c, h, b, mac) != 0)
        return -1;
    if (hk_ct_memcmp(mac, b->mac, sizeof mac) != 0) {
        hkt_err("the blob's header (generation, activation, label, key type or format) was "
                "changed after host A wrapped it: its header MAC does not match the master's; "
                "nothing was imported. Ask host A for a fresh blob over a channel you trust");
        return -1;
    }
    return 0;
}

/* Unwrap as a session object and check it; only then unwrap again into
 * the token (checked again).  A module that cannot unwrap into a session
 * object gets the key unwrapped straight into the token, and removed again
 * if a check fails. */
static int unwrap_checked(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE priv,
                          CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_HANDLE tmp;
    CK_RV rv;
    uint32_t gen = 0;
    int64_t act = 0;
    *out = CK_INVALID_HANDLE;
    (void)hk_master_id_decode(b->id, sizeof b->id, &gen, &act);
    if (hkt_master_id_free(c, b->id, gen) != 0)
        return -1;
    rv = unwrap_as(c, b, priv, CK_FALSE, &tmp);
    if (rv == CKR_OK) {
        int bad = hkt_check_unwrapped(c, b, tmp);
        /* tolerated: a temporary copy; the check above is what counts */
        (void)HK_FN(c->module, C_DestroyObject)(c->session, tmp);
        if (bad)
            return -1;
    } else if (rv != CKR_TEMPLATE_INCONSISTENT && rv != CKR_ATTRIBUTE_VALUE_INVALID &&
               rv != CKR_FUNCTION_NOT_SUPPORTED && rv != CKR_ATTRIBUTE_READ_ONLY) {
        if (hk_p11_check(rv, "C_UnwrapKey") != HSMKEYS_OK)
            hkt_err_lib("unwrapping (a corrupted blob, or one made for another key)");
        return -1;
    }
    rv = unwrap_as(c, b, priv, CK_TRUE, out);
    if (hk_p11_check(rv, "C_UnwrapKey") != HSMKEYS_OK) {
        *out = CK_INVALID_HANDLE;
        hkt_err_lib("unwrapping (a corrupted blob, or one made for another key)");
        return -1;
    }
    if (hkt_check_unwrapped(c, b, *out) != 0) {
        (void)hkt_destroy(c, *out, "the unchecked master");
        *out = CK_INVALID_HANDLE;
        return -1;
    }
    return 0;
}

int hkt_cmd_unwrap(struct hkt_opts *o)
{
    struct hkt_conn c;
    unsigned char *buf = NULL, expect[HK_CHECK_VALUE_LEN];
    size_t len = 0;
    struct hkt_blob b;
    hk_master *m = NULL;
    size_t n = 0;
    uint32_t gen;
    int64_t act;
    int ret = HKT_EXIT_FAIL;
    if (!o->in) {
        hkt_err("unwrap needs --in BLOB (the file written by 'hsmkeys-tool wrap' on host A)");
        return HKT_EXIT_USAGE;
    }
    if (!o->expect_kcv || hkt_unhex(o->expect_kcv, expect, sizeof expect) != 0) {
        hkt_err("unwrap needs --expect-kcv HEX (%d hex digits): the key check value host A's "
                "operator read out when wrapping. It proves the blob holds A's master and not "
                "one an attacker wrapped for this token's public key", 2 * HK_CHECK_VALUE_LEN);
        return HKT_EXIT_USAGE;
    }
    if (hkt_read_file(o->in, &buf, &len, HKT_BLOB_MAX) != 0)
        return HKT_EXIT_FAIL;
    int bad = hkt_blob_decode(buf, len, &b);
    free(buf);
    if (bad)
        return HKT_EXIT_FAIL;
    if (b.id[2] == HK_CHAIN_ID_VERSION) { /* a forward-erasable chain state */
        if (hk_ct_memcmp(expect, b.kcv, sizeof expect) != 0) {
            hkt_err("the blob's key check value differs from --expect-kcv %s: it is not the chain "
                    "state host A wrapped (substituted or mistyped). Nothing was imported",
                    o->expect_kcv);
            return HKT_EXIT_FAIL;
        }
        return hkt_chain_unwrap(o, &b);
    }
    if (hk_master_id_decode(b.id, sizeof b.id, &gen, &act) != HSMKEYS_OK) {
        hkt_err("blob names a master id of an unknown form: corrupted or from another tool");
        return HKT_EXIT_FAIL;
    }
    if (o->label && strcmp(o->label, b.label)) {
        hkt_err("blob holds master '%s' but --label says '%s'", b.label, o->label);
        return HKT_EXIT_FAIL;
    }
    if (hk_ct_memcmp(expect, b.kcv, sizeof expect) != 0) {
        hkt_err("the blob's key check value differs from --expect-kcv %s: it is not the master "
                "host A wrapped (substituted or mistyped). Nothing was imported", o->expect_kcv);
        return HKT_EXIT_FAIL;
    }
    struct hkt_opts o2 = *o;
    o2.label = b.label;
    if (hkt_conn_open(&c, &o2, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    CK_OBJECT_HANDLE priv, h = CK_INVALID_HANDLE;
    if (hkt_unwrap_key(&c, &b, &priv) != 0 || hkt_masters(&c, &m, &n) != 0)
        goto out;
    if (hkt_master_gen(m, n, gen)) {
        hkt_err("token '%s' already holds generation %u of '%s': nothing imported (check it "
                "with 'hsmkeys-tool verify')", c.token_label, gen, b.label);
        goto out;
    }
    free(m);
    m = NULL;
    const hk_master *mk;
    /* Unwrap as a session object, check it, and only then copy it into the
     * token: a crash or a failed check leaves nothing behind. */
    if (unwrap_checked(&c, &b, priv, &h) != 0)
        goto out;
    if (hkt_masters(&c, &m, &n) != 0 || !(mk = hkt_master_gen(m, n, gen)) || mk->handle != h) {
        hkt_err("the imported generation %u cannot be found by label '%s'", gen, b.label);
        goto out;
    }
    if (hk_master_check_policy(mk, 0, hkt_warn_cb, NULL) != HSMKEYS_OK) {
        hkt_err_lib("the imported master does not meet the policy; it was removed");
        goto out;
    }
    char hex[2 * HK_CHECK_VALUE_LEN + 1], when[40];
    hkt_hex(hex, b.kcv, sizeof b.kcv);
    hkt_fmt_time(act, when, sizeof when);
    hkt_info("imported generation %u of '%s' (active from %s) into token '%s': sensitive, "
             "non-extractable, non-modifiable; header authenticated", gen, b.label, when,
             c.token_label);
    hkt_info("kcv %u %s", gen, hex);
    h = CK_INVALID_HANDLE;
    ret = HKT_EXIT_OK;
out:
    if (h != CK_INVALID_HANDLE)
        (void)hkt_destroy(&c, h, "the half-imported master");
    free(m);
    hkt_conn_close(&c);
    hsmkeys_wipe(b.wrapped, sizeof b.wrapped);
    return ret;
}
