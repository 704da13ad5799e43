/*
 * resume.c - item 1: resumed handshakes per CPU second with OpenSSL's
 * built-in ticket keys (the limit) and with the hsmkeys callback, TLS 1.3
 * and TLS 1.2.  Each run interleaves the two in short slices (the order
 * alternates), so drift of a noisy machine hits both alike.  CPU time covers both ends of the
 * in-process connection.  Ratio = callback rate / built-in rate per run.
 */
#include <stdio.h>
#include <stdlib.h>
#include "bench.h"

#define B_SLICE_NS 40000000LL /* CPU time per slice */
#define B_SLICES   12         /* slices per variant and run */

typedef struct variant {
    SSL_CTX *server;
    b_client client;
    double *rate;
    double tickets;
} variant;

/* One run: B_SLICES slices of each variant, alternating. */
static int measure(variant *builtin, variant *cb, int run)
{
    uint64_t n[2] = { 0, 0 }, t0[2] = { builtin->client.tickets, cb->client.tickets };
    int64_t t[2] = { 0, 0 };
    int i, k;
    for (i = 0; i < 2 * B_SLICES; i++) {
        k = (i + run) % 2;
        variant *v = k ? cb : builtin;
        if (b_resume_batch(&v->client, &v->server, 1, B_SLICE_NS, &n[k], &t[k]) != 0) {
            fprintf(stderr, "hsmkeys-bench: a resumption failed\n");
            return -1;
        }
    }
    builtin->rate[run] = (double)n[0] * 1e9 / (double)t[0];
    cb->rate[run] = (double)n[1] * 1e9 / (double)t[1];
    builtin->tickets = (double)(builtin->client.tickets - t0[0]) / (double)n[0];
    cb->tickets = (double)(cb->client.tickets - t0[1]) / (double)n[1];
    return 0;
}

static int one_version(hsmkeys_ctx *hk, int version, const char *vname, int runs)
{
    variant builtin = { 0 }, cb = { 0 };
    double *ratio = calloc((size_t)runs, sizeof *ratio);
    char label[120];
    int r, rc = -1;

    builtin.rate = calloc((size_t)runs, sizeof(double));
    cb.rate = calloc((size_t)runs, sizeof(double));
    builtin.server = b_server(version, "EC", NULL);
    cb.server = b_server(version, "EC", hk);
    if (!ratio || !builtin.rate || !cb.rate ||
        b_client_init(&builtin.client, version) || b_client_init(&cb.client, version))
        goto out;
    /* warm-up: first tickets, caches, page faults */
    b_resume_rate(&builtin.client, &builtin.server, 1, 5 * B_SLICE_NS, NULL);
    b_resume_rate(&cb.client, &cb.server, 1, 5 * B_SLICE_NS, NULL);
    for (r = 0; r < runs; r++) {
        if (measure(&builtin, &cb, r) != 0)
            goto out;
        ratio[r] = cb.rate[r] / builtin.rate[r];
        fprintf(stderr, "# %s run %d: built-in %.0f/s, callback %.0f/s, ratio %.4f\n",
                vname, r + 1, builtin.rate[r], cb.rate[r], ratio[r]);
    }
    snprintf(label, sizeof label, "%s resumed, OpenSSL built-in keys", vname);
    b_row("1 resumption", label, builtin.rate, (size_t)runs, "handshakes/CPU-s");
    snprintf(label, sizeof label, "%s resumed, hsmkeys callback", vname);
    b_row("1 resumption", label, cb.rate, (size_t)runs, "handshakes/CPU-s");
    snprintf(label, sizeof label, "%s ratio callback/built-in (target >= 0.97)", vname);
    b_row("1 resumption", label, ratio, (size_t)runs, "ratio");
    snprintf(label, sizeof label, "%s tickets received per resumption, built-in", vname);
    b_row1("1 resumption", label, builtin.tickets, "tickets");
    snprintf(label, sizeof label, "%s tickets received per resumption, callback", vname);
    b_row1("1 resumption", label, cb.tickets, "tickets");
    rc = 0;
out:
    b_client_free(&builtin.client);
    b_client_free(&cb.client);
    SSL_CTX_free(builtin.server);
    SSL_CTX_free(cb.server);
    free(builtin.rate);
    free(cb.rate);
    free(ratio);
    return rc;
}

int bench_resume(int runs)
{
    t_hsm h;
    hsmkeys_ctx *hk;
    int rc;
    if (t_fleet_setup(&h) != 0 || (hk = b_open(&h, "S1", NULL, NULL)) == NULL)
        return -1;
    rc = one_version(hk, TLS1_3_VERSION, "TLS 1.3", runs);
    if (rc == 0)
        rc = one_version(hk, TLS1_2_VERSION, "TLS 1.2", runs);
    hsmkeys_close(hk);
    t_hsm_cleanup(&h);
    return rc;
}
