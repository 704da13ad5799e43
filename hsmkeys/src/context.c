/*
 * context.c - hsmkeys_ctx: the public API over the key maintainer and the
 * ring (layout and locks in context.h).
 *
 * Hot path (every handshake): decode the name, resolve its tag against the
 * published generations, check the window and the "may have encrypted"
 * rule (schedule.h), copy the keys out of the ring under a read lock.  It
 * never calls or waits for the token: a miss gives a full handshake (or no
 * ticket) and wakes the maintainer, which owns all token work after open.
 * With no usable key no ticket is issued (never a random local key, which
 * would silently break fleet resumption).
 *
 * Open derives the current window on the caller's thread (configuration
 * time, before the context is shared), so a server refuses to start on a
 * token that cannot derive.  The maintainer thread starts later, in the
 * process that serves: hsmkeys_start from an init-worker hook, or the first
 * handshake's call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "config.h"
#include "context.h"
#include "maintainer.h"
#include "schedule.h"

/* How long hsmkeys_refresh / hsmkeys_epoch_key wait for the maintainer. */
#define HK_TOOL_WAIT_MS 30000

int64_t hk_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void default_log(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "hsmkeys: %s\n", msg);
}

void hk_ctx_log(struct hsmkeys_ctx *ctx, int level, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_arg, level, msg);
}

static void warn_cb(void *arg, const char *msg)
{
    hsmkeys_ctx *ctx = arg;
    ctx->log(ctx->log_arg, HSMKEYS_LOG_WARNING, msg);
}

int64_t hk_ctx_now(const hsmkeys_ctx *ctx)
{
    return ctx->clock != NULL ? ctx->clock(ctx->clock_arg) : (int64_t)time(NULL);
}

