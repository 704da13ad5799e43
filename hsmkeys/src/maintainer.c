/*
 * maintainer.c - the key maintainer thread (see maintainer.h).
 *
 * Owns: every call into the key source after open, the published view of
 * master generations, and the ring's contents.  Handshakes only read.
 *
 * Threats handled:
 *  - a hung or failing token: only this thread waits on it; m.lock is never
 *    held across a token call, so a handshake that wakes us and a fork()
 *    never wait for the token;
 *  - forged key names: the hot path refuses, with no token call, every
 *    (generation, epoch) outside the target set, and the target set does
 *    not depend on what clients send, so forged names cannot make this
 *    thread derive anything or evict a valid key;
 *  - keys outliving their window: every cycle wipes them first, whether or
 *    not the token answers;
 *  - fork(): prepare/parent/child handlers hold every context's locks
 *    across fork(), so a child never inherits a lock held by a thread it
 *    does not have; the child starts its own maintainer when it is asked to.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "maintainer.h"
#include "schedule.h"
#include "secret.h"

static void deadline_after(struct timespec *ts, clockid_t clock, int64_t ms);

/* Ask this process's maintainer of ctx to stop and wait up to wait_ms for
 * it, then join it.  Returns 1 if no thread runs here any more; 0 if it is
 * still in a token call: with orphan it then frees the context itself when
 * that call returns (it is detached), else it is left as it is. */
static int stop_thread(struct hsmkeys_ctx *ctx, int64_t wait_ms, int orphan)
{
    hk_maint *m = &ctx->m;
    struct timespec ts;
    pthread_t th;

    pthread_mutex_lock(&m->lock);
    if (m->started_fork != hk_fork_generation() + 1) {
        pthread_mutex_unlock(&m->lock);
        return 1; /* no thread in this process */
    }
    th = m->thread;
    m->stop = 1;
    pthread_cond_signal(&m->wake_cond);
    deadline_after(&ts, CLOCK_REALTIME, wait_ms);
    while (!m->exited)
        if (pthread_cond_timedwait(&m->done_cond, &m->lock, &ts) == ETIMEDOUT)
            break;
    if (!m->exited) {
        if (orphan) {
            m->orphan = 1; /* stuck in a token call: it frees the context itself */
            pthread_detach(th);
        }
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    __atomic_store_n(&m->started_fork, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&m->lock);
    pthread_join(th, NULL); /* its thread-local state is gone once this returns */
    return 1;
}

static pthread_mutex_t hk_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hsmkeys_ctx *hk_registry;
static unsigned hk_fork_count;
static pthread_once_t hk_atfork_once = PTHREAD_ONCE_INIT;

unsigned hk_fork_generation(void)
{
    return __atomic_load_n(&hk_fork_count, __ATOMIC_ACQUIRE);
}

/* ---- fork ----------------------------------------------------------------- */

static void on_fork_prepare(void)
{
    struct hsmkeys_ctx *c;
    pthread_mutex_lock(&hk_registry_lock);
    for (c = hk_registry; c != NULL; c = c->reg_next) {
        pthread_mutex_lock(&c->m.lock);
        pthread_rwlock_wrlock(&c->view_lock);
        pthread_rwlock_wrlock(&c->ring.lock);
    }
}

static void on_fork_parent(void)
{
    struct hsmkeys_ctx *c;
    for (c = hk_registry; c != NULL; c = c->reg_next) {
        pthread_rwlock_unlock(&c->ring.lock);
        pthread_rwlock_unlock(&c->view_lock);
        pthread_mutex_unlock(&c->m.lock);
    }
    pthread_mutex_unlock(&hk_registry_lock);
}

static void on_fork_child(void)
{
    struct hsmkeys_ctx *c;
    for (c = hk_registry; c != NULL; c = c->reg_next) {
        /* The forking thread has another thread id here, so glibc would take
         * its write unlock for a reader's: set the locks up afresh (nobody
         * else runs in the child yet). */
        pthread_rwlock_init(&c->ring.lock, NULL);
        pthread_rwlock_init(&c->view_lock, NULL);
        pthread_mutex_init(&c->m.lock, NULL);
        /* the parent's maintainer thread does not exist here */
        c->m.started_fork = 0;
        c->m.stop = c->m.exited = c->m.orphan = c->m.wake = c->m.force = 0;
        pthread_cond_init(&c->m.wake_cond, NULL);
        pthread_cond_init(&c->m.done_cond, NULL);
        hk_ring_after_fork(&c->ring); /* mlock is not inherited */
    }
    __atomic_add_fetch(&hk_fork_count, 1, __ATOMIC_RELEASE);
    pthread_mutex_init(&hk_registry_lock, NULL);
}

/* exit() with maintainers running (an nginx worker, Apache child or tool
 * that never closed its contexts): stop and join them before OpenSSL's own
 * atexit cleanup (registered earlier, so run later) frees what a token call
 * on their threads may still use, or races their thread-state teardown.  An
 * idle maintainer stops at once; one in a token call gets 200 ms and is
 * left running (exit ends it). */
static void on_exit_stop(void)
{
    struct hsmkeys_ctx *c;

    if (pthread_mutex_trylock(&hk_registry_lock) != 0)
        return; /* exit during a fork or an open: leave them be */
    for (c = hk_registry; c != NULL; c = c->reg_next)
        (void)stop_thread(c, 200, 0);
    pthread_mutex_unlock(&hk_registry_lock);
}

static void register_atfork(void)
{
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
    atexit(on_exit_stop);
}

void hk_registry_add(struct hsmkeys_ctx *ctx)
{
    pthread_once(&hk_atfork_once, register_atfork);
    pthread_mutex_lock(&hk_registry_lock);
    ctx->reg_next = hk_registry;
    hk_registry = ctx;
    pthread_mutex_unlock(&hk_registry_lock);
}

void hk_registry_remove(struct hsmkeys_ctx *ctx)
{
    struct hsmkeys_ctx **p;
    pthread_mutex_lock(&hk_registry_lock);
    for (p = &hk_registry; *p != NULL; p = &(*p)->reg_next) {
        if (*p == ctx) {
            *p = ctx->reg_next;
            break;
        }
    }
    pthread_mutex_unlock(&hk_registry_lock);
}

/* ---- state ---------------------------------------------------------------- */

int64_t hk_maint_period_ms(int64_t epoch_seconds)
{
    int64_t p = epoch_seconds * 1000 / 4;
    return p < 250 ? 250 : p > 30000 ? 30000 : p;
}

int hk_maint_init(struct hsmkeys_ctx *ctx)
{
    hk_maint *m = &ctx->m;
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake_cond, NULL);
    pthread_cond_init(&m->done_cond, NULL);
    return HSMKEYS_OK;
}

