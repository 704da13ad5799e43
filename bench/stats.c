/* stats.c - timers, quantiles and the ROW output lines (see bench.h). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bench.h"

static int64_t ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t b_cpu_ns(void) { return ns_of(CLOCK_PROCESS_CPUTIME_ID); }
int64_t b_mono_ns(void) { return ns_of(CLOCK_MONOTONIC); }
int64_t b_real_ns(void) { return ns_of(CLOCK_REALTIME); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void b_sort(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

double b_quantile(const double *sorted, size_t n, double q)
{
    size_t i;
    if (n == 0)
        return 0;
    i = (size_t)(q * (double)n + 0.999999);
    if (i > 0)
        i--;
    return sorted[i < n ? i : n - 1];
}

void b_row(const char *section, const char *label, double *v, size_t n, const char *unit)
{
    b_sort(v, n);
    printf("ROW|%s|%s|%.6g|%.6g|%.6g|%s\n", section, label, v[0],
           n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[n - 1], unit);
    fflush(stdout);
}

void b_row1(const char *section, const char *label, double value, const char *unit)
{
    printf("ROW|%s|%s|%.6g|%.6g|%.6g|%s\n", section, label, value, value, value, unit);
    fflush(stdout);
}
