/*
 * context.c - hsmkeys_ctx: the public API over the key source and the ring.
 *
 * Hot path (every handshake): decode the name, check the window, copy the
 * keys out of the ring under a read lock.  Zero token calls once the
 * current and next epochs are cached; the first handshake of an epoch
 * derives the following one (look-ahead) if no other thread is already
 * deriving (trylock), so handshakes never queue behind the token.
 *
 * Failure: a failing token is retried with exponential backoff (1 s to
 * 30 s, on the monotonic clock), never once per handshake; a handshake
 * waits at most 100 ms for a token call another thread has under way; cached keys keep working; with no
 * usable key no ticket is issued (never a random local key, which would
 * silently break fleet resumption).  Errors are logged at most once per
 * 10 s with a count of what was suppressed.
 *
 * Fork: a pthread_atfork child handler bumps a counter; the next call in
 * the child re-locks the ring's pages (mlock is not inherited) and resets
 * the backoff; the source reconnects by itself before it next derives.
 * Forking while another thread derives is not supported (servers fork
 * from one thread).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include "config.h"
#include "keysource.h"
#include "p11.h" /* hk_p11_thread_calls: exact token-call statistics */
#include "ring.h"
#include "schedule.h"

#define HK_BACKOFF_MIN_MS   1000
#define HK_BACKOFF_MAX_MS  30000
#define HK_LOG_INTERVAL_MS 10000

struct hsmkeys_ctx {
    unsigned refs;
    char *domain;
    int64_t epoch_seconds, lifetime_seconds;
    unsigned past;
    hsmkeys_log_fn log;
    void *log_arg;
    hsmkeys_clock_fn clock;
    void *clock_arg;

    hk_keysource *src;
    hk_ring ring;
    pthread_mutex_t derive_lock;

    int64_t retry_at_ms;      /* no token call before this (monotonic ms) */
    int64_t backoff_ms;
    uint64_t lookahead_epoch; /* current+next cached for this epoch (+1; 0 = none) */
    unsigned fork_seen;
    int64_t last_log_ms;
    unsigned suppressed;

    hsmkeys_stats stats;
};

static unsigned hk_fork_count;
static pthread_once_t hk_atfork_once = PTHREAD_ONCE_INIT;

static void hk_on_fork_child(void) { __atomic_add_fetch(&hk_fork_count, 1, __ATOMIC_RELAXED); }
static void hk_register_atfork(void) { pthread_atfork(NULL, NULL, hk_on_fork_child); }

#define STAT_INC(ctx, field) __atomic_add_fetch(&(ctx)->stats.field, 1, __ATOMIC_RELAXED)

static int64_t mono_ms(void)
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

