/* test.c - TAP reporting for the unit tests (see test.h). */
#include "test.h"
#include <stdarg.h>
#include <stdlib.h>

int t_case_failed;
static int t_count, t_failures;
static const char *t_name;

void t_case_begin(const char *name) { t_name = name; t_case_failed = 0; }

void t_case_end(void)
{
    t_count++;
    if (t_case_failed)
        t_failures++;
    printf("%sok %d - %s\n", t_case_failed ? "not " : "", t_count, t_name);
    fflush(stdout);
}

void t_skip(const char *name, const char *why)
{
    printf("ok %d - %s # SKIP %s\n", ++t_count, name, why);
}

int t_done(void)
{
    printf("1..%d\n", t_count);
    return t_failures ? 1 : 0;
}

void t_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    t_case_failed = 1;
    printf("# %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void t_hex(char *out, size_t outlen, const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t i;
    out[0] = 0;
    for (i = 0; i < len && 2 * i + 3 < outlen; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int t_unhex(const char *s, unsigned char *out, size_t n)
{
    size_t i;
    unsigned v;
    if (strlen(s) != 2 * n)
        return -1;
    for (i = 0; i < n; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}
