/*
 * cmd_chain.c - hsmkeys-tool and the forward-erasable mode (chain.h,
 * docs/DERIVATION.md "Forward-erasable epochs", docs/PROVISIONING.md):
 *
 *   create/rotate --forward-erasable  start a generation's chain: S(g, x0)
 *                                     generated inside the token
 *   kcv --epoch E [--forward-erasable] the check value of epoch E's ticket
 *                                     key (both modes); "erased" once gone
 *   status                            the chain states per generation
 *   wrap --forward-erasable / unwrap  clone the newest state to a joining
 *                                     host in a blob v2 (blob.h) under the
 *                                     same RSA-OAEP transport as the master
 *   destroy --generation N            also erases that generation's chain
 *
 * Threat: the tool must never bring a state's bytes out of the token (it
 * only generates, wraps to a trusted key, or unwraps), and must never
 * advance or erase a chain itself (the servers' maintainers own that): kcv
 * only reads states that exist; an epoch ahead of the newest state is "not
 * made yet", one behind the oldest is "erased".
 */
#include <stdlib.h>
#include <string.h>
#include "blob.h"

static int chain_label(struct hkt_conn *c, char out[HK_CHAIN_LABEL_MAX])
{
    if (hk_chain_label(c->label, out) != HSMKEYS_OK) {
        hkt_err_lib("the chain's label");
        return -1;
    }
    return 0;
}

static int list_states(struct hkt_conn *c, const char *label, hk_chain_state **out, size_t *n)
{
    CK_RV rv;
    if (hk_chain_list(c->module, c->session, label, out, n, &rv) != HSMKEYS_OK) {
        hkt_err_lib("listing the chain states");
        return -1;
    }
    return 0;
}

int hkt_chain_start(struct hkt_conn *c, const struct hkt_opts *o, uint32_t gen,
                    int64_t activation)
{
    char label[HK_CHAIN_LABEL_MAX];
    int64_t p = o->epoch_seconds, now = hkt_now(o);
    uint64_t x = hk_epoch_of(now, p), first;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    /* a generation that activates later needs its chain from the epoch
     * before its first (schedule.h: it may encrypt tickets of first - 1) */
    first = activation <= 0 ? 0 : (uint64_t)((activation + p - 1) / p);
    if (first > 0 && first - 1 > x)
        x = first - 1;
    if (chain_label(c, label) != 0)
        return -1;
    if (hk_chain_generate(c->module, c->session, label, gen, x, &h, &rv) != HSMKEYS_OK) {
        hkt_err_lib("generating the first chain state");
        return -1;
    }
    hkt_info("forward-erasable: chain of generation %u starts at epoch %llu (epoch %llds) in "
             "token '%s', generated inside it; servers advance it with hsmkeys_forward_erasable / "
             "forward-erasable=yes and the same epoch. Other tokens of the fleet get it by "
             "cloning: hsmkeys-tool wrap --forward-erasable", gen, (unsigned long long)x,
             (long long)p, c->token_label);
    return 0;
}

static int parse_epoch(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v > HK_EPOCH_MAX)
        return -1;
    *out = v;
    return 0;
}

/* The generation that encrypts in epoch E: --generation, else the one
 * active at E * epoch-length. */
static const hk_master *epoch_generation(const struct hkt_opts *o, const hk_master *m, size_t n,
                                         uint64_t e)
{
    const hk_master *best = NULL;
    int64_t start = (int64_t)(e * (uint64_t)o->epoch_length);
    for (size_t i = 0; i < n; i++) {
        if (o->generation >= 0) {
            if (m[i].generation == (uint32_t)o->generation)
                return &m[i];
            continue;
        }
        if (m[i].activation <= start && (!best || m[i].activation > best->activation))
            best = &m[i];
    }
    if (!best && o->generation < 0 && n > 0)
        best = &m[0]; /* none active yet: the earliest, as the servers do */
    return best;
}