void hk_maint_free(struct hsmkeys_ctx *ctx)
{
    free(ctx->m.backoff);
    ctx->m.backoff = NULL;
    pthread_cond_destroy(&ctx->m.wake_cond);
    pthread_cond_destroy(&ctx->m.done_cond);
    pthread_mutex_destroy(&ctx->m.lock);
}

static hk_gen_backoff *backoff_of(hk_maint *m, uint32_t generation)
{
    size_t i;
    hk_gen_backoff *b;
    for (i = 0; i < m->nbackoff; i++)
        if (m->backoff[i].generation == generation)
            return &m->backoff[i];
    b = realloc(m->backoff, (m->nbackoff + 1) * sizeof *b);
    if (b == NULL)
        return NULL;
    m->backoff = b;
    b = &m->backoff[m->nbackoff++];
    memset(b, 0, sizeof *b);
    b->generation = generation;
    return b;
}

static int64_t next_backoff(int64_t cur)
{
    return cur == 0 ? HK_BACKOFF_MIN_MS : cur * 2 > HK_BACKOFF_MAX_MS ? HK_BACKOFF_MAX_MS : cur * 2;
}

/* Errors are logged at most once per HK_LOG_INTERVAL_MS. */
static int log_due(hk_maint *m, int64_t now)
{
    if (m->last_log_ms != 0 && now - m->last_log_ms < HK_LOG_INTERVAL_MS) {
        m->suppressed++;
        return 0;
    }
    return 1;
}

