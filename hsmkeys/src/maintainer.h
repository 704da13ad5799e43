/*
 * maintainer.h - the key maintainer: all token work of a context after
 * open, on one thread per context per process (see hsmkeys.h, "key
 * maintenance", and SECURITY.md for the guarantees).
 *
 * A cycle: re-read the master generations when due (every `period`, after
 * a reconnect, and at once when a handshake met an unknown-but-plausible
 * state), publish them to the hot path, wipe keys that left the window or
 * whose generation left the token, then derive every missing key of the
 * target set
 *     { (g, x) : x in [e - past, e + 1], g may have encrypted in x }
 * (schedule.h), current epoch first.  A failing generation backs off alone
 * (1 s doubling to 30 s); a failing re-read backs the re-read off.
 */
#ifndef HSMKEYS_MAINTAINER_H
#define HSMKEYS_MAINTAINER_H

#include "context.h"

#define HK_BACKOFF_MIN_MS   1000
#define HK_BACKOFF_MAX_MS  30000
#define HK_LOG_INTERVAL_MS 10000

/* Cycle period for an epoch length: a quarter epoch, 250 ms to 30 s. */
int64_t hk_maint_period_ms(int64_t epoch_seconds);

/* Set up the maintainer's state of a new context (no thread yet).
 * Returns HSMKEYS_OK or HSMKEYS_E_NOMEM. */
int hk_maint_init(struct hsmkeys_ctx *ctx) HK_WARN_UNUSED;

/* One cycle on the calling thread: open uses it before anyone else sees the
 * context; the maintainer thread runs it in its loop.  reread: re-read the
 * generations even if not due.  Returns HSMKEYS_OK when the current and
 * next epochs' keys are cached, else the code of the failure. */
int hk_maint_cycle(struct hsmkeys_ctx *ctx, int reread);

/* Start the thread in this process unless it runs here already.
 * Returns HSMKEYS_OK or HSMKEYS_E_NOMEM. */
int hk_maint_start(struct hsmkeys_ctx *ctx);

/* 1 if the maintainer runs in this process. */
int hk_maint_running_here(struct hsmkeys_ctx *ctx);

/* A handshake missed a key: wake the maintainer (cheap; never blocks on the
 * token).  Starts it if it does not run in this process. */
void hk_maint_wake(struct hsmkeys_ctx *ctx);

/* Wait at most timeout_ms for a cycle begun after this call (reread: that
 * cycle re-reads the generations even if not due); returns its result, or
 * HSMKEYS_E_UNAVAILABLE on timeout. */
int hk_maint_wait_cycle(struct hsmkeys_ctx *ctx, int64_t timeout_ms, int reread);

/* Stop the thread of this process.  Returns 1 if the context may be freed
 * now, 0 if the thread (stuck in a token call) frees it when it returns. */
int hk_maint_stop(struct hsmkeys_ctx *ctx);

/* Free what hk_maint_init set up. */
void hk_maint_free(struct hsmkeys_ctx *ctx);

/* fork(): the registry of contexts and the handlers that keep every lock
 * consistent in the child (registered once, at the first open). */
void hk_registry_add(struct hsmkeys_ctx *ctx);
void hk_registry_remove(struct hsmkeys_ctx *ctx);
/* Generation of fork()s seen by this process (bumped in the child). */
unsigned hk_fork_generation(void);

#endif