int hkt_cmd_kcv_epoch(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    hk_chain_state *st = NULL;
    size_t n = 0, ns = 0, i;
    uint64_t e;
    unsigned char keys[HK_EPOCH_KEYS_LEN], kcv[HK_CHECK_VALUE_LEN];
    char hex[2 * HK_CHECK_VALUE_LEN + 1], label[HK_CHAIN_LABEL_MAX];
    int ret = HKT_EXIT_FAIL, rc;
    CK_RV rv;

    if (parse_epoch(o->epoch_arg, &e) != 0) {
        hkt_err("kcv --epoch %s: give an epoch number (0..2^48-1), e.g. the epoch 'hsmkeys-tool "
                "status' prints; --epoch-length DUR gives the servers' epoch length", o->epoch_arg);
        return HKT_EXIT_USAGE;
    }
    if (!o->domain) {
        hkt_err("kcv --epoch needs --domain D: epoch keys depend on the servers' ticket domain");
        return HKT_EXIT_USAGE;
    }
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    const hk_master *mk = epoch_generation(o, m, n, e);
    if (!mk) {
        hkt_err("token '%s' holds no master '%s'%s", c.token_label, c.label,
                o->generation >= 0 ? " of that generation" : "");
        goto out;
    }
    if (o->forward_erasable) {
        const hk_chain_state *s = NULL;
        uint64_t lo = UINT64_MAX, hi = 0;
        if (chain_label(&c, label) != 0 || list_states(&c, label, &st, &ns) != 0)
            goto out;
        for (i = 0; i < ns; i++) {
            if (st[i].generation != mk->generation)
                continue;
            if (st[i].epoch == e && !s)
                s = &st[i];
            lo = st[i].epoch < lo ? st[i].epoch : lo;
            hi = st[i].epoch > hi ? st[i].epoch : hi;
        }
        if (!s && hi != 0 && e > hi) {
            hkt_err("epoch %llu of generation %u is not made yet on token '%s' (its newest chain "
                    "state is epoch %llu): the servers make each state ahead of need, up to the "
                    "current epoch + 1", (unsigned long long)e, mk->generation, c.token_label,
                    (unsigned long long)hi);
            goto out;
        }
        if (!s) {
            hkt_err("epoch %llu of generation %u is erased on token '%s': its chain state is gone "
                    "(oldest state held: %s%llu), so nobody can compute its keys any more",
                    (unsigned long long)e, mk->generation, c.token_label,
                    lo == UINT64_MAX ? "none, " : "epoch ", lo == UINT64_MAX ? 0ULL :
                    (unsigned long long)lo);
            goto out;
        }
        rc = hk_chain_epoch_keys(c.module, c.session, mk->handle, s->handle, HK_LABEL_TICKET,
                                 o->domain, e, keys, &rv);
    } else {
        struct hk_master_prf prf = { c.module, c.session, mk->handle, CKR_OK, 0 };
        rc = hk_kdf_epoch_keys(hk_master_prf, &prf, HK_LABEL_TICKET, o->domain, e, keys);
    }
    if (rc == HSMKEYS_OK)
        rc = hk_epoch_check_value(keys, kcv);
    hsmkeys_wipe(keys, sizeof keys);
    if (rc != HSMKEYS_OK) {
        hkt_err_lib("deriving the epoch's ticket key");
        goto out;
    }
    hkt_hex(hex, kcv, sizeof kcv);
    hkt_info("epoch %llu generation %u domain '%s'%s: epoch kcv %s", (unsigned long long)e,
             mk->generation, o->domain, o->forward_erasable ? " (forward-erasable)" : "", hex);
    ret = HKT_EXIT_OK;
out:
    free(st);
    free(m);
    hkt_conn_close(&c);
    return ret;
}

void hkt_chain_status(struct hkt_conn *c, const struct hkt_opts *o, const hk_master *m, size_t n)
{
    char label[HK_CHAIN_LABEL_MAX], taghex[2 * HK_TAG_LEN + 1];
    hk_chain_state *st = NULL;
    size_t ns = 0, i, j;
    uint64_t e = hk_epoch_of(hkt_now(o), o->epoch_seconds);
    if (chain_label(c, label) != 0 || list_states(c, label, &st, &ns) != 0)
        return;
    if (ns == 0) {
        hkt_info("forward-erasable chain '%s': none (static mode only)", label);
        free(st);
        return;
    }
    hkt_info("forward-erasable chain '%s': %zu state%s", label, ns, ns == 1 ? "" : "s");
    for (i = 0; i < ns; i = j) {
        size_t copies = 0;
        for (j = i; j < ns && st[j].generation == st[i].generation; j++)
            if (j > i && st[j].epoch == st[j - 1].epoch)
                copies++;
        hkt_info("  generation %u: %zu state%s, epochs %llu..%llu%s%s", st[i].generation, j - i,
                 j - i == 1 ? "" : "s", (unsigned long long)st[i].epoch,
                 (unsigned long long)st[j - 1].epoch,
                 st[j - 1].epoch < e ? " (behind the current epoch: the servers catch up)" : "",
                 copies ? " (duplicates: the servers settle them)" : "");
        const hk_master *mk = hkt_master_gen(m, n, st[i].generation);
        if (!mk)
            hkt_info("    no master of generation %u: these states are useless (hsmkeys-tool "
                     "destroy erases a generation's chain with it)", st[i].generation);
        else if (o->domain) {
            struct hk_master_prf prf = { c->module, c->session, mk->handle, CKR_OK, 0 };
            unsigned char tag[HK_TAG_LEN];
            if (hk_kdf_name_tag_label(hk_master_prf, &prf, HK_LABEL_FE_NAME, o->domain, tag) ==
                HSMKEYS_OK) {
                hkt_hex(taghex, tag, sizeof tag);
                hkt_info("    forward-erasable key names for domain '%s': %02x%s + epoch",
                         o->domain, HK_NAME_VERSION, taghex);
            }
        }
    }
    free(st);
}