static void ctx_log(hsmkeys_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ctx_log(hsmkeys_ctx *ctx, int level, const char *fmt, ...)
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

static int64_t ctx_now(const hsmkeys_ctx *ctx)
{
    return ctx->clock != NULL ? ctx->clock(ctx->clock_arg) : (int64_t)time(NULL);
}

static void name_hex(const unsigned char name[16], char out[33])
{
    int i;
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", name[i]);
}

/* Index of the master generation that encrypts in epoch e. */
static size_t active_gen(const hsmkeys_ctx *ctx, uint64_t e)
{
    return hk_active_generation(ctx->src->gens, ctx->src->ngens, e, ctx->epoch_seconds);
}

static void check_fork(hsmkeys_ctx *ctx)
{
    unsigned now = __atomic_load_n(&hk_fork_count, __ATOMIC_RELAXED);
    if (__atomic_load_n(&ctx->fork_seen, __ATOMIC_ACQUIRE) == now)
        return;
    pthread_mutex_lock(&ctx->derive_lock);
    if (ctx->fork_seen != now) {
        hk_ring_after_fork(&ctx->ring);
        ctx->retry_at_ms = 0;
        ctx->backoff_ms = 0;
        __atomic_store_n(&ctx->fork_seen, now, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ctx->derive_lock);
}

/* With derive_lock held.  Derive (gen, epoch) into the ring unless the
 * token is in backoff. */
static int derive_locked(hsmkeys_ctx *ctx, size_t gen, uint64_t epoch)
{
    unsigned char keys[HK_EPOCH_KEYS_LEN], name[16];
    int64_t now = mono_ms();
    uint64_t calls_before = hk_p11_thread_calls;
    int rc;

    if (now < ctx->retry_at_ms)
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "the token is failing; next attempt in %lld ms",
                       (long long)(ctx->retry_at_ms - now));
    /* PKCS#11 modules built on OpenSSL (SoftHSM2) leave entries on this
     * thread's OpenSSL error queue, which the server's next SSL call would
     * take for its own failure: drop whatever the token call added. */
    ERR_set_mark();
    rc = ctx->src->ops->derive(ctx->src, gen, epoch, keys);
    ERR_pop_to_mark();
    hk_burn_stack(); /* the derivation's frames below us held key bytes */
    __atomic_add_fetch(&ctx->stats.token_calls, hk_p11_thread_calls - calls_before,
                       __ATOMIC_RELAXED);
    if (rc != HSMKEYS_OK) {
        STAT_INC(ctx, token_errors);
        ctx->backoff_ms = ctx->backoff_ms == 0 ? HK_BACKOFF_MIN_MS
                        : ctx->backoff_ms * 2 > HK_BACKOFF_MAX_MS ? HK_BACKOFF_MAX_MS
                        : ctx->backoff_ms * 2;
        ctx->retry_at_ms = now + ctx->backoff_ms;
        if (now - ctx->last_log_ms >= HK_LOG_INTERVAL_MS || ctx->last_log_ms == 0) {
            ctx_log(ctx, HSMKEYS_LOG_ERR, "cannot derive the key of epoch %llu (generation %u): "
                    "%s; serving from cached keys, retrying in %lld ms%s",
                    (unsigned long long)epoch, ctx->src->gens[gen].generation,
                    hsmkeys_last_error(), (long long)ctx->backoff_ms,
                    ctx->suppressed ? " (similar errors suppressed)" : "");
            ctx->last_log_ms = now;
            ctx->suppressed = 0;
        } else {
            ctx->suppressed++;
        }
        hsmkeys_wipe(keys, sizeof keys);
        return rc;
    }
    if (ctx->backoff_ms != 0) {
        ctx_log(ctx, HSMKEYS_LOG_NOTICE, "token is back: derived the key of epoch %llu",
                (unsigned long long)epoch);
        ctx->backoff_ms = 0;
        ctx->retry_at_ms = 0;
    }
    hk_name_encode(ctx->src->gens[gen].tag, epoch, name);
    hk_ring_insert(&ctx->ring, (uint32_t)gen, epoch, name, keys);
    hsmkeys_wipe(keys, sizeof keys);
    STAT_INC(ctx, token_derivations);
    return HSMKEYS_OK;
}

/* Take the derive lock; on the hot path (blocking = 0) wait at most
 * HK_HOT_WAIT_MS: another thread's derivation normally takes ~0.1 ms, but a
 * hung HSM must not hang every handshake behind it. */
#define HK_HOT_WAIT_MS 100
static int lock_derive(hsmkeys_ctx *ctx, int blocking)
{
    struct timespec deadline;
    if (blocking)
        return pthread_mutex_lock(&ctx->derive_lock) == 0;
    if (pthread_mutex_trylock(&ctx->derive_lock) == 0)
        return 1;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += HK_HOT_WAIT_MS * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&ctx->derive_lock, &deadline) == 0;
}

/* Keys of (gen, epoch): from the ring, else derived now. */
static int get_keys(hsmkeys_ctx *ctx, size_t gen, uint64_t epoch, unsigned char name[16],
                    unsigned char aes[32], unsigned char hmac[32], int blocking)
{
    int rc;
    if (hk_ring_lookup(&ctx->ring, (uint32_t)gen, epoch, name, aes, hmac))
        return HSMKEYS_OK;
    if (!lock_derive(ctx, blocking))
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "key of epoch %llu not cached and the token "
                       "has been busy for %d ms", (unsigned long long)epoch, HK_HOT_WAIT_MS);
    if (!hk_ring_lookup(&ctx->ring, (uint32_t)gen, epoch, NULL, NULL, NULL)) {
        rc = derive_locked(ctx, gen, epoch);
        if (rc != HSMKEYS_OK) {
            pthread_mutex_unlock(&ctx->derive_lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&ctx->derive_lock);
    if (!hk_ring_lookup(&ctx->ring, (uint32_t)gen, epoch, name, aes, hmac))
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "key of epoch %llu evicted while in use",
                       (unsigned long long)epoch);
    return HSMKEYS_OK;
}