static const char *suppressed_note(hk_maint *m, int64_t now)
{
    const char *note = m->suppressed ? " (similar errors suppressed)" : "";
    m->last_log_ms = now;
    m->suppressed = 0;
    return note;
}

static void recovered(struct hsmkeys_ctx *ctx, const char *what)
{
    if (ctx->m.failing)
        hk_ctx_log(ctx, HSMKEYS_LOG_NOTICE, "token is back: %s", what);
    ctx->m.failing = 0;
    __atomic_store_n(&ctx->token_up, 1, __ATOMIC_RELAXED);
}

static void failed(struct hsmkeys_ctx *ctx)
{
    ctx->m.failing = 1;
    HK_STAT_INC(ctx, token_errors);
    __atomic_store_n(&ctx->token_up, 0, __ATOMIC_RELAXED);
}

static void sync_calls(struct hsmkeys_ctx *ctx)
{
    __atomic_store_n(&ctx->stats.token_calls, ctx->src->token_calls, __ATOMIC_RELAXED);
}

/* ---- view ----------------------------------------------------------------- */

static const hk_generation *find_gen(const hk_generation *g, size_t n, uint32_t generation)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (g[i].generation == generation)
            return &g[i];
    return NULL;
}

/* Log what changed between the old view and `gens`, then publish it. */
static void publish_view(struct hsmkeys_ctx *ctx, hk_generation *gens, size_t n)
{
    hk_generation *old = ctx->gens;
    size_t nold = ctx->ngens, i;
    char tag[2 * HK_TAG_LEN + 1];

    for (i = 0; i < n; i++) {
        uint64_t first, last;
        const hk_generation *o = find_gen(old, nold, gens[i].generation);
        if (o != NULL && memcmp(o->tag, gens[i].tag, HK_TAG_LEN) == 0 &&
            o->activation == gens[i].activation)
            continue;
        hk_name_hex(gens[i].tag, HK_TAG_LEN, tag);
        if (hk_active_epochs(gens, n, i, ctx->epoch_seconds, &first, &last))
            hk_ctx_log(ctx, HSMKEYS_LOG_NOTICE, "master generation %u (tag %s, activation "
                       "%lld) appeared on the token: it encrypts from epoch %llu",
                       gens[i].generation, tag, (long long)gens[i].activation,
                       (unsigned long long)first);
        else
            hk_ctx_log(ctx, HSMKEYS_LOG_WARNING, "master generation %u (tag %s) appeared on "
                       "the token but a later generation activates at the same epoch "
                       "boundary: it never encrypts", gens[i].generation, tag);
    }
    for (i = 0; i < nold; i++)
        if (find_gen(gens, n, old[i].generation) == NULL)
            hk_ctx_log(ctx, HSMKEYS_LOG_NOTICE, "master generation %u left the token: its "
                       "keys are wiped and its tickets get full handshakes",
                       old[i].generation);
    pthread_rwlock_wrlock(&ctx->view_lock);
    ctx->gens = gens;
    ctx->ngens = n;
    pthread_rwlock_unlock(&ctx->view_lock);
    free(old);
}

static void reread(struct hsmkeys_ctx *ctx, int64_t now)
{
    hk_maint *m = &ctx->m;
    hk_generation *gens = NULL;
    size_t n = 0;
    int rc;

    rc = ctx->src->ops->reread(ctx->src, &gens, &n);
    sync_calls(ctx);
    if (rc != HSMKEYS_OK) {
        failed(ctx);
        m->src_backoff_ms = next_backoff(m->src_backoff_ms);
        m->src_retry_at_ms = now + m->src_backoff_ms;
        if (log_due(m, now))
            hk_ctx_log(ctx, HSMKEYS_LOG_ERR, "cannot re-read the master generations: %s; "
                       "serving from cached keys, retrying in %lld ms%s", hsmkeys_last_error(),
                       (long long)m->src_backoff_ms, suppressed_note(m, now));
        return;
    }
    m->src_backoff_ms = 0;
    m->src_retry_at_ms = 0;
    m->last_reread_ms = now;
    recovered(ctx, "re-read the master generations");
    publish_view(ctx, gens, n);
}

