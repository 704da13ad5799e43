/*
 * cmd_seal.c - "seal" (make a clonable generation non-extractable, for good)
 * and "destroy"/"retire" (remove a generation no server can still need).
 *
 * Owns: the rules for both one-way steps.  Threat: sealing too early leaves
 * a fleet that cannot be completed (every clone needs a new master), so seal
 * is refused while a trusted transport key has not received the generation
 * (wrap records, see cmd_wrap.c), and when no clone was made unless the
 * operator says --no-clone.  Destroying too early breaks resumption of
 * tickets still inside the window, so destroy is refused until the last
 * epoch that encrypted with the generation is older than the decrypt window;
 * a scheduled generation can be cancelled while no server can have used it.
 * Sealing copies the generation into an object that is neither extractable
 * nor modifiable (C_CopyObject with EXTRACTABLE=FALSE then MODIFIABLE=FALSE:
 * SoftHSM2 2.6.1 takes them in that order only, and refuses
 * CKA_MODIFIABLE=FALSE in C_SetAttributeValue), checks the copy's key check
 * value, and only then destroys the clonable original.  NSS softokn copies
 * a token key in place (same handle): nothing to destroy then.  A token
 * that cannot copy gets EXTRACTABLE=FALSE set in place, with a warning that
 * the generation stays modifiable.
 */
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static int was_wrapped(struct hkt_conn *c, uint32_t gen, const unsigned char fp[HKT_FP_LEN])
{
    unsigned char v[2 + 4 + HKT_FP_LEN] = {'W', 0x01,
        (unsigned char)(gen >> 24), (unsigned char)(gen >> 16), (unsigned char)(gen >> 8), (unsigned char)gen};
    memcpy(v + 6, fp, HKT_FP_LEN);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, HKT_WRAPLOG_LABEL, strlen(HKT_WRAPLOG_LABEL)},
        {CKA_VALUE, v, sizeof v},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    if (hkt_find(c, t, 3, &h, 1, &n) != 0)
        return -1;
    return n > 0;
}

/* 0 if every trusted transport key received generation gen. */
static int clones_done(struct hkt_conn *c, uint32_t gen, int no_clone)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TRUSTED, &yes, sizeof yes}};
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    if (hkt_find(c, t, 2, h, 64, &n) != 0)
        return -1;
    if (n == 0 && !no_clone) {
        hkt_err("refusing to seal generation %u before cloning: no transport key is trusted on "
                "token '%s', so no other token can have received it, and once sealed it can never "
                "be cloned. Clone it first (transport-keygen on B, trust and wrap on A, unwrap "
                "on B), or pass --no-clone if this token is the only one", gen, c->token_label);
        return -1;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        unsigned char fp[HKT_FP_LEN];
        char hex[2 * HKT_FP_LEN + 1], label[80] = "";
        CK_ATTRIBUTE la = {CKA_LABEL, label, sizeof label - 1};
        if (hkt_pubkey_fingerprint(c, h[i], fp) != 0)
            return -1;
        if (HK_FN(c->module, C_GetAttributeValue)(c->session, h[i], &la, 1) == CKR_OK)
            label[la.ulValueLen < sizeof label ? la.ulValueLen : sizeof label - 1] = 0;
        int w = was_wrapped(c, gen, fp);
        if (w < 0)
            return -1;
        if (!w) {
            hkt_hex(hex, fp, sizeof fp);
            hkt_err("refusing to seal: generation %u was never wrapped for trusted key '%s' (%s). "
                    "Wrap it for that host first (hsmkeys-tool wrap --generation %u --to ITS_PUBFILE), "
                    "or if that host is gone, delete its trusted key as security officer", gen,
                    label, hex, gen);
            return -1;
        }
    }
    return 0;
}

/* Seal one clonable generation (see the file comment). */
static int seal_one(struct hkt_conn *c, const hk_master *mk)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_EXTRACTABLE, &no, sizeof no}, {CKA_MODIFIABLE, &no, sizeof no}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    unsigned char before[HK_CHECK_VALUE_LEN], after[HK_CHECK_VALUE_LEN];
    CK_RV rv;

    if (hkt_kcv(c, mk->handle, before) != 0)
        return -1;
    rv = HK_FN(c->module, C_CopyObject)(c->session, mk->handle, t, 2, &h);
    if (rv == CKR_OK) {
        if (hk_attr_bool(c->module, c->session, h, CKA_EXTRACTABLE) != 0 ||
            hk_attr_bool(c->module, c->session, h, CKA_MODIFIABLE) != 0 ||
            hkt_kcv(c, h, after) != 0 || hk_ct_memcmp(before, after, sizeof after) != 0) {
            hkt_err("the sealed copy of generation %u does not have the requested attributes "
                    "or the same key check value; it was removed and the generation is "
                    "unchanged", mk->generation);
            if (h != mk->handle)
                (void)hkt_destroy(c, h, "the sealed copy");
            return -1;
        }
        if (h != mk->handle && hkt_destroy(c, mk->handle, "the clonable original") != 0) {
            (void)hkt_destroy(c, h, "the sealed copy");
            return -1;
        }
        return 0;
    }
    /* No copy on this token: seal in place; it stays modifiable. */
    CK_ATTRIBUTE a = {CKA_EXTRACTABLE, &no, sizeof no};
    if (hk_p11_check(HK_FN(c->module, C_SetAttributeValue)(c->session, mk->handle, &a, 1),
                     "C_SetAttributeValue") != HSMKEYS_OK ||
        hk_attr_bool(c->module, c->session, mk->handle, CKA_EXTRACTABLE) != 0) {
        hkt_err_lib("sealing");
        return -1;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "token '%s' refused to copy generation %u into a non-modifiable "
             "object (C_CopyObject: %s): it is sealed in place and stays CKA_MODIFIABLE",
             c->token_label, mk->generation, hk_ckr_name(rv));
    hkt_warn_cb(NULL, msg);
    return 0;
}