int hkt_chain_destroy_generation(struct hkt_conn *c, uint32_t gen)
{
    char label[HK_CHAIN_LABEL_MAX];
    hk_chain_state *st = NULL;
    size_t ns = 0, i, gone = 0;
    CK_RV rv;
    int ret = 0;
    if (chain_label(c, label) != 0 || list_states(c, label, &st, &ns) != 0)
        return -1;
    for (i = 0; i < ns; i++) {
        if (st[i].generation != gen)
            continue;
        if (hk_chain_destroy(c->module, c->session, st[i].handle, &rv) != HSMKEYS_OK) {
            hkt_err_lib("destroying a chain state");
            ret = -1;
            break;
        }
        gone++;
    }
    if (gone)
        hkt_info("erased the %zu chain state%s of generation %u", gone, gone == 1 ? "" : "s", gen);
    free(st);
    return ret;
}

int hkt_chain_wrap(struct hkt_conn *c, const struct hkt_opts *o, CK_OBJECT_HANDLE wk,
                   const unsigned char fp[HKT_FP_LEN], uint32_t gen)
{
    char label[HK_CHAIN_LABEL_MAX], kcvhex[2 * HK_CHECK_VALUE_LEN + 1];
    hk_chain_state *st = NULL;
    const hk_chain_state *s = NULL;
    size_t ns = 0, i, len;
    struct hkt_blob b;
    unsigned char out[HKT_BLOB_MAX];
    int ret = HKT_EXIT_FAIL;

    if (chain_label(c, label) != 0 || list_states(c, label, &st, &ns) != 0)
        return HKT_EXIT_FAIL;
    for (i = 0; i < ns; i++)
        if (st[i].generation == gen)
            s = &st[i]; /* sorted: the newest one last */
    if (!s) {
        hkt_err("token '%s' holds no chain state of generation %u: start the chain with "
                "'hsmkeys-tool create --forward-erasable' (or rotate --forward-erasable)",
                c->token_label, gen);
        goto out;
    }
    memset(&b, 0, sizeof b);
    b.mech = HKT_BLOB_MECH_OAEP_SHA1;
    memcpy(b.target, fp, HKT_FP_LEN);
    hk_chain_id_encode(gen, s->epoch, b.id);
    b.key_type = (uint32_t)CKK_GENERIC_SECRET;
    if (strlen(label) > HKT_BLOB_MAX_LABEL) {
        hkt_err("the chain label '%s' is longer than a blob holds (%d)", label, HKT_BLOB_MAX_LABEL);
        goto out;
    }
    memcpy(b.label, label, strlen(label) + 1);
    if (hkt_kcv(c, s->handle, b.kcv) != 0)
        goto out;
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    CK_ULONG wl = sizeof b.wrapped;
    if (hk_p11_check(HK_FN(c->module, C_WrapKey)(c->session, &mech, wk, s->handle, b.wrapped, &wl),
                     "C_WrapKey") != HSMKEYS_OK) {
        hkt_err_lib("wrapping the chain state");
        goto out;
    }
    b.wrapped_len = wl;
    len = hkt_blob_encode_body(&b, out);
    if (len != 0 && hkt_blob_mac(c, s->handle, &b, b.mac) != 0)
        len = 0;
    if (len != 0)
        len = hkt_blob_encode(&b, out);
    hsmkeys_wipe(b.wrapped, sizeof b.wrapped);
    if (len == 0 || hkt_write_new_file(o->out, out, len, 0644) != 0)
        goto out;
    hkt_hex(kcvhex, b.kcv, sizeof b.kcv);
    hkt_info("wrapped the chain state of generation %u, epoch %llu, into %s", gen,
             (unsigned long long)s->epoch, o->out);
    hkt_info("kcv %u %s", gen, kcvhex);
    hkt_info("B runs: hsmkeys-tool unwrap --in BLOB --expect-kcv %s, then starts its servers "
             "within the window (the state erases itself after it)", kcvhex);
    ret = HKT_EXIT_OK;
out:
    free(st);
    return ret;
}