void hk_name_hex(const unsigned char *name, size_t len, char *out)
{
    size_t i;
    for (i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", name[i]);
    out[2 * len] = '\0';
}

/* The first call of a process that serves starts its maintainer. */
static void ensure_maintainer(hsmkeys_ctx *ctx)
{
    if (!hk_maint_running_here(ctx))
        (void)hk_maint_start(ctx);
}

/* Generation number active in epoch e (view_lock held for reading). */
static uint32_t active_generation_locked(const hsmkeys_ctx *ctx, uint64_t e)
{
    return ctx->gens[hk_active_generation(ctx->gens, ctx->ngens, e, ctx->epoch_seconds)].generation;
}

void hk_ctx_free(hsmkeys_ctx *ctx)
{
    if (ctx->src != NULL)
        ctx->src->ops->destroy(ctx->src);
    hk_ring_free(&ctx->ring);
    hk_maint_free(ctx);
    pthread_rwlock_destroy(&ctx->view_lock);
    free(ctx->gens);
    free(ctx->domain);
    free(ctx);
}

static int copy_generations(const hk_keysource *src, hk_generation **out, size_t *n)
{
    *out = calloc(src->ngens ? src->ngens : 1, sizeof **out);
    if (*out == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    memcpy(*out, src->gens, src->ngens * sizeof **out);
    *n = src->ngens;
    return HSMKEYS_OK;
}

int hsmkeys_open(const hsmkeys_config *cfg, hsmkeys_ctx **out)
{
    hsmkeys_ctx *ctx;
    hk_token_source_opts o;
    unsigned char name[16];
    uint64_t e;
    char hex[33];
    int rc;

    if (out == NULL || cfg == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_open: NULL argument");
    *out = NULL;
    HK_TRY(hk_config_validate(cfg));
    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL || (ctx->domain = strdup(cfg->domain)) == NULL) {
        free(ctx);
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    }
    ctx->refs = 1;
    ctx->epoch_seconds = cfg->epoch_seconds;
    ctx->lifetime_seconds = cfg->lifetime_seconds;
    ctx->past = hk_window_past(cfg->lifetime_seconds, cfg->epoch_seconds);
    ctx->session_cache = cfg->session_cache;
    ctx->log = cfg->log ? cfg->log : default_log;
    ctx->log_arg = cfg->log_arg;
    ctx->clock = cfg->clock;
    ctx->clock_arg = cfg->clock_arg;
    pthread_rwlock_init(&ctx->view_lock, NULL);
    if ((rc = hk_maint_init(ctx)) != HSMKEYS_OK) {
        pthread_rwlock_destroy(&ctx->view_lock);
        free(ctx->domain);
        free(ctx);
        return rc;
    }

    memset(&o, 0, sizeof o);
    o.uri = cfg->uri;
    o.module = cfg->module;
    o.module_args = cfg->module_args;
    o.pin_source = cfg->pin_source;
    o.domain = cfg->domain;
    o.allow_extractable = cfg->allow_extractable;
    o.warn = warn_cb;
    o.warn_arg = ctx;
    if (cfg->forward_erasable)
        HK_TRY_GOTO(hk_chain_source_open(&o, &ctx->src), fail);
    else
        HK_TRY_GOTO(hk_token_source_open(&o, &ctx->src), fail);
    HK_TRY_GOTO(copy_generations(ctx->src, &ctx->gens, &ctx->ngens), fail);
    /* The whole window and the next epoch, for two generations (a rotation),
     * and both kinds; the maintainer grows it if more are needed. */
    HK_TRY_GOTO(hk_ring_init(&ctx->ring, 2 * ((size_t)ctx->past + 2) *
                             (ctx->session_cache ? 2 : 1)), fail);
    ctx->m.last_reread_ms = hk_mono_ms(); /* just read */
    ctx->token_up = 1;
    rc = hk_maint_cycle(ctx, 0);
    e = hsmkeys_current_epoch(ctx);
    if (!hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, active_generation_locked(ctx, e), e, name,
                        NULL, NULL)) {
        if (rc == HSMKEYS_OK)
            rc = hk_fail(HSMKEYS_E_TOKEN, "the key of epoch %llu could not be derived",
                         (unsigned long long)e);
        goto fail;
    }
    hk_name_hex(name, sizeof name, hex);
    hk_ctx_log(ctx, HSMKEYS_LOG_INFO, "ready: domain \"%s\", epoch %llds, lifetime %llds, "
               "decrypting %u past epochs, %zu master generation(s), %scurrent key name %s",
               ctx->domain, (long long)ctx->epoch_seconds, (long long)ctx->lifetime_seconds,
               ctx->past, ctx->ngens, cfg->forward_erasable ? "forward-erasable, " : "", hex);
    hk_registry_add(ctx);
    *out = ctx;
    return HSMKEYS_OK;
fail:
    hk_ctx_free(ctx);
    return rc;
}

void hsmkeys_ctx_up_ref(hsmkeys_ctx *ctx)
{
    if (ctx != NULL)
        __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

void hsmkeys_close(hsmkeys_ctx *ctx)
{
    if (ctx == NULL || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    hk_registry_remove(ctx);
    hk_ring_clear(&ctx->ring); /* no key outlives close, even if the thread lingers */
    if (hk_maint_stop(ctx))
        hk_ctx_free(ctx);
}

int hsmkeys_start(hsmkeys_ctx *ctx, unsigned wait_ms)
{
    int64_t deadline;
    if (ctx == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_start: NULL context");
    HK_TRY(hk_maint_start(ctx));
    deadline = hk_mono_ms() + wait_ms;
    for (;;) {
        uint64_t e = hsmkeys_current_epoch(ctx);
        uint32_t g;
        pthread_rwlock_rdlock(&ctx->view_lock);
        g = active_generation_locked(ctx, e);
        pthread_rwlock_unlock(&ctx->view_lock);
        if (hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, g, e, NULL, NULL, NULL))
            return HSMKEYS_OK;
        if (hk_mono_ms() >= deadline)
            return hk_fail(HSMKEYS_E_UNAVAILABLE, "the maintainer has no key for the current "
                           "epoch after %u ms: the token is failing or slow; no tickets until "
                           "it answers", wait_ms);
        (void)hk_maint_wait_cycle(ctx, deadline - hk_mono_ms(), 0);
    }
}

void hsmkeys_forget(hsmkeys_ctx *ctx)
{
    if (ctx != NULL)
        hk_ring_clear(&ctx->ring);
}

uint64_t hsmkeys_current_epoch(const hsmkeys_ctx *ctx)
{
    return hk_epoch_of(hk_ctx_now(ctx), ctx->epoch_seconds);
}

int64_t hsmkeys_epoch_seconds(const hsmkeys_ctx *ctx) { return ctx->epoch_seconds; }
int64_t hsmkeys_lifetime_seconds(const hsmkeys_ctx *ctx) { return ctx->lifetime_seconds; }
unsigned hsmkeys_window_past(const hsmkeys_ctx *ctx) { return ctx->past; }

int hsmkeys_encrypt_key(hsmkeys_ctx *ctx, unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN])
{
    uint64_t e;
    uint32_t g;

    ensure_maintainer(ctx);
    e = hsmkeys_current_epoch(ctx);
    pthread_rwlock_rdlock(&ctx->view_lock);
    g = active_generation_locked(ctx, e);
    pthread_rwlock_unlock(&ctx->view_lock);
    if (!hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, g, e, name, aes, hmac)) {
        HK_STAT_INC(ctx, refused_unavailable);
        hk_maint_wake(ctx);
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "no fleet key for epoch %llu yet (the token is "
                       "failing or slow): no ticket issued", (unsigned long long)e);
    }
    HK_STAT_INC(ctx, tickets_issued);
    return HSMKEYS_OK;
}

