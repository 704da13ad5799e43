/*
 * keysource_chain.c - the forward-erasable key source (option
 * forward-erasable = yes; see keysource.h, chain.h, docs/DERIVATION.md and
 * SECURITY.md "Forward-erasable epochs").
 *
 * Holds: the PKCS#11 base (keysource_p11.h, a read-write session), the
 * states' label, and the list of state objects (generation, epoch, handle)
 * as found by the last listing, sorted.  Epoch keys of (g, e) need the
 * master of g and the state S(g, e); both stay in the token.
 *
 * advance() keeps, for each chain whose generation is a master on the
 * token, the states of [e - past - 1, e + 1] and nothing older: it walks
 * forward from the oldest state it finds (a token that was offline catches
 * up: steps below the kept range are session objects, destroyed at once),
 * makes each missing state from its predecessor (chain.c settles duplicates
 * other processes made at the same time), then destroys every state older
 * than the kept range, but only once a newer one exists, so a chain is never
 * cut.  It lists the token once per epoch (and after a reconnect), so the
 * cycles between boundaries cost no token call; after a failure it backs
 * off (1 s doubling to 30 s) within the epoch and tries again at once when
 * a new epoch begins.  derive() of a state its listing lacks lists again and,
 * if only the predecessor exists (racing settlers), makes it.
 *
 * Threat: an epoch key that outlives its window.  Once every token has
 * destroyed S(g, e), KDF(S(g, e), ...) cannot be recomputed by anyone (the
 * chain only runs forward), even with the master, the PIN and the token.
 * derive() refuses an erased epoch with no token call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chain.h"
#include "keysource_p11.h"
#include "schedule.h"

typedef struct chain_source {
    hk_p11src p;
    char label[HK_CHAIN_LABEL_MAX];
    hk_chain_state *states; /* last listing, sorted by (generation, epoch) */
    size_t nstates;
    unsigned listed_connects; /* p.connects at that listing: handles valid */
    int listed;
    int done;                 /* advance complete for done_epoch */
    uint64_t done_epoch;
    int64_t retry_at_ms, backoff_ms; /* a failed advance: 1 s doubling to 30 s */
    char last_msg[300];       /* its message, returned while backing off */
} chain_source;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int relist(chain_source *c, CK_RV *rv)
{
    hk_chain_state *list = NULL;
    size_t n = 0;
    hk_chain_state *old = c->states;
    HK_TRY(hk_chain_list(c->p.module, c->p.session, c->label, &list, &n, rv));
    /* keysource.h, fork consistency: publish the new list, then free the
     * old one (a child forked in between sees a valid list either way) */
    c->nstates = 0;
    __atomic_store_n(&c->states, list, __ATOMIC_RELEASE);
    c->nstates = n;
    free(old);
    c->listed = 1;
    c->listed_connects = c->p.connects;
    return HSMKEYS_OK;
}

/* Index range [*a, *b) of generation g in the list. */
static void chain_range(const chain_source *c, uint32_t g, size_t *a, size_t *b)
{
    size_t i = 0;
    while (i < c->nstates && c->states[i].generation < g)
        i++;
    *a = i;
    while (i < c->nstates && c->states[i].generation == g)
        i++;
    *b = i;
}

static const hk_chain_state *find_state(const chain_source *c, uint32_t g, uint64_t x)
{
    size_t a, b, i;
    chain_range(c, g, &a, &b);
    for (i = a; i < b; i++)
        if (c->states[i].epoch == x)
            return &c->states[i];
    return NULL;
}

struct advance_op {
    uint64_t e_now;
    unsigned past;
};

/* Walk generation g's chain forward to `target`, then expire below keep_lo.
 * *changed is set when an object was made or destroyed. */