/* Make sure the current and next epochs are cached and old ones wiped.
 * blocking = 0: skip if another thread is deriving (hot path). */
static int lookahead(hsmkeys_ctx *ctx, uint64_t e_now, int blocking)
{
    uint64_t targets[2] = { e_now, e_now + 1 };
    int i, rc = HSMKEYS_OK;

    if (__atomic_load_n(&ctx->lookahead_epoch, __ATOMIC_ACQUIRE) == e_now + 1)
        return HSMKEYS_OK;
    if (blocking)
        pthread_mutex_lock(&ctx->derive_lock);
    else if (pthread_mutex_trylock(&ctx->derive_lock) != 0)
        return HSMKEYS_OK;
    for (i = 0; i < 2 && rc == HSMKEYS_OK; i++) {
        size_t g = active_gen(ctx, targets[i]);
        if (!hk_ring_lookup(&ctx->ring, (uint32_t)g, targets[i], NULL, NULL, NULL))
            rc = derive_locked(ctx, g, targets[i]);
    }
    if (rc == HSMKEYS_OK) {
        hk_ring_expire(&ctx->ring, hk_window_low(e_now, ctx->past));
        __atomic_store_n(&ctx->lookahead_epoch, e_now + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ctx->derive_lock);
    return rc;
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
    pthread_once(&hk_atfork_once, hk_register_atfork);
    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL || (ctx->domain = strdup(cfg->domain)) == NULL) {
        free(ctx);
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    }
    ctx->refs = 1;
    ctx->epoch_seconds = cfg->epoch_seconds;
    ctx->lifetime_seconds = cfg->lifetime_seconds;
    ctx->past = hk_window_past(cfg->lifetime_seconds, cfg->epoch_seconds);
    ctx->log = cfg->log ? cfg->log : default_log;
    ctx->log_arg = cfg->log_arg;
    ctx->clock = cfg->clock;
    ctx->clock_arg = cfg->clock_arg;
    ctx->fork_seen = __atomic_load_n(&hk_fork_count, __ATOMIC_RELAXED);
    pthread_mutex_init(&ctx->derive_lock, NULL);

    memset(&o, 0, sizeof o);
    o.uri = cfg->uri;
    o.module = cfg->module;
    o.module_args = cfg->module_args;
    o.pin_source = cfg->pin_source;
    o.domain = cfg->domain;
    o.allow_extractable = cfg->allow_extractable;
    o.warn = warn_cb;
    o.warn_arg = ctx;
    ERR_set_mark(); /* see derive_locked() */
    rc = hk_token_source_open(&o, &ctx->src);
    ERR_pop_to_mark();
    if (rc != HSMKEYS_OK)
        goto fail;
    /* Room for the whole window, the look-ahead, and a second generation
     * during a rotation. */
    HK_TRY_GOTO(hk_ring_init(&ctx->ring, 2 * ((size_t)ctx->past + 3)), fail);
    e = hsmkeys_current_epoch(ctx);
    HK_TRY_GOTO(lookahead(ctx, e, 1), fail);
    if (!hk_ring_lookup(&ctx->ring, (uint32_t)active_gen(ctx, e), e, name, NULL, NULL))
        memset(name, 0, sizeof name); /* the clock moved on; only the log line is affected */
    name_hex(name, hex);
    ctx_log(ctx, HSMKEYS_LOG_INFO, "ready: domain \"%s\", epoch %llds, lifetime %llds, "
            "decrypting %u past epochs, %zu master generation(s), current key name %s",
            ctx->domain, (long long)ctx->epoch_seconds, (long long)ctx->lifetime_seconds,
            ctx->past, ctx->src->ngens, hex);
    *out = ctx;
    return HSMKEYS_OK;
fail:
    ctx->refs = 1;
    hsmkeys_close(ctx);
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
    hk_ring_free(&ctx->ring);
    ERR_set_mark(); /* see derive_locked() */
    if (ctx->src != NULL)
        ctx->src->ops->destroy(ctx->src);
    ERR_pop_to_mark();
    pthread_mutex_destroy(&ctx->derive_lock);
    free(ctx->domain);
    free(ctx);
}