int hsmkeys_decrypt_key(hsmkeys_ctx *ctx, const unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN], int *renew)
{
    unsigned char tag[HK_TAG_LEN];
    uint64_t epoch, e_now;
    uint32_t gen, active;
    size_t i;
    int plausible;

    *renew = 0;
    ensure_maintainer(ctx);
    if (hk_name_decode(name, tag, &epoch) != HSMKEYS_OK) {
        HK_STAT_INC(ctx, refused_foreign);
        return hk_fail(HSMKEYS_E_MALFORMED, "ticket key name is not an hsmkeys v1 name");
    }
    e_now = hsmkeys_current_epoch(ctx);
    if (!hk_window_contains(e_now, ctx->past, epoch)) {
        HK_STAT_INC(ctx, refused_window);
        return hk_fail(HSMKEYS_E_EXPIRED, "ticket epoch outside the window");
    }
    pthread_rwlock_rdlock(&ctx->view_lock);
    for (i = 0; i < ctx->ngens; i++)
        if (memcmp(ctx->gens[i].tag, tag, HK_TAG_LEN) == 0)
            break;
    plausible = i < ctx->ngens &&
                hk_may_encrypt(ctx->gens, ctx->ngens, i, epoch, ctx->past, ctx->epoch_seconds);
    gen = plausible ? ctx->gens[i].generation : 0;
    active = active_generation_locked(ctx, e_now);
    pthread_rwlock_unlock(&ctx->view_lock);
    if (!plausible) {
        /* another master or domain, a destroyed generation, or one that was
         * not active anywhere near that epoch: no token call, no derivation */
        HK_STAT_INC(ctx, refused_foreign);
        return hk_fail(HSMKEYS_E_FOREIGN, "ticket of another master or domain, or of a "
                       "generation not active in its epoch");
    }
    if (!hk_ring_lookup(&ctx->ring, HK_KIND_TICKET, gen, epoch, NULL, aes, hmac)) {
        HK_STAT_INC(ctx, refused_unavailable);
        hk_maint_wake(ctx);
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "key of epoch %llu not cached yet",
                       (unsigned long long)epoch);
    }
    *renew = epoch != e_now || gen != active;
    HK_STAT_INC(ctx, tickets_resumed);
    if (*renew)
        HK_STAT_INC(ctx, tickets_renewed);
    return HSMKEYS_OK;
}