static int advance_chain(chain_source *c, uint32_t g, uint64_t keep_lo, uint64_t target,
                         int *changed, CK_RV *rv)
{
    hk_module *m = c->p.module;
    CK_SESSION_HANDLE s = c->p.session;
    size_t a, b, i;
    uint64_t x;
    CK_OBJECT_HANDLE cur, next;
    int cur_temp = 0, rc = HSMKEYS_OK;

    chain_range(c, g, &a, &b);
    if (a == b)
        return HSMKEYS_OK;
    /* copies a killed or racing process left: settle each epoch to one */
    for (i = a; i + 1 < b; i++)
        if (c->states[i].epoch == c->states[i + 1].epoch) {
            CK_OBJECT_HANDLE keep;
            HK_TRY(hk_chain_settle(m, s, c->label, g, c->states[i].epoch, &keep, rv));
            *changed = 1;
        }
    if (*changed) {
        /* handles of destroyed copies are gone: walk a fresh listing */
        HK_TRY(relist(c, rv));
        chain_range(c, g, &a, &b);
        if (a == b)
            return HSMKEYS_OK;
    }
    x = c->states[a].epoch;
    cur = c->states[a].handle;
    while (x < target) {
        const hk_chain_state *have = find_state(c, g, x + 1);
        if (have != NULL) {
            next = have->handle;
        } else {
            rc = hk_chain_step(m, s, c->label, cur, g, x, x + 1 >= keep_lo, &next, rv);
            if (rc != HSMKEYS_OK)
                break;
            *changed = 1;
        }
        if (cur_temp && hk_chain_destroy(m, s, cur, rv) != HSMKEYS_OK) {
            /* a session object: it goes at logout anyway */
        }
        cur = next;
        cur_temp = have == NULL && x + 1 < keep_lo;
        x++;
    }
    if (cur_temp && hk_chain_destroy(m, s, cur, rv) != HSMKEYS_OK) {
        /* as above */
    }
    if (rc != HSMKEYS_OK)
        return rc;
    /* the chain now reaches target >= keep_lo: erase what left the window.
     * A failure does not stop the others; the next cycle tries again. */
    for (i = a; i < b; i++)
        if (c->states[i].epoch < keep_lo && c->states[i].epoch < x) {
            int r = hk_chain_erase(m, s, c->label, g, c->states[i].epoch, c->states[i].handle, rv);
            if (r != HSMKEYS_OK && rc == HSMKEYS_OK)
                rc = r;
            *changed = 1;
        }
    return rc;
}

static int op_advance(hk_p11src *t, void *arg, CK_RV *rv)
{
    chain_source *c = (chain_source *)t;
    struct advance_op *op = arg;
    uint64_t low = hk_window_low(op->e_now, op->past);
    uint64_t keep_lo = low > 0 ? low - 1 : 0;
    size_t i;
    int changed = 0, rc = HSMKEYS_OK, r;

    HK_TRY(relist(c, rv));
    for (i = 0; i < t->nmasters; i++) {
        r = advance_chain(c, t->masters[i].generation, keep_lo, op->e_now + 1, &changed, rv);
        if (r != HSMKEYS_OK && rc == HSMKEYS_OK)
            rc = r;
    }
    /* the listing derive() reads must show what was made, whatever failed */
    if (changed && (r = relist(c, rv)) != HSMKEYS_OK && rc == HSMKEYS_OK)
        rc = r;
    return rc;
}

static int chain_advance(hk_keysource *src, uint64_t e_now, unsigned past)
{
    chain_source *c = (chain_source *)src;
    struct advance_op op = { e_now, past };
    int rc;
    int64_t now = mono_ms();
    if (c->done && c->done_epoch == e_now && c->listed && c->listed_connects == c->p.connects)
        return HSMKEYS_OK;
    /* a failing token is not asked again at every cycle (a new epoch is) */
    if (!c->done && c->done_epoch == e_now && now < c->retry_at_ms)
        return hk_fail(HSMKEYS_E_TOKEN, "%s (backing off)", c->last_msg);
    rc = hk_p11src_run(&c->p, op_advance, &op);
    c->done = rc == HSMKEYS_OK;
    c->done_epoch = e_now;
    if (rc == HSMKEYS_OK) {
        c->backoff_ms = 0;
    } else {
        c->backoff_ms = c->backoff_ms == 0 ? 1000 : c->backoff_ms * 2 > 30000 ? 30000
                                                                              : c->backoff_ms * 2;
        c->retry_at_ms = now + c->backoff_ms;
        snprintf(c->last_msg, sizeof c->last_msg, "%s", hsmkeys_last_error());
    }
    return rc;
}

/* 1 if the listing shows (g, x) erased here: a newer state exists, or none. */
static int erased_here(const chain_source *c, uint32_t g, uint64_t x)
{
    size_t a, b;
    chain_range(c, g, &a, &b);
    return a == b || c->states[b - 1].epoch > x;
}

/* Without a token call: is (g, x) erased here, or not made yet? */
static int missing_state(const chain_source *c, uint32_t g, uint64_t x)
{
    size_t a, b;
    chain_range(c, g, &a, &b);
    if (a < b && c->states[b - 1].epoch < x)
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "the chain state of epoch %llu (generation %u) "
                       "is not made yet", (unsigned long long)x, g);
    return hk_fail(HSMKEYS_E_EXPIRED, "epoch %llu of generation %u is erased on this token: "
                   "its chain state was destroyed (or never held here), so its keys cannot "
                   "be computed", (unsigned long long)x, g);
}