int hkt_chain_unwrap(struct hkt_opts *o, const struct hkt_blob *b)
{
    struct hkt_conn c;
    struct hkt_opts o2 = *o;
    uint32_t gen;
    uint64_t x;
    CK_OBJECT_HANDLE priv, tmp = CK_INVALID_HANDLE, h = CK_INVALID_HANDLE;
    CK_RV rv;
    hk_chain_tmpl t;
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    size_t sl = strlen(HK_CHAIN_LABEL_SUFFIX), bl = strlen(b->label);
    char master_label[HKT_BLOB_MAX_LABEL + 1];
    int ret = HKT_EXIT_FAIL;

    if (hk_chain_id_decode(b->id, sizeof b->id, &gen, &x) != HSMKEYS_OK || bl <= sl ||
        strcmp(b->label + bl - sl, HK_CHAIN_LABEL_SUFFIX) != 0 ||
        b->key_type != CKK_GENERIC_SECRET) {
        hkt_err("blob names a chain state of an unknown form: corrupted or from another tool");
        return HKT_EXIT_FAIL;
    }
    snprintf(master_label, sizeof master_label, "%.*s", (int)(bl - sl), b->label);
    o2.label = master_label;
    if (hkt_conn_open(&c, &o2, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_unwrap_key(&c, b, &priv) != 0)
        goto out;
    /* a session object first: checked before anything reaches the token */
    hk_chain_tmpl_init(&t, b->label, gen, x, 0);
    rv = HK_FN(c.module, C_UnwrapKey)(c.session, &mech, priv, (unsigned char *)b->wrapped, b->wrapped_len,
                          t.a, t.n, &tmp);
    if (hk_p11_check(rv, "C_UnwrapKey") != HSMKEYS_OK) {
        hkt_err_lib("unwrapping the chain state (a corrupted blob, or one for another key)");
        goto out;
    }
    if (hkt_check_unwrapped(&c, b, tmp) != 0)
        goto out;
    hk_chain_tmpl_init(&t, b->label, gen, x, 1);
    rv = HK_FN(c.module, C_UnwrapKey)(c.session, &mech, priv, (unsigned char *)b->wrapped, b->wrapped_len,
                          t.a, t.n, &h);
    if (hk_p11_check(rv, "C_UnwrapKey") != HSMKEYS_OK) {
        h = CK_INVALID_HANDLE;
        hkt_err_lib("unwrapping the chain state into the token");
        goto out;
    }
    if (hkt_check_unwrapped(&c, b, h) != 0)
        goto out;
    /* the token may hold it already (a second import): leave one */
    if (hk_chain_settle(c.module, c.session, b->label, gen, x, &h, &rv) != HSMKEYS_OK) {
        hkt_err_lib("settling duplicate chain states");
        h = CK_INVALID_HANDLE;
        goto out;
    }
    hkt_info("imported the chain state of generation %u, epoch %llu, into token '%s' "
             "(sensitive; extractable only to trusted keys; sign only); header authenticated",
             gen, (unsigned long long)x, c.token_label);
    hkt_info("start this host's servers with forward-erasable on: they step the chain forward "
             "to the current epoch; epochs before %llu are erased here by construction",
             (unsigned long long)x);
    h = CK_INVALID_HANDLE;
    ret = HKT_EXIT_OK;
out:
    if (tmp != CK_INVALID_HANDLE)
        (void)HK_FN(c.module, C_DestroyObject)(c.session, tmp);
    if (h != CK_INVALID_HANDLE)
        (void)HK_FN(c.module, C_DestroyObject)(c.session, h);
    hkt_conn_close(&c);
    return ret;
}