/* Keys of (kind, active generation of epoch, epoch) from the ring. */
static int cached_epoch_keys(hsmkeys_ctx *ctx, int kind, uint64_t epoch, unsigned char name[16],
                             unsigned char a[32], unsigned char b[32])
{
    uint32_t g;
    pthread_rwlock_rdlock(&ctx->view_lock);
    g = active_generation_locked(ctx, epoch);
    pthread_rwlock_unlock(&ctx->view_lock);
    return hk_ring_lookup(&ctx->ring, kind, g, epoch, name, a, b);
}

static int check_window(hsmkeys_ctx *ctx, uint64_t epoch)
{
    uint64_t e_now = hsmkeys_current_epoch(ctx);
    if (!hk_window_contains(e_now, ctx->past, epoch))
        return hk_fail(HSMKEYS_E_EXPIRED, "epoch %llu is outside the window [%llu, %llu]",
                       (unsigned long long)epoch,
                       (unsigned long long)hk_window_low(e_now, ctx->past),
                       (unsigned long long)(e_now + 1));
    return HSMKEYS_OK;
}

int hsmkeys_epoch_key(hsmkeys_ctx *ctx, uint64_t epoch, unsigned char name[HSMKEYS_KEY_NAME_LEN],
                      unsigned char aes[HSMKEYS_AES_KEY_LEN],
                      unsigned char hmac[HSMKEYS_HMAC_KEY_LEN])
{
    int rc;
    HK_TRY(check_window(ctx, epoch));
    if (cached_epoch_keys(ctx, HK_KIND_TICKET, epoch, name, aes, hmac))
        return HSMKEYS_OK;
    rc = hk_maint_wait_cycle(ctx, HK_TOOL_WAIT_MS, 0);
    if (cached_epoch_keys(ctx, HK_KIND_TICKET, epoch, name, aes, hmac))
        return HSMKEYS_OK;
    if (rc == HSMKEYS_OK)
        rc = hk_fail(HSMKEYS_E_UNAVAILABLE, "the key of epoch %llu is not cached",
                     (unsigned long long)epoch);
    return rc;
}

int hsmkeys_cache_key(hsmkeys_ctx *ctx, uint64_t epoch, unsigned char seal[HSMKEYS_CACHE_KEY_LEN],
                      unsigned char id_key[HSMKEYS_CACHE_KEY_LEN])
{
    if (!ctx->session_cache)
        return hk_fail(HSMKEYS_E_INVALID, "the session cache keys are not derived: set the "
                       "option session-cache=yes");
    HK_TRY(check_window(ctx, epoch));
    ensure_maintainer(ctx);
    if (cached_epoch_keys(ctx, HK_KIND_CACHE, epoch, NULL, seal, id_key))
        return HSMKEYS_OK;
    hk_maint_wake(ctx);
    return hk_fail(HSMKEYS_E_UNAVAILABLE, "the session cache key of epoch %llu is not cached "
                   "yet", (unsigned long long)epoch);
}

int hsmkeys_session_cache_enabled(const hsmkeys_ctx *ctx)
{
    return ctx != NULL && ctx->session_cache;
}

int hsmkeys_refresh(hsmkeys_ctx *ctx)
{
    return hk_maint_wait_cycle(ctx, HK_TOOL_WAIT_MS, 1);
}

void hsmkeys_get_stats(const hsmkeys_ctx *ctx, hsmkeys_stats *out)
{
    const uint64_t *src = (const uint64_t *)&ctx->stats;
    uint64_t *dst = (uint64_t *)out;
    size_t i;
    for (i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