static int op_derive(hk_p11src *t, void *arg, CK_RV *rv)
{
    chain_source *c = (chain_source *)t;
    derive_op *op = arg;
    const hk_master *mk = hk_p11src_master(t, op->generation);
    const hk_chain_state *st;
    int rc, attempt;

    if (mk == NULL)
        return hk_fail(HSMKEYS_E_NO_MASTER, "master generation %u is no longer on the token",
                       op->generation);
    if (!c->listed || c->listed_connects != t->connects)
        HK_TRY(relist(c, rv)); /* a new session: handles may differ */
    for (attempt = 0; attempt < 2; attempt++) {
        st = find_state(c, op->generation, op->epoch);
        if (st == NULL && attempt == 0 && !erased_here(c, op->generation, op->epoch)) {
            HK_TRY(relist(c, rv)); /* made meanwhile by another process? */
            st = find_state(c, op->generation, op->epoch);
            if (st == NULL && !erased_here(c, op->generation, op->epoch)) {
                /* Racing settlers (other processes, one killed mid-step) can
                 * leave the chain short of this epoch for a moment; the
                 * maintainer asks only for epochs up to e + 1, so stepping
                 * forward from the newest state held is what advance() would
                 * do (deterministic: identical to theirs).  States below the
                 * window it makes are erased by the next advance(). */
                int changed, tries;
                /* settlers agree on the copy to keep (the smallest creator
                 * nonce), but a state can still vanish under us (copies of
                 * equal nonce, an erasure racing a late step); the value is
                 * deterministic, so make it again, a few times at most */
                for (tries = 0; tries < 3 && st == NULL; tries++) {
                    changed = 0;
                    HK_TRY(advance_chain(c, op->generation, 0, op->epoch, &changed, rv));
                    HK_TRY(relist(c, rv));
                    st = find_state(c, op->generation, op->epoch);
                }
            }
        }
        if (st == NULL)
            return missing_state(c, op->generation, op->epoch);
        rc = hk_chain_epoch_keys(t->module, t->session, mk->handle, st->handle, op->label,
                                 t->domain, op->epoch, op->out, rv);
        if (rc == HSMKEYS_OK || attempt == 1 ||
            (*rv != CKR_KEY_HANDLE_INVALID && *rv != CKR_OBJECT_HANDLE_INVALID))
            return rc;
        /* another process settled our copy away: list again and retry */
        HK_TRY(relist(c, rv));
    }
    return rc;
}

static int chain_derive(hk_keysource *src, uint32_t generation, uint64_t epoch,
                        const char *label, unsigned char out[64])
{
    chain_source *c = (chain_source *)src;
    derive_op op = { generation, epoch, label, out };
    /* an erased epoch costs no token call, whatever asks for it; one not
     * made yet in our listing may have been made by another process: the
     * operation lists again */
    if (c->listed && c->listed_connects == c->p.connects &&
        find_state(c, generation, epoch) == NULL && erased_here(c, generation, epoch))
        return missing_state(c, generation, epoch);
    return hk_p11src_run(&c->p, op_derive, &op);
}

static void chain_destroy(hk_keysource *src)
{
    chain_source *c = (chain_source *)src;
    if (c == NULL)
        return;
    hk_p11src_cleanup(&c->p);
    free(c->states);
    free(c);
}

static const struct hk_keysource_ops chain_ops = {
    "token-forward-erasable", hk_p11src_reread, chain_derive, chain_advance, chain_destroy,
};

static int op_list(hk_p11src *t, void *arg, CK_RV *rv)
{
    (void)arg;
    return relist((chain_source *)t, rv);
}

int hk_chain_source_open(const hk_token_source_opts *o, hk_keysource **out)
{
    chain_source *c;
    size_t i;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    c->p.base.ops = &chain_ops;
    rc = hk_p11src_open(&c->p, o, HK_LABEL_FE_NAME);
    if (rc == HSMKEYS_OK) {
        hk_uri *u = c->p.uri;
        rc = hk_chain_label(hk_uri_object_label(u), c->label);
    }
    if (rc == HSMKEYS_OK)
        rc = hk_p11src_run(&c->p, op_list, NULL);
    if (rc == HSMKEYS_OK) {
        for (i = 0; i < c->p.nmasters; i++) {
            size_t a, b;
            chain_range(c, c->p.masters[i].generation, &a, &b);
            if (a < b)
                break;
        }
        if (i == c->p.nmasters)
            rc = hk_fail(HSMKEYS_E_NO_MASTER, "forward-erasable is on but the token holds no "
                         "chain state (label \"%s\") for any master generation: start the "
                         "chain with hsmkeys-tool create --forward-erasable (first host) or "
                         "clone the current state from a running host (hsmkeys-tool wrap "
                         "--forward-erasable), or turn the option off", c->label);
    }
    if (rc != HSMKEYS_OK) {
        chain_destroy(&c->p.base);
        return rc;
    }
    c->p.base.token_calls = 0; /* calls made after open are counted */
    *out = &c->p.base;
    return HSMKEYS_OK;
}