int hkt_cmd_seal(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    int ret = HKT_EXIT_FAIL;
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    if (o->generation >= 0 && !hkt_master_gen(m, n, (uint32_t)o->generation)) {
        hkt_err("token '%s' has no generation %ld of '%s'", c.token_label, o->generation, c.label);
        goto out;
    }
    /* Check every generation first, so a refusal seals nothing. */
    for (size_t i = 0; i < n; i++) {
        if (o->generation >= 0 && m[i].generation != (uint32_t)o->generation)
            continue;
        if (m[i].extractable != 1)
            continue;
        if (clones_done(&c, m[i].generation, o->no_clone) != 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (o->generation >= 0 && m[i].generation != (uint32_t)o->generation)
            continue;
        if (m[i].extractable != 1) {
            hkt_info("generation %u is already sealed", m[i].generation);
            continue;
        }
        if (seal_one(&c, &m[i]) != 0)
            goto out;
        hkt_info("sealed generation %u of '%s' on token '%s': no longer extractable nor "
                 "modifiable", m[i].generation, c.label, c.token_label);
    }
    if (n == 0)
        hkt_err("token '%s' holds no master '%s'", c.token_label, c.label);
    else
        ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}

int hkt_cmd_destroy(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    int ret = HKT_EXIT_FAIL;
    char when[40];
    if (o->generation < 0) {
        hkt_err("destroy needs --generation N (see 'hsmkeys-tool status')");
        return HKT_EXIT_USAGE;
    }
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    const hk_master *mk = hkt_master_gen(m, n, (uint32_t)o->generation), *next = NULL;
    if (!mk) {
        hkt_err("token '%s' has no generation %ld of '%s'", c.token_label, o->generation, c.label);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (m[i].activation > mk->activation && (!next || m[i].activation < next->activation))
            next = &m[i];
    int64_t p = o->epoch_seconds, now = hkt_now(o);
    if (!next && n > 1 && hk_generation_unused(mk->activation, now, p)) {
        /* A scheduled generation no server can have used yet (even one whose
         * clock runs an epoch ahead): cancelling it is safe. */
        if (hkt_destroy(&c, mk->handle, "the generation") != 0)
            goto out;
        hkt_fmt_time(mk->activation, when, sizeof when);
        hkt_info("cancelled scheduled generation %u of '%s' (it would have become active at %s) on "
                 "token '%s'; do the same on every other token", mk->generation, c.label, when,
                 c.token_label);
        ret = HKT_EXIT_OK;
        goto out;
    }
    if (!next) {
        hkt_err("generation %u is the newest: servers encrypt with it. Add its successor "
                "(hsmkeys-tool rotate), wait until it is active and the window has passed, then destroy",
                mk->generation);
        goto out;
    }
    /* When no server decrypts mk's tickets any more: the library's rule
     * (schedule.c, hk_retire_time), with the servers' epoch and lifetime. */
    int64_t last;
    int64_t free_from = hk_retire_time(next->activation, o->lifetime_seconds, p, &last);
    if (now < free_from) {
        hkt_fmt_time(free_from, when, sizeof when);
        hkt_err("generation %u may still decrypt live tickets (epoch %llds, lifetime %llds): its "
                "last epoch %lld is within the window. Destroy it after %s (%lld). Pass the "
                "servers' --epoch and --lifetime if they differ", mk->generation,
                (long long)p, (long long)o->lifetime_seconds, (long long)last, when, (long long)free_from);
        goto out;
    }
    if (hkt_destroy(&c, mk->handle, "the generation") != 0 ||
        hkt_chain_destroy_generation(&c, mk->generation) != 0)
        goto out;
    hkt_info("destroyed generation %u of '%s' on token '%s'; do the same on every other token",
             mk->generation, c.label, c.token_label);
    ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}
