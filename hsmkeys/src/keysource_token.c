/*
 * keysource_token.c - epoch keys from static master generations in a
 * PKCS#11 token (see keysource.h, docs/DERIVATION.md).
 *
 * Holds: the PKCS#11 base (keysource_p11.h: module, slot, one session
 * logged in as the user, the master generations with their name tags).
 * derive() is SP 800-108 on the token's HMAC with the generation's master.
 *
 * Threat: a token that fails or changes under us (handled by the base's
 * retry-once rule and the maintainer's backoff); a master the policy
 * refuses is never used.
 */
#include <stdlib.h>
#include <string.h>
#include "keysource_p11.h"

static int op_derive(hk_p11src *t, void *arg, CK_RV *rv)
{
    derive_op *op = arg;
    const hk_master *mk = hk_p11src_master(t, op->generation);
    struct hk_master_prf prf = { t->module, t->session, 0, CKR_OK, 0 };
    int rc;
    if (mk == NULL)
        return hk_fail(HSMKEYS_E_NO_MASTER, "master generation %u is no longer on the token",
                       op->generation);
    prf.key = mk->handle;
    rc = hk_kdf_epoch_keys(hk_master_prf, &prf, op->label, t->domain, op->epoch, op->out);
    *rv = prf.last_rv;
    return rc;
}

static int token_derive(hk_keysource *src, uint32_t generation, uint64_t epoch,
                        const char *label, unsigned char out[64])
{
    derive_op op = { generation, epoch, label, out };
    return hk_p11src_run((hk_p11src *)src, op_derive, &op);
}

static void token_destroy(hk_keysource *src)
{
    if (src == NULL)
        return;
    hk_p11src_cleanup((hk_p11src *)src);
    free(src);
}

static const struct hk_keysource_ops token_ops = {
    "token-static-master", hk_p11src_reread, token_derive, NULL, token_destroy,
};

int hk_token_source_open(const hk_token_source_opts *o, hk_keysource **out)
{
    hk_p11src *t;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    t->base.ops = &token_ops;
    rc = hk_p11src_open(t, o, HK_LABEL_NAME);
    if (rc != HSMKEYS_OK) {
        token_destroy(&t->base);
        return rc;
    }
    t->base.token_calls = 0; /* calls made after open are counted */
    *out = &t->base;
    return HSMKEYS_OK;
}
