/*
 * metrics_ctx.c - a metrics snapshot of one context (hsmkeys_get_metrics)
 * and the derivation histogram the maintainer feeds.  Rendering is in
 * metrics.c.
 *
 * Data: the context's counters (hsmkeys_stats), token_up, the histogram
 * (ctx->deriv_buckets, ctx->deriv_ns, relaxed atomics: a scrape may see one
 * derivation in the buckets and not yet in the sum, never torn values), the
 * generations and the ring, read under their own locks.
 *
 * Threat: a snapshot leaves the library for whoever scrapes it: it holds no
 * key byte, only counts, epochs, the generation number and its public tag
 * (sent by clients in every key name).  Never calls or waits for the token.
 */
#include <string.h>

#include "context.h"
#include "error.h"
#include "config.h"
#include "schedule.h"

void hk_ctx_note_derivation(struct hsmkeys_ctx *ctx, uint64_t ns)
{
    __atomic_add_fetch(&ctx->deriv_buckets[hsmkeys_metrics_bucket_of(ns)], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ctx->deriv_ns, ns, __ATOMIC_RELAXED);
}

int hsmkeys_get_metrics(hsmkeys_ctx *ctx, hsmkeys_metrics *out, size_t size)
{
    hsmkeys_metrics m;
    hsmkeys_stats st;
    int64_t now;
    uint64_t e;
    uint32_t gen_of[HK_MAX_WINDOW_PAST + 1];
    size_t gi;
    unsigned i, n;

    if (ctx == NULL || out == NULL || size < sizeof(uint64_t))
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_get_metrics: NULL argument or size %zu "
                       "too small (pass sizeof(hsmkeys_metrics))", size);
    memset(&m, 0, sizeof m);
    hsmkeys_get_stats(ctx, &st);
    m.tickets_issued = st.tickets_issued;
    m.tickets_resumed = st.tickets_resumed;
    m.tickets_renewed = st.tickets_renewed;
    m.refused_foreign = st.refused_foreign;
    m.refused_window = st.refused_window;
    m.refused_unavailable = st.refused_unavailable;
    m.token_derivations = st.token_derivations;
    m.token_calls = st.token_calls;
    m.token_errors = st.token_errors;
    for (i = 0; i < HSMKEYS_METRICS_BUCKETS; i++)
        m.derivation_buckets[i] = __atomic_load_n(&ctx->deriv_buckets[i], __ATOMIC_RELAXED);
    m.derivation_nanoseconds = __atomic_load_n(&ctx->deriv_ns, __ATOMIC_RELAXED);
    m.token_up = __atomic_load_n(&ctx->token_up, __ATOMIC_RELAXED) ? 1 : 0;

    now = hk_ctx_now(ctx);
    e = hk_epoch_of(now, ctx->epoch_seconds);
    m.epoch = e;
    m.epoch_seconds = ctx->epoch_seconds;
    m.encrypt_key_age_seconds = -1;

    /* generations under view_lock, then the ring under its own lock: the
     * two are never held together */
    n = e < ctx->past ? (unsigned)e + 1 : ctx->past + 1;
    if (n > sizeof gen_of / sizeof gen_of[0])
        n = sizeof gen_of / sizeof gen_of[0];
    pthread_rwlock_rdlock(&ctx->view_lock);
    gi = hk_active_generation(ctx->gens, ctx->ngens, e, ctx->epoch_seconds);
    m.generation = ctx->gens[gi].generation;
    memcpy(m.tag, ctx->gens[gi].tag, sizeof m.tag);
    for (i = 0; i < n; i++)
        gen_of[i] = ctx->gens[hk_active_generation(ctx->gens, ctx->ngens, e - i,
                                                   ctx->epoch_seconds)].generation;
    pthread_rwlock_unlock(&ctx->view_lock);
    /* The newest epoch (at most the current) whose ticket key is cached:
     * the current one normally, an older one when the token could not
     * derive the current key (then no ticket is issued). */
    for (i = 0; i < n; i++) {
        if (hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, gen_of[i], e - i, NULL, NULL, NULL)) {
            m.encrypt_key_age_seconds = now - (int64_t)(e - i) * ctx->epoch_seconds;
            break;
        }
    }

    strncpy(m.domain, ctx->domain, sizeof m.domain - 1);

    if (size <= sizeof m) {
        memcpy(out, &m, size);
    } else {
        memcpy(out, &m, sizeof m);
        memset((char *)out + sizeof m, 0, size - sizeof m);
    }
    return HSMKEYS_OK;
}
