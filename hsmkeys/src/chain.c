/*
 * chain.c - state objects of the forward-erasable chain (see chain.h and
 * docs/DERIVATION.md).
 *
 * Owns: the state template, the step S(g, x) -> S(g, x+1) through the
 * token's HMAC, the settling of duplicates, and the mode's epoch keys.
 * Threat: two processes (or hosts on one p11-kit-shared token) stepping at
 * once.  Values are deterministic, so duplicates are identical and any one
 * of them may stay.  Object handles are per process, so settlers could not
 * agree on a copy by handle (each may destroy "the other" and leave none,
 * or each keep its own and leave two); they agree by the creator's nonce in
 * CKA_ID instead: the smallest stays, whoever settles.  step() makes the
 * state again if nothing is left (copies of equal nonce, or one erased
 * meanwhile), which is safe because the predecessor stays on the token for
 * the whole window.  Every buffer that held state or key bytes is
 * wiped before return.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "chain.h"
#include "master.h"

#define HK_SETTLE_ROUNDS 6

void hk_chain_id_encode(uint32_t g, uint64_t x, unsigned char id[HK_CHAIN_ID_LEN])
{
    int i;
    id[0] = 'H';
    id[1] = 'K';
    id[2] = HK_CHAIN_ID_VERSION;
    for (i = 0; i < 4; i++)
        id[3 + i] = (unsigned char)(g >> (8 * (3 - i)));
    for (i = 0; i < 8; i++)
        id[7 + i] = (unsigned char)(x >> (8 * (7 - i)));
}

int hk_chain_id_decode(const unsigned char *id, size_t len, uint32_t *g, uint64_t *x)
{
    uint32_t gg = 0;
    uint64_t xx = 0;
    int i;
    if (id == NULL || len != HK_CHAIN_ID_LEN || id[0] != 'H' || id[1] != 'K' ||
        id[2] != HK_CHAIN_ID_VERSION)
        return HSMKEYS_E_MALFORMED;
    for (i = 0; i < 4; i++)
        gg = (gg << 8) | id[3 + i];
    for (i = 0; i < 8; i++)
        xx = (xx << 8) | id[7 + i];
    *g = gg;
    *x = xx;
    return HSMKEYS_OK;
}

int hk_chain_obj_id_decode(const unsigned char *id, size_t len, uint32_t *g, uint64_t *x,
                           uint64_t *nonce)
{
    uint64_t nn = 0;
    int i;
    if (len != HK_CHAIN_ID_LEN && len != HK_CHAIN_OBJ_ID_LEN)
        return HSMKEYS_E_MALFORMED;
    HK_TRY(hk_chain_id_decode(id, HK_CHAIN_ID_LEN, g, x));
    for (i = 0; len == HK_CHAIN_OBJ_ID_LEN && i < HK_CHAIN_NONCE_LEN; i++)
        nn = (nn << 8) | id[HK_CHAIN_ID_LEN + i];
    *nonce = nn;
    return HSMKEYS_OK;
}

/* A copy's nonce: only distinctness matters (it is no secret), so when the
 * kernel has no randomness to give, time, pid and a counter do. */
static void fresh_nonce(unsigned char out[HK_CHAIN_NONCE_LEN])
{
    static unsigned counter;
    if (getrandom(out, HK_CHAIN_NONCE_LEN, GRND_NONBLOCK) != HK_CHAIN_NONCE_LEN) {
        struct timespec ts;
        uint64_t v;
        int i;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 20) ^
            __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        for (i = 0; i < HK_CHAIN_NONCE_LEN; i++)
            out[i] = (unsigned char)(v >> (8 * i));
    }
}