uint64_t hsmkeys_current_epoch(const hsmkeys_ctx *ctx)
{
    return hk_epoch_of(ctx_now(ctx), ctx->epoch_seconds);
}

int64_t hsmkeys_epoch_seconds(const hsmkeys_ctx *ctx) { return ctx->epoch_seconds; }
int64_t hsmkeys_lifetime_seconds(const hsmkeys_ctx *ctx) { return ctx->lifetime_seconds; }
unsigned hsmkeys_window_past(const hsmkeys_ctx *ctx) { return ctx->past; }

int hsmkeys_encrypt_key(hsmkeys_ctx *ctx, unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN])
{
    uint64_t e;
    size_t g;
    int rc;

    check_fork(ctx);
    e = hsmkeys_current_epoch(ctx);
    g = active_gen(ctx, e);
    rc = get_keys(ctx, g, e, name, aes, hmac, 0);
    if (rc != HSMKEYS_OK) {
        STAT_INC(ctx, refused_unavailable);
        return hk_fail(HSMKEYS_E_UNAVAILABLE, "no fleet key for epoch %llu (the token is "
                       "failing): no ticket issued", (unsigned long long)e);
    }
    STAT_INC(ctx, tickets_issued);
    (void)lookahead(ctx, e, 0);
    return HSMKEYS_OK;
}

int hsmkeys_decrypt_key(hsmkeys_ctx *ctx, const unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN], int *renew)
{
    unsigned char tag[HK_TAG_LEN];
    uint64_t epoch, e_now;
    size_t g;

    *renew = 0;
    check_fork(ctx);
    if (hk_name_decode(name, tag, &epoch) != HSMKEYS_OK) {
        STAT_INC(ctx, refused_foreign);
        return hk_fail(HSMKEYS_E_MALFORMED, "ticket key name is not an hsmkeys v1 name");
    }
    for (g = 0; g < ctx->src->ngens; g++)
        if (memcmp(ctx->src->gens[g].tag, tag, HK_TAG_LEN) == 0)
            break;
    if (g == ctx->src->ngens) {
        STAT_INC(ctx, refused_foreign);
        return hk_fail(HSMKEYS_E_FOREIGN, "ticket of another master or domain");
    }
    e_now = hsmkeys_current_epoch(ctx);
    if (!hk_window_contains(e_now, ctx->past, epoch)) {
        STAT_INC(ctx, refused_window);
        return hk_fail(HSMKEYS_E_EXPIRED, "ticket epoch outside the window");
    }
    if (get_keys(ctx, g, epoch, NULL, aes, hmac, 0) != HSMKEYS_OK) {
        STAT_INC(ctx, refused_unavailable);
        return HSMKEYS_E_UNAVAILABLE;
    }
    *renew = epoch != e_now ||
             g != active_gen(ctx, e_now);
    STAT_INC(ctx, tickets_resumed);
    if (*renew)
        STAT_INC(ctx, tickets_renewed);
    (void)lookahead(ctx, e_now, 0);
    return HSMKEYS_OK;
}

int hsmkeys_epoch_key(hsmkeys_ctx *ctx, uint64_t epoch, unsigned char name[HSMKEYS_KEY_NAME_LEN],
                      unsigned char aes[HSMKEYS_AES_KEY_LEN],
                      unsigned char hmac[HSMKEYS_HMAC_KEY_LEN])
{
    uint64_t e_now;
    size_t g;

    check_fork(ctx);
    e_now = hsmkeys_current_epoch(ctx);
    if (!hk_window_contains(e_now, ctx->past, epoch))
        return hk_fail(HSMKEYS_E_EXPIRED, "epoch %llu is outside the window [%llu, %llu]",
                       (unsigned long long)epoch,
                       (unsigned long long)hk_window_low(e_now, ctx->past),
                       (unsigned long long)(e_now + 1));
    g = active_gen(ctx, epoch);
    return get_keys(ctx, g, epoch, name, aes, hmac, 1);
}

int hsmkeys_refresh(hsmkeys_ctx *ctx)
{
    check_fork(ctx);
    return lookahead(ctx, hsmkeys_current_epoch(ctx), 1);
}

void hsmkeys_get_stats(const hsmkeys_ctx *ctx, hsmkeys_stats *out)
{
    const uint64_t *src = (const uint64_t *)&ctx->stats;
    uint64_t *dst = (uint64_t *)out;
    size_t i;
    for (i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
