/*
 * boundary.c - item 4: latency of one resumed handshake (both ends
 * in-process) in the second around an epoch boundary against a second of
 * steady state.  p50/p99/max are thread CPU time, which other processes on
 * a shared machine do not inflate (SoftHSM2 runs in-process, so a token
 * derivation is CPU time too); the wall-time maximum is reported as well.
 *
 * The contexts' clock follows real time plus an offset, placed so that a
 * run is either mid-epoch (steady) or starts 0.5 s before a boundary.  At
 * the boundary each server's first handshake derives the next look-ahead
 * epoch in the token, and tickets of the old epoch are renewed.  Two
 * servers take turns, as in the seed.  Epoch 1 h, lifetime 2 h (defaults).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bench.h"

#define B_RUN_NS 1000000000LL
#define B_MAX_SAMPLES 200000
#define B_P 3600LL

static double lat[B_MAX_SAMPLES];

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Place the clock so that unix time is `target_ns` now. */
static void clock_at(int64_t target_ns)
{
    b_clock_offset_ns = target_ns - b_real_ns();
    b_clock_follow = 1;
}

/* One second of handshakes; fills CPU p50/p99/max and the wall max, in
 * microseconds. */
static int one_second(b_client *c, SSL_CTX **servers, double out[4])
{
    int64_t start = b_mono_ns(), t0, t1, c0;
    double wall_max = 0;
    size_t n = 0;
    do {
        t0 = b_mono_ns();
        c0 = thread_cpu_ns();
        if (b_connect(c, servers[n % 2], 1) != 1)
            return -1;
        lat[n++] = (double)(thread_cpu_ns() - c0) / 1000.0;
        t1 = b_mono_ns();
        if ((double)(t1 - t0) / 1000.0 > wall_max)
            wall_max = (double)(t1 - t0) / 1000.0;
    } while (t1 - start < B_RUN_NS && n < B_MAX_SAMPLES);
    b_sort(lat, n);
    out[0] = b_quantile(lat, n, 0.50);
    out[1] = b_quantile(lat, n, 0.99);
    out[2] = lat[n - 1];
    out[3] = wall_max;
    return 0;
}

static int one_version(const t_hsm *h, int version, const char *vname, int runs, int64_t *epoch)
{
    static const char *q[4] = { "p50 CPU", "p99 CPU", "max CPU", "max wall" };
    hsmkeys_ctx *a = b_open(h, "S1", NULL, NULL), *b = b_open(h, "S2", NULL, NULL);
    SSL_CTX *servers[2];
    b_client c;
    double steady[4][32], boundary[4][32], tmp[4];
    char label[160];
    int r, k, i;

    if (a == NULL || b == NULL || b_client_init(&c, version) != 0)
        return -1;
    servers[0] = b_server(version, "EC", a);
    servers[1] = b_server(version, "EC", b);
    for (r = 0; r < runs; r++) {
        /* steady: mid-epoch, after warm-up handshakes */
        clock_at((*epoch * B_P + B_P / 2) * 1000000000LL);
        for (i = 0; i < 200; i++)
            if (b_connect(&c, servers[i % 2], i > 0) < 0)
                return -1;
        if (one_second(&c, servers, tmp) != 0)
            return -1;
        for (k = 0; k < 4; k++)
            steady[k][r] = tmp[k];
        /* boundary: from 0.5 s before the next epoch to 0.5 s after */
        clock_at((*epoch + 1) * B_P * 1000000000LL - B_RUN_NS / 2);
        if (one_second(&c, servers, tmp) != 0)
            return -1;
        for (k = 0; k < 4; k++)
            boundary[k][r] = tmp[k];
        *epoch += 2;
    }
    for (k = 0; k < 4; k++) {
        snprintf(label, sizeof label, "%s resumed handshake latency %s, steady second", vname, q[k]);
        b_row("4 epoch boundary", label, steady[k], (size_t)runs, k == 3 ? "us wall" : "us CPU");
        snprintf(label, sizeof label, "%s resumed handshake latency %s, second around a boundary", vname, q[k]);
        b_row("4 epoch boundary", label, boundary[k], (size_t)runs, k == 3 ? "us wall" : "us CPU");
    }
    b_client_free(&c);
    SSL_CTX_free(servers[0]);
    SSL_CTX_free(servers[1]);
    hsmkeys_close(a);
    hsmkeys_close(b);
    return 0;
}

int bench_boundary(int runs)
{
    t_hsm h;
    int64_t epoch = 1700000000 / B_P;
    int rc;
    if (runs > 32)
        runs = 32;
    b_clock_follow = 0;
    b_clock_fixed = epoch * B_P + B_P / 2;
    if (t_fleet_setup(&h) != 0)
        return -1;
    rc = one_version(&h, TLS1_3_VERSION, "TLS 1.3", runs, &epoch);
    if (rc == 0)
        rc = one_version(&h, TLS1_2_VERSION, "TLS 1.2", runs, &epoch);
    b_clock_follow = 0;
    t_hsm_cleanup(&h);
    return rc;
}