int hk_chain_label(const char *master_label, char out[HK_CHAIN_LABEL_MAX])
{
    int n = snprintf(out, HK_CHAIN_LABEL_MAX, "%s%s",
                     master_label != NULL ? master_label : "hsmkeys-master",
                     HK_CHAIN_LABEL_SUFFIX);
    if (n < 0 || n >= HK_CHAIN_LABEL_MAX)
        return hk_fail(HSMKEYS_E_INVALID, "the master label is too long for its chain label "
                       "(at most %d characters)", HK_CHAIN_LABEL_MAX - 8);
    return HSMKEYS_OK;
}

/* CKA_MODIFIABLE=FALSE stays last: SoftHSM2 2.6.1 applies a template in
 * order and refuses (CKR_ATTRIBUTE_READ_ONLY) attributes that follow it
 * (template.c in provisioning found the same for C_UnwrapKey). */
static void tmpl_add(hk_chain_tmpl *t, CK_ATTRIBUTE_TYPE type, void *v, CK_ULONG len)
{
    if (t->n > 0 && t->n < HK_CHAIN_TMPL_MAX && t->a[t->n - 1].type == CKA_MODIFIABLE) {
        t->a[t->n] = t->a[t->n - 1];
        t->a[t->n - 1].type = type;
        t->a[t->n - 1].pValue = v;
        t->a[t->n - 1].ulValueLen = len;
        t->n++;
    } else if (t->n < HK_CHAIN_TMPL_MAX) {
        t->a[t->n].type = type;
        t->a[t->n].pValue = v;
        t->a[t->n].ulValueLen = len;
        t->n++;
    }
}

void hk_chain_tmpl_init(hk_chain_tmpl *t, const char *label, uint32_t g, uint64_t x, int token)
{
    memset(t, 0, sizeof *t);
    t->cls = CKO_SECRET_KEY;
    t->kt = CKK_GENERIC_SECRET;
    t->yes = CK_TRUE;
    t->no = CK_FALSE;
    t->token = token ? CK_TRUE : CK_FALSE;
    hk_chain_id_encode(g, x, t->id);
    fresh_nonce(t->id + HK_CHAIN_ID_LEN);
    tmpl_add(t, CKA_CLASS, &t->cls, sizeof t->cls);
    tmpl_add(t, CKA_KEY_TYPE, &t->kt, sizeof t->kt);
    tmpl_add(t, CKA_TOKEN, &t->token, sizeof t->token);
    tmpl_add(t, CKA_PRIVATE, &t->yes, sizeof t->yes);
    tmpl_add(t, CKA_SENSITIVE, &t->yes, sizeof t->yes);
    /* extractable only under a key the security officer trusted (cloning) */
    tmpl_add(t, CKA_EXTRACTABLE, &t->yes, sizeof t->yes);
    tmpl_add(t, CKA_WRAP_WITH_TRUSTED, &t->yes, sizeof t->yes);
    tmpl_add(t, CKA_SIGN, &t->yes, sizeof t->yes);
    tmpl_add(t, CKA_VERIFY, &t->no, sizeof t->no);
    tmpl_add(t, CKA_ENCRYPT, &t->no, sizeof t->no);
    tmpl_add(t, CKA_DECRYPT, &t->no, sizeof t->no);
    tmpl_add(t, CKA_WRAP, &t->no, sizeof t->no);
    tmpl_add(t, CKA_UNWRAP, &t->no, sizeof t->no);
    tmpl_add(t, CKA_DERIVE, &t->no, sizeof t->no);
    tmpl_add(t, CKA_COPYABLE, &t->no, sizeof t->no);
    tmpl_add(t, CKA_LABEL, (void *)(uintptr_t)label, strlen(label));
    tmpl_add(t, CKA_ID, t->id, HK_CHAIN_OBJ_ID_LEN);
    tmpl_add(t, CKA_MODIFIABLE, &t->no, sizeof t->no);
}

/* C_FindObjects may return fewer objects than asked for while more match
 * (p11-kit's RPC does): call it until it returns none or out is full. */
