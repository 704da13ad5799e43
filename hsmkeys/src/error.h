/*
 * error.h - the one error idiom of libhsmkeys.
 *
 * Every internal function that can fail returns int: HSMKEYS_OK or a negative
 * hsmkeys_result.  The function that first sees a failure records a message
 * with hk_fail(), which returns the code so it can be returned directly:
 *
 *     if (len > max)
 *         return hk_fail(HSMKEYS_E_INVALID, "epoch %s: too long", v);
 *
 * Callers that only pass a failure up use HK_TRY; callers that must clean up
 * use HK_TRY_GOTO with a local `rc` and a cleanup label.  Messages say what is
 * wrong and how to fix it, and never contain key bytes or PINs.
 */
#ifndef HSMKEYS_ERROR_H
#define HSMKEYS_ERROR_H

#include <hsmkeys/hsmkeys.h>

#define HK_WARN_UNUSED __attribute__((warn_unused_result))
#define HK_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Record `fmt` as this thread's last error and return `code`. */
int hk_fail(int code, const char *fmt, ...) HK_PRINTF(2, 3);

/* Prefix the current message with more context ("while X: <old>"). */
int hk_fail_prefix(int code, const char *fmt, ...) HK_PRINTF(2, 3);

/* Clear the last error of this thread. */
void hk_error_clear(void);

#define HK_TRY(expr)                                                           \
    do {                                                                       \
        int hk_try_rc_ = (expr);                                               \
        if (hk_try_rc_ != HSMKEYS_OK)                                          \
            return hk_try_rc_;                                                 \
    } while (0)

#define HK_TRY_GOTO(expr, label)                                               \
    do {                                                                       \
        rc = (expr);                                                           \
        if (rc != HSMKEYS_OK)                                                  \
            goto label;                                                        \
    } while (0)

#endif /* HSMKEYS_ERROR_H */