/* ---- derivation ----------------------------------------------------------- */

static const char *const kind_label[2] = { HK_LABEL_TICKET, HK_LABEL_CACHE };

/* Derive (kind, gens[i], x) into the ring, unless that generation backs off.
 * Returns HSMKEYS_OK, or the failure (already logged, rate-limited). */
static int derive_one(struct hsmkeys_ctx *ctx, const hk_generation *g, int kind, uint64_t x,
                      int64_t now)
{
    hk_maint *m = &ctx->m;
    unsigned char keys[HK_EPOCH_KEYS_LEN], name[16];
    hk_gen_backoff *b = backoff_of(m, g->generation);
    struct timespec t0, t1;
    int rc;

    if (b != NULL && now < b->retry_at_ms) {
        /* handshakes that miss this key cannot make us try sooner */
        if (m->quiet_until_ms == 0 || b->retry_at_ms < m->quiet_until_ms)
            m->quiet_until_ms = b->retry_at_ms;
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "generation %u backs off for %lld ms",
                       g->generation, (long long)(b->retry_at_ms - now));
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = ctx->src->ops->derive(ctx->src, g->generation, x, kind_label[kind], keys);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hk_burn_stack(); /* the derivation's frames below us held key bytes */
    sync_calls(ctx);
    if (rc == HSMKEYS_E_EXPIRED) {
        /* forward-erasable: that epoch's state is erased here (no token
         * call was made); not a failure of the generation, no backoff.
         * Normal for past epochs (a host that joined from a clone); for the
         * current or next epoch it means no tickets: say so. */
        hsmkeys_wipe(keys, sizeof keys);
        if (x >= hk_epoch_of(hk_ctx_now(ctx), ctx->epoch_seconds) && log_due(m, now))
            hk_ctx_log(ctx, HSMKEYS_LOG_ERR, "cannot make the keys of epoch %llu (generation "
                       "%u): %s; clone the chain state to this token (hsmkeys-tool wrap "
                       "--forward-erasable)%s", (unsigned long long)x, g->generation,
                       hsmkeys_last_error(), suppressed_note(m, now));
        return rc;
    }
    if (rc == HSMKEYS_E_UNAVAILABLE) {
        /* forward-erasable on a shared token: the chain state of that epoch
         * is not in this process's view yet (other processes are making or
         * settling it).  Not a failure of the token: no backoff; the next
         * cycle (a quarter epoch at most, and the key is needed only an
         * epoch later) tries again. */
        hsmkeys_wipe(keys, sizeof keys);
        if (log_due(m, now))
            hk_ctx_log(ctx, HSMKEYS_LOG_NOTICE, "the keys of epoch %llu (generation %u) wait "
                       "for their chain state: %s; trying again at the next cycle%s",
                       (unsigned long long)x, g->generation, hsmkeys_last_error(),
                       suppressed_note(m, now));
        return rc;
    }
    if (rc == HSMKEYS_E_NO_MASTER) {
        /* gone since the last re-read: the next cycle drops it, no backoff */
        m->last_reread_ms = 0;
        hsmkeys_wipe(keys, sizeof keys);
        return rc;
    }
    if (rc != HSMKEYS_OK) {
        failed(ctx);
        if (b != NULL) {
            b->backoff_ms = next_backoff(b->backoff_ms);
            b->retry_at_ms = now + b->backoff_ms;
        }
        if (log_due(m, now))
            hk_ctx_log(ctx, HSMKEYS_LOG_ERR, "cannot derive the %s of epoch %llu (generation "
                       "%u): %s; serving from cached keys, retrying in %lld ms%s",
                       kind == HK_KIND_TICKET ? "ticket key" : "session cache key",
                       (unsigned long long)x, g->generation, hsmkeys_last_error(),
                       (long long)(b != NULL ? b->backoff_ms : HK_BACKOFF_MIN_MS),
                       suppressed_note(m, now));
        hsmkeys_wipe(keys, sizeof keys);
        return rc;
    }
    if (b != NULL) {
        b->backoff_ms = 0;
        b->retry_at_ms = 0;
    }
    recovered(ctx, "derived a key");
    hk_name_encode(g->tag, x, name);
    hk_ring_insert(&ctx->ring, kind, g->generation, x, name, keys);
    hsmkeys_wipe(keys, sizeof keys);
    HK_STAT_INC(ctx, token_derivations);
    hk_ctx_note_derivation(ctx, (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
                                (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec);
    return HSMKEYS_OK;
}

/* Forward-erasable sources: extend the chains to e + 1 and erase behind the
 * window (no-op for the static source; cheap once done for this epoch). */
static void advance(struct hsmkeys_ctx *ctx, uint64_t e, int64_t now)
{
    hk_maint *m = &ctx->m;
    int rc;
    if (ctx->src->ops->advance == NULL)
        return;
    rc = ctx->src->ops->advance(ctx->src, e, ctx->past);
    sync_calls(ctx);
    if (rc == HSMKEYS_OK)
        return;
    failed(ctx);
    if (log_due(m, now))
        hk_ctx_log(ctx, HSMKEYS_LOG_ERR, "cannot advance the forward-erasable chain to epoch "
                   "%llu: %s; retrying later%s", (unsigned long long)(e + 1),
                   hsmkeys_last_error(), suppressed_note(m, now));
}

/* Number of (g, x) pairs in the target set, times the kinds. */
static size_t target_count(struct hsmkeys_ctx *ctx, uint64_t e)
{
    uint64_t x, lo = hk_window_low(e, ctx->past);
    size_t i, n = 0;
    for (x = lo; x <= e + 1; x++)
        for (i = 0; i < ctx->ngens; i++)
            n += (size_t)hk_may_encrypt(ctx->gens, ctx->ngens, i, x, ctx->past,
                                        ctx->epoch_seconds);
    return n * (ctx->session_cache ? 2 : 1);
}

/* Derive every missing key of the target set: the current epoch first, then
 * the next, then the past ones, newest first. */
static int derive_targets(struct hsmkeys_ctx *ctx, uint64_t e, int64_t now)
{
    uint64_t lo = hk_window_low(e, ctx->past), order[3], x;
    size_t i, k, need;
    int kind, rc, first_rc = HSMKEYS_OK;

    need = target_count(ctx, e);
    if (need > ctx->ring.n)
        if (hk_ring_grow(&ctx->ring, need + 2) != HSMKEYS_OK) { /* the ring evicts the oldest */ }
    order[0] = e;
    order[1] = e + 1;
    for (k = 0; k < 2 + (size_t)(e - lo); k++) {
        x = k < 2 ? order[k] : e - (k - 1);
        for (i = 0; i < ctx->ngens; i++) {
            if (!hk_may_encrypt(ctx->gens, ctx->ngens, i, x, ctx->past, ctx->epoch_seconds))
                continue;
            for (kind = 0; kind <= (ctx->session_cache ? 1 : 0); kind++) {
                if (hk_ring_lookup(&ctx->ring, kind, ctx->gens[i].generation, x, NULL, NULL,
                                   NULL))
                    continue;
                rc = derive_one(ctx, &ctx->gens[i], kind, x, now);
                if (rc != HSMKEYS_OK && first_rc == HSMKEYS_OK)
                    first_rc = rc;
            }
        }
    }
    return first_rc;
}

static int is_cached(struct hsmkeys_ctx *ctx, uint64_t x)
{
    size_t g = hk_active_generation(ctx->gens, ctx->ngens, x, ctx->epoch_seconds);
    if (ctx->ngens == 0)
        return 0;
    return hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, ctx->gens[g].generation, x, NULL, NULL,
                          NULL);
}

static void note_active(struct hsmkeys_ctx *ctx, uint64_t e)
{
    hk_maint *m = &ctx->m;
    uint32_t g;
    if (ctx->ngens == 0)
        return;
    g = ctx->gens[hk_active_generation(ctx->gens, ctx->ngens, e, ctx->epoch_seconds)].generation;
    if (m->have_last_active && g != m->last_active)
        hk_ctx_log(ctx, HSMKEYS_LOG_NOTICE, "master generation %u encrypts from epoch %llu "
                   "(was generation %u)", g, (unsigned long long)e, m->last_active);
    m->last_active = g;
    m->have_last_active = 1;
}

int hk_maint_cycle(struct hsmkeys_ctx *ctx, int force_reread)
{
    hk_maint *m = &ctx->m;
    int64_t now = hk_mono_ms();
    uint64_t e = hk_epoch_of(hk_ctx_now(ctx), ctx->epoch_seconds);
    uint32_t *keep;
    size_t i;
    int rc;

    if ((force_reread || now - m->last_reread_ms >= hk_maint_period_ms(ctx->epoch_seconds)) &&
        now >= m->src_retry_at_ms)
        reread(ctx, now);

    /* Expire first: this needs no token, so it happens during outages too. */
    keep = calloc(ctx->ngens ? ctx->ngens : 1, sizeof *keep);
    if (keep != NULL) {
        for (i = 0; i < ctx->ngens; i++)
            keep[i] = ctx->gens[i].generation;
        hk_ring_expire(&ctx->ring, hk_window_low(e, ctx->past), e + 1, keep, ctx->ngens);
        free(keep);
    } else {
        hk_ring_expire(&ctx->ring, hk_window_low(e, ctx->past), e + 1, NULL, 0);
    }
    note_active(ctx, e);
    advance(ctx, e, now);
    m->quiet_until_ms = 0;
    rc = derive_targets(ctx, e, now);
    if (is_cached(ctx, e) && is_cached(ctx, e + 1))
        return HSMKEYS_OK;
    if (rc == HSMKEYS_OK)
        rc = hk_fail(HSMKEYS_E_UNAVAILABLE, "the keys of epochs %llu and %llu are not cached",
                     (unsigned long long)e, (unsigned long long)(e + 1));
    return rc;
}

/* *ts = now on `clock` + ms, for the timed waits (done_cond waits on the
 * realtime clock, wake_cond on the monotonic one). */
static void deadline_after(struct timespec *ts, clockid_t clock, int64_t ms)
{
    clock_gettime(clock, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Milliseconds until the next cycle is due. */
static int64_t sleep_ms(struct hsmkeys_ctx *ctx, int64_t now)
{
    hk_maint *m = &ctx->m;
    int64_t t = hk_ctx_now(ctx), d = hk_maint_period_ms(ctx->epoch_seconds), until;
    uint64_t e = hk_epoch_of(t, ctx->epoch_seconds);
    size_t i;

    /* just after the next epoch boundary: expire and derive the new e + 1 */
    until = ((int64_t)(e + 1) * ctx->epoch_seconds - t) * 1000 + 20;
    if (until > 0 && until < d)
        d = until;
    for (i = 0; i < m->nbackoff; i++)
        if (m->backoff[i].retry_at_ms > now && m->backoff[i].retry_at_ms - now < d)
            d = m->backoff[i].retry_at_ms - now;
    if (m->src_retry_at_ms > now && m->src_retry_at_ms - now < d)
        d = m->src_retry_at_ms - now;
    return d < 10 ? 10 : d;
}

static void *maint_main(void *arg)
{
    struct hsmkeys_ctx *ctx = arg;
    hk_maint *m = &ctx->m;
    struct timespec ts;
    int64_t d;
    int orphan, rc;

    pthread_setname_np(pthread_self(), "hsmkeys-maint"); /* ps -L, top -H, gdb */
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        int forced = m->force == 2; /* hsmkeys_refresh: re-read the token too */
        __atomic_store_n(&m->wake, 0, __ATOMIC_RELAXED);
        m->force = 0;
        m->cycles_begun++;
        pthread_mutex_unlock(&m->lock);

        rc = hk_maint_cycle(ctx, forced);

        pthread_mutex_lock(&m->lock);
        m->last_rc = rc;
        snprintf(m->last_msg, sizeof m->last_msg, "%s", rc == HSMKEYS_OK ? "" : hsmkeys_last_error());
        m->cycles_done++;
        pthread_cond_broadcast(&m->done_cond);
        if (m->stop || m->force || (m->wake && hk_mono_ms() >= m->quiet_until_ms))
            continue;
        d = sleep_ms(ctx, hk_mono_ms());
        deadline_after(&ts, CLOCK_MONOTONIC, d);
        /* A wake while every missing key backs off is kept for later: a
         * flood of handshakes missing a key costs no cycle and no call. */
        while (!m->stop && !m->force && !(m->wake && hk_mono_ms() >= m->quiet_until_ms) &&
               pthread_cond_timedwait(&m->wake_cond, &m->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&m->lock);
    /* Free this thread's OpenSSL state (error queue, DRBGs: the module's
     * calls made them) now, not in a thread-key destructor that could run
     * after exit() started OpenSSL's global cleanup. */
    OPENSSL_thread_stop();
    pthread_mutex_lock(&m->lock);
    m->exited = 1;
    orphan = m->orphan;
    pthread_cond_broadcast(&m->done_cond);
    pthread_mutex_unlock(&m->lock);
    if (orphan)
        hk_ctx_free(ctx); /* hsmkeys_close gave up waiting for us: ours to free */
    return NULL;
}

int hk_maint_running_here(struct hsmkeys_ctx *ctx)
{
    return __atomic_load_n(&ctx->m.started_fork, __ATOMIC_ACQUIRE) == hk_fork_generation() + 1;
}

int hk_maint_start(struct hsmkeys_ctx *ctx)
{
    hk_maint *m = &ctx->m;
    pthread_attr_t attr;
    sigset_t all, old;
    int rc = HSMKEYS_OK, err;

    pthread_mutex_lock(&m->lock);
    if (m->started_fork != hk_fork_generation() + 1) {
        m->stop = m->exited = m->orphan = 0;
        __atomic_store_n(&m->wake, 0, __ATOMIC_RELAXED);
        /* the condition variable uses the monotonic clock (timedwait above) */
        {
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_destroy(&m->wake_cond);
            pthread_cond_init(&m->wake_cond, &ca);
            pthread_condattr_destroy(&ca);
        }
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        /* The thread inherits the caller's signal mask: block everything so
         * that the server's signals (nginx's QUIT/TERM/HUP, Apache's) are
         * delivered to its own threads, whoever starts us (a lazy start
         * comes from a handshake). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        err = pthread_create(&m->thread, &attr, maint_main, ctx);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err != 0)
            rc = hk_fail(HSMKEYS_E_NOMEM, "cannot start the key maintainer thread: %s",
                         strerror(err));
        else
            __atomic_store_n(&m->started_fork, hk_fork_generation() + 1, __ATOMIC_RELEASE);
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void hk_maint_wake(struct hsmkeys_ctx *ctx)
{
    hk_maint *m = &ctx->m;
    if (!hk_maint_running_here(ctx)) {
        (void)hk_maint_start(ctx);
        return;
    }
    if (__atomic_load_n(&m->wake, __ATOMIC_RELAXED))
        return; /* already asked: one wake per cycle, whatever the handshake rate */
    pthread_mutex_lock(&m->lock);
    __atomic_store_n(&m->wake, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&m->wake_cond);
    pthread_mutex_unlock(&m->lock);
}

int hk_maint_wait_cycle(struct hsmkeys_ctx *ctx, int64_t timeout_ms, int reread)
{
    hk_maint *m = &ctx->m;
    struct timespec ts;
    uint64_t target;
    int rc;

    HK_TRY(hk_maint_start(ctx));
    deadline_after(&ts, CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&m->lock);
    target = m->cycles_begun + 1; /* a cycle that starts after this call */
    m->force = reread ? 2 : 1;
    pthread_cond_signal(&m->wake_cond);
    while (m->cycles_done < target && !m->exited)
        if (pthread_cond_timedwait(&m->done_cond, &m->lock, &ts) == ETIMEDOUT)
            break;
    if (m->cycles_done >= target) {
        rc = m->last_rc;
        if (rc != HSMKEYS_OK)
            (void)hk_fail(rc, "%s", m->last_msg);
    } else {
        rc = hk_fail(HSMKEYS_E_UNAVAILABLE, "the key maintainer did not finish a cycle in "
                     "%lld ms (is the token hanging?)", (long long)timeout_ms);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int hk_maint_stop(struct hsmkeys_ctx *ctx)
{
    return stop_thread(ctx, 2000, 1);
}