static int find_tmpl(hk_module *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
                     CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *n, CK_RV *rv)
{
    CK_ULONG got;
    *n = 0;
    *rv = HK_FN(m, C_FindObjectsInit)(s, t, nt);
    HK_TRY(hk_p11_check(*rv, "C_FindObjectsInit"));
    do {
        got = 0;
        *rv = HK_FN(m, C_FindObjects)(s, out + *n, max - *n, &got);
        *n += *rv == CKR_OK ? got : 0;
    } while (*rv == CKR_OK && got > 0 && *n < max);
    (void)HK_FN(m, C_FindObjectsFinal)(s);
    return hk_p11_check(*rv, "C_FindObjects");
}

static int cmp_state(const void *a, const void *b)
{
    const hk_chain_state *x = a, *y = b;
    if (x->generation != y->generation)
        return x->generation < y->generation ? -1 : 1;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? -1 : 1;
    if (x->nonce != y->nonce)
        return x->nonce < y->nonce ? -1 : 1;
    return x->handle < y->handle ? -1 : x->handle > y->handle;
}

int hk_chain_list(hk_module *m, CK_SESSION_HANDLE s, const char *label, hk_chain_state **out,
                  size_t *n, CK_RV *rv)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[3] = {
        { CKA_CLASS, &cls, sizeof cls },
        { CKA_LABEL, (void *)(uintptr_t)label, strlen(label) },
        { CKA_TOKEN, &yes, sizeof yes },
    };
    /* the largest window (HK_MAX_WINDOW_PAST) + slack + look-ahead, a
     * second generation's chain, and duplicates left by racing creators */
    enum { HK_CHAIN_LIST_MAX = 2048 };
    CK_OBJECT_HANDLE *h = malloc(HK_CHAIN_LIST_MAX * sizeof *h);
    CK_ULONG found = 0, i;
    hk_chain_state *list;
    size_t kept = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (h == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    rc = find_tmpl(m, s, t, 3, h, HK_CHAIN_LIST_MAX, &found, rv);
    list = rc == HSMKEYS_OK ? calloc(found ? found : 1, sizeof *list) : NULL;
    if (list == NULL) {
        free(h);
        return rc != HSMKEYS_OK ? rc : hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    }
    for (i = 0; i < found; i++) {
        unsigned char id[32];
        CK_ATTRIBUTE a = { CKA_ID, id, sizeof id };
        CK_RV r = HK_FN(m, C_GetAttributeValue)(s, h[i], &a, 1);
        if (r == CKR_OBJECT_HANDLE_INVALID)
            continue; /* destroyed by another process meanwhile */
        if (r != CKR_OK) {
            *rv = r;
            free(list);
            free(h);
            return hk_p11_check(r, "C_GetAttributeValue(CKA_ID of a chain state)");
        }
        if (hk_chain_obj_id_decode(id, a.ulValueLen, &list[kept].generation,
                                   &list[kept].epoch, &list[kept].nonce) != HSMKEYS_OK)
            continue; /* not ours: never touched */
        list[kept++].handle = h[i];
    }
    free(h);
    qsort(list, kept, sizeof *list, cmp_state);
    *out = list;
    *n = kept;
    return HSMKEYS_OK;
}

/* The copies of state (g, x), smallest nonce first; *out malloc'd. */
static int copies_of(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t g,
                     uint64_t x, hk_chain_state **out, size_t *n, CK_RV *rv)
{
    size_t all = 0, i, k = 0;
    HK_TRY(hk_chain_list(m, s, label, out, &all, rv));
    for (i = 0; i < all; i++)
        if ((*out)[i].generation == g && (*out)[i].epoch == x)
            (*out)[k++] = (*out)[i];
    *n = k;
    return HSMKEYS_OK;
}

int hk_chain_import(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t g, uint64_t x,
                    int token, const unsigned char value[HK_CHAIN_STATE_LEN],
                    CK_OBJECT_HANDLE *out, CK_RV *rv)
{
    hk_chain_tmpl t;
    hk_chain_tmpl_init(&t, label, g, x, token);
    tmpl_add(&t, CKA_VALUE, (void *)(uintptr_t)value, HK_CHAIN_STATE_LEN);
    *rv = HK_FN(m, C_CreateObject)(s, t.a, t.n, out);
    return hk_p11_check(*rv, "C_CreateObject(chain state)");
}

