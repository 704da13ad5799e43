/*
 * test.h - the unit-test harness: TAP output, asserts that print both sides.
 *
 *   T_CASE("name") { ... T_EQ_INT(a, b); ... }  -> "ok N - name" / "not ok N"
 *   return t_done();                            -> exit status
 */
#ifndef HSMKEYS_TEST_H
#define HSMKEYS_TEST_H

#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* 1 when built with ThreadSanitizer: it cannot follow a thread started in
 * the fork child of a threaded process ("dup thread with used id": glibc
 * gives the child's new thread the stack of a parent thread), so cases that
 * start maintainers in a fork child are skipped under it (ASan runs them). */
#if defined(__SANITIZE_THREAD__)
#define T_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_UNDER_TSAN 1
#endif
#endif
#ifndef T_UNDER_TSAN
#define T_UNDER_TSAN 0
#endif

extern int t_case_failed;
void t_case_begin(const char *name);
void t_case_end(void);
void t_skip(const char *name, const char *why);
int t_done(void);
void t_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void t_hex(char *out, size_t outlen, const void *p, size_t len);
/* Parse exactly n bytes of hex (2n characters); 0, or -1 if it is not that. */
int t_unhex(const char *s, unsigned char *out, size_t n);

/* Runs the block once, then reports it.  Never `break` or `return` out of
 * a T_CASE block: the report would be skipped. */
#define T_CASE(name) \
    for (int t_once_ = (t_case_begin(name), 1); t_once_; t_once_ = (t_case_end(), 0))

#define T_TRUE(c) do { if (!(c)) t_fail_at(__FILE__, __LINE__, "expected true: %s", #c); } while (0)
#define T_EQ_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
    if (t_a_ != t_b_) t_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a_, t_b_); } while (0)
#define T_NE_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
    if (t_a_ == t_b_) t_fail_at(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, t_a_); } while (0)
#define T_EQ_STR(a, b) do { const char *t_a_ = (a), *t_b_ = (b); \
    if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_)) t_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } while (0)
#define T_CONTAINS(hay, needle) do { const char *t_h_ = (hay), *t_n_ = (needle); \
    if (!t_h_ || !strstr(t_h_, t_n_)) t_fail_at(__FILE__, __LINE__, "\"%s\" should contain \"%s\"", t_h_ ? t_h_ : "(null)", t_n_); } while (0)
#define T_EQ_MEM(a, b, n) do { const void *t_a_ = (a), *t_b_ = (b); size_t t_n_ = (n); \
    if (memcmp(t_a_, t_b_, t_n_)) { char t_x_[260], t_y_[260]; t_hex(t_x_, sizeof t_x_, t_a_, t_n_); t_hex(t_y_, sizeof t_y_, t_b_, t_n_); \
    t_fail_at(__FILE__, __LINE__, "%s == %s:\n#   %s\n#   %s", #a, #b, t_x_, t_y_); } } while (0)
/* Check an hsmkeys call's result; prints hsmkeys_last_error() on mismatch. */
#define T_RC(expr, want) do { int t_r_ = (expr); if (t_r_ != (want)) \
    t_fail_at(__FILE__, __LINE__, "%s: got %d, want %d (%s)", #expr, t_r_, (int)(want), hsmkeys_last_error()); } while (0)

#endif
