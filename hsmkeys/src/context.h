/*
 * context.h - the inside of hsmkeys_ctx (opaque in the public header),
 * shared by context.c (the public API and the hot path) and maintainer.c
 * (all token work after open).
 *
 * Layout and locks:
 *   view_lock (rwlock)  gens[0..ngens): the master generations the hot path
 *                       resolves names against; replaced by the maintainer
 *                       after each re-read, read by every handshake.
 *   ring.lock (rwlock)  the cached epoch keys (ring.h).
 *   m.lock (mutex)      the maintainer's flags; held only for a few
 *                       instructions, never across a token call, so a
 *                       handshake that wakes the maintainer never waits on
 *                       the token, and fork() never waits either.
 * The key source (src) belongs to the maintainer thread alone (and to open,
 * before the context is shared).
 */
#ifndef HSMKEYS_CONTEXT_H
#define HSMKEYS_CONTEXT_H

#include <pthread.h>
#include <stdint.h>
#include "keysource.h"
#include "ring.h"

/* Backoff state of one master generation (never shared between them). */
typedef struct hk_gen_backoff {
    uint32_t generation;
    int64_t retry_at_ms;  /* monotonic; no derivation before */
    int64_t backoff_ms;
} hk_gen_backoff;

typedef struct hk_maint {
    pthread_mutex_t lock;
    pthread_cond_t wake_cond;   /* the maintainer sleeps on it */
    pthread_cond_t done_cond;   /* a cycle ended / the thread exited */
    pthread_t thread;
    unsigned started_fork;      /* hk_fork_count + 1 when started; 0 = none here */
    int stop, exited, orphan;
    int wake;                   /* a handshake missed a key */
    int force;                  /* a tool waits for a cycle */
    uint64_t cycles_begun, cycles_done;
    int last_rc;                /* result of the last cycle */
    char last_msg[300];         /* ... and its message (the waiter's thread has none) */
    /* the maintainer thread's own state (no lock) */
    hk_gen_backoff *backoff;
    size_t nbackoff;
    int64_t src_retry_at_ms, src_backoff_ms;
    int64_t last_reread_ms;
    int64_t quiet_until_ms;     /* every missing key backs off until then */
    int64_t last_log_ms;
    unsigned suppressed;
    int failing;                /* a derivation or re-read failed and has not recovered */
    uint32_t last_active;       /* generation that encrypted at the last cycle */
    int have_last_active;
} hk_maint;

struct hsmkeys_ctx {
    unsigned refs;
    char *domain;
    int64_t epoch_seconds, lifetime_seconds;
    unsigned past;
    int session_cache;
    hsmkeys_log_fn log;
    void *log_arg;
    hsmkeys_clock_fn clock;
    void *clock_arg;

    hk_keysource *src;
    hk_ring ring;
    pthread_rwlock_t view_lock;
    hk_generation *gens;        /* sorted by activation */
    size_t ngens;

    hk_maint m;
    hsmkeys_stats stats;
    int token_up;               /* 1 while the last token operation succeeded */
    /* successful derivations by duration (hsmkeys_metrics_bucket_of) and
     * their total time: the metrics' histogram (metrics_ctx.c) */
    uint64_t deriv_buckets[HSMKEYS_METRICS_BUCKETS];
    uint64_t deriv_ns;

    struct hsmkeys_ctx *reg_next; /* the registry the fork handlers walk */
};

#define HK_STAT_INC(ctx, field) __atomic_add_fetch(&(ctx)->stats.field, 1, __ATOMIC_RELAXED)

/* Free everything of a context whose maintainer (if any) has stopped. */
void hk_ctx_free(struct hsmkeys_ctx *ctx);
int64_t hk_ctx_now(const struct hsmkeys_ctx *ctx);
int64_t hk_mono_ms(void);
void hk_ctx_log(struct hsmkeys_ctx *ctx, int level, const char *fmt, ...) HK_PRINTF(3, 4);
void hk_name_hex(const unsigned char *name, size_t len, char *out);
/* Count one successful derivation that took ns nanoseconds (metrics). */
void hk_ctx_note_derivation(struct hsmkeys_ctx *ctx, uint64_t ns);

#endif