int hk_chain_generate(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t g,
                      uint64_t x, CK_OBJECT_HANDLE *out, CK_RV *rv)
{
    CK_MECHANISM mech = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
    hk_chain_tmpl t;
    hk_chain_tmpl_init(&t, label, g, x, 1);
    t.value_len = HK_CHAIN_STATE_LEN;
    tmpl_add(&t, CKA_VALUE_LEN, &t.value_len, sizeof t.value_len);
    *rv = HK_FN(m, C_GenerateKey)(s, &mech, t.a, t.n, out);
    return hk_p11_check(*rv, "C_GenerateKey(chain state)");
}

int hk_chain_destroy(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_RV *rv)
{
    *rv = HK_FN(m, C_DestroyObject)(s, h);
    if (*rv == CKR_OBJECT_HANDLE_INVALID) {
        *rv = CKR_OK; /* gone already: another process settled or expired it */
        return HSMKEYS_OK;
    }
    return hk_p11_check(*rv, "C_DestroyObject(chain state)");
}

int hk_chain_erase(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t g, uint64_t x,
                   CK_OBJECT_HANDLE h, CK_RV *rv)
{
    hk_chain_state *c = NULL;
    size_t n = 0, i;
    CK_RV first;
    if (hk_chain_destroy(m, s, h, rv) == HSMKEYS_OK)
        return HSMKEYS_OK;
    first = *rv;
    if (copies_of(m, s, label, g, x, &c, &n, rv) != HSMKEYS_OK)
        return HSMKEYS_E_TOKEN;
    for (i = 0; i < n; i++)
        if (c[i].handle == h)
            break;
    free(c);
    if (i == n) {
        *rv = CKR_OK; /* another process destroyed it first */
        return HSMKEYS_OK;
    }
    *rv = first;
    return hk_fail(HSMKEYS_E_TOKEN, "chain state (%u, %llu) could not be destroyed: %s", g,
                   (unsigned long long)x, hk_ckr_name(first));
}

/* The next state's bytes: one token HMAC keyed with `from`. */
static int next_value(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE from, uint32_t g,
                      uint64_t x, unsigned char out[HK_CHAIN_STATE_LEN], CK_RV *rv)
{
    struct hk_master_prf prf = { m, s, from, CKR_OK, 0 };
    unsigned char ctx[12];
    uint64_t next = x + 1;
    int i, rc;
    for (i = 0; i < 4; i++)
        ctx[i] = (unsigned char)(g >> (8 * (3 - i)));
    for (i = 0; i < 8; i++)
        ctx[4 + i] = (unsigned char)(next >> (8 * (7 - i)));
    rc = hk_kdf_counter(hk_master_prf, &prf, HK_LABEL_CHAIN, ctx, sizeof ctx, out,
                        HK_CHAIN_STATE_LEN);
    *rv = prf.last_rv;
    return rc;
}

int hk_chain_settle(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t g, uint64_t x,
                    CK_OBJECT_HANDLE *out, CK_RV *rv)
{
    hk_chain_state *c = NULL;
    size_t n = 0, i;
    int round;
    *out = CK_INVALID_HANDLE;
    for (round = 0; round < HK_SETTLE_ROUNDS; round++) {
        HK_TRY(copies_of(m, s, label, g, x, &c, &n, rv));
        if (n <= 1) {
            if (n == 1)
                *out = c[0].handle;
            free(c);
            return HSMKEYS_OK;
        }
        /* identical copies: every settler keeps the smallest nonce; a copy
         * another settler removed first is fine (the next listing decides) */
        for (i = 1; i < n; i++)
            if (hk_chain_destroy(m, s, c[i].handle, rv) != HSMKEYS_OK) {
                /* as said */
            }
        free(c);
        c = NULL;
    }
    /* still racing (creators keep adding copies): the next cycle settles */
    HK_TRY(copies_of(m, s, label, g, x, &c, &n, rv));
    if (n >= 1)
        *out = c[0].handle;
    free(c);
    return HSMKEYS_OK;
}

int hk_chain_step(hk_module *m, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE from,
                  uint32_t g, uint64_t x, int token, CK_OBJECT_HANDLE *out, CK_RV *rv)
{
    unsigned char v[HK_CHAIN_STATE_LEN];
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV first;
    int rc = HSMKEYS_OK, settled, round;

    *out = CK_INVALID_HANDLE;
    for (round = 0; round < HK_SETTLE_ROUNDS; round++) {
        rc = next_value(m, s, from, g, x, v, rv);
        if (rc == HSMKEYS_OK)
            rc = hk_chain_import(m, s, label, g, x + 1, token, v, &h, rv);
        hsmkeys_wipe(v, sizeof v);
        if (!token) {
            *out = h;
            return rc;
        }
        /* SoftHSM2 stores a new key, then sets CKA_LOCAL and its kin in a
         * second write, and answers CKR_GENERAL_ERROR when a racing settler
         * destroyed the fresh copy in between: after a transient failure
         * the state may well be there (another process's copy, or ours) */
        if (rc != HSMKEYS_OK && (*rv == CKR_OK || !hk_p11_transient(*rv)))
            return rc;
        first = *rv;
        /* others may have made the same object meanwhile: leave one */
        if ((settled = hk_chain_settle(m, s, label, g, x + 1, out, rv)) != HSMKEYS_OK)
            return settled;
        if (*out != CK_INVALID_HANDLE)
            return HSMKEYS_OK;
        if (rc != HSMKEYS_OK) { /* nothing stored after all */
            *rv = first;
            return hk_fail(HSMKEYS_E_TOKEN, "C_CreateObject(chain state) failed: %s",
                           hk_ckr_name(first));
        }
        /* every copy, ours included, was destroyed by racing settlers */
    }
    return hk_fail(HSMKEYS_E_TOKEN, "chain state (%u, %llu) could not be settled: other "
                   "processes kept destroying it; retrying at the next cycle", g,
                   (unsigned long long)(x + 1));
}

static const char *master_label_of(const char *kind)
{
    return strcmp(kind, HK_LABEL_CACHE) == 0 ? HK_LABEL_FE_CACHE : HK_LABEL_FE_TICKET;
}

static const char *state_label_of(const char *kind)
{
    return strcmp(kind, HK_LABEL_CACHE) == 0 ? HK_LABEL_ST_CACHE : HK_LABEL_ST_TICKET;
}

int hk_chain_epoch_keys(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE master,
                        CK_OBJECT_HANDLE state, const char *kind, const char *domain,
                        uint64_t epoch, unsigned char out[HK_EPOCH_KEYS_LEN], CK_RV *rv)
{
    struct hk_master_prf pm = { m, s, master, CKR_OK, 0 };
    struct hk_master_prf ps = { m, s, state, CKR_OK, 0 };
    unsigned char part[HK_EPOCH_KEYS_LEN];
    size_t i;
    int rc;

    rc = hk_kdf_epoch_keys(hk_master_prf, &pm, master_label_of(kind), domain, epoch, out);
    *rv = pm.last_rv;
    if (rc != HSMKEYS_OK)
        return rc;
    rc = hk_kdf_epoch_keys(hk_master_prf, &ps, state_label_of(kind), domain, epoch, part);
    *rv = ps.last_rv;
    if (rc == HSMKEYS_OK)
        for (i = 0; i < HK_EPOCH_KEYS_LEN; i++)
            out[i] ^= part[i];
    else
        hsmkeys_wipe(out, HK_EPOCH_KEYS_LEN);
    hsmkeys_wipe(part, sizeof part);
    return rc;
}
