/*
 * calls.c - item 3: token calls per resumed handshake and per epoch change,
 * and the time to derive one epoch's keys.
 *
 * Two contexts play two servers of one fleet; a TLS 1.3 client and a TLS
 * 1.2 client take turns, each offering its newest ticket to the servers in
 * turn, as in the seed (TLS 1.3 resumptions issue a ticket: both callback
 * paths run).  The count comes from
 * the library's own statistics (hsmkeys_stats.token_calls) and, when the
 * URI's module-path is OpenSC's pkcs11-spy.so, from the spy's log too
 * (C_Sign lines: one per HMAC the token computed), which counts from
 * outside the library.  The spy log holds token outputs; bench/run.sh
 * deletes it right after the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define B_EPOCH_CHANGES 5
#define B_DERIVE_SAMPLES 200

/* C_Sign lines in the spy log ("<n>: C_Sign"), or -1 without a spy. */
static long spy_signs(void)
{
    const char *path = getenv("PKCS11SPY_OUTPUT");
    char line[512];
    long n = 0;
    FILE *f;
    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, ": ");
        if (p != NULL && line[0] >= '0' && line[0] <= '9' && strcmp(p + 2, "C_Sign\n") == 0)
            n++;
    }
    fclose(f);
    return n;
}

static uint64_t both(hsmkeys_ctx *a, hsmkeys_ctx *b) { return b_token_calls(a) + b_token_calls(b); }

/* n handshakes: clients c[0] (TLS 1.3, servers s[0..1]) and c[1] (TLS 1.2,
 * servers s[2..3]) in turn. */
static int run_handshakes(b_client *c, SSL_CTX **servers, long n)
{
    long i;
    for (i = 0; i < n; i++) {
        int k = (int)(i % 2);
        if (b_connect(&c[k], servers[2 * k + (i / 2) % 2], 1) != 1) {
            fprintf(stderr, "hsmkeys-bench: handshake %ld did not resume\n", i);
            return -1;
        }
    }
    return 0;
}

int bench_calls(long handshakes, const char *uri, const char *label)
{
    t_hsm h;
    hsmkeys_ctx *a, *b, *d;
    SSL_CTX *servers[4];
    b_client c[2];
    char row[200];
    double per_change[B_EPOCH_CHANGES], spy_change[B_EPOCH_CHANGES];
    double derive_us[B_DERIVE_SAMPLES], derive_calls[B_DERIVE_SAMPLES];
    uint64_t c0;
    long s0, s1;
    int i;

    b_clock_follow = 0;
    b_clock_fixed = 1700000000 / 3600 * 3600 + 1800; /* mid-epoch */
    if (uri == NULL) {
        if (t_fleet_setup(&h) != 0)
            return -1;
        a = b_open(&h, "S1", NULL, NULL);
        b = b_open(&h, "S2", NULL, NULL);
        d = b_open(&h, "S1", NULL, NULL);
    } else {
        h.dir[0] = '\0';
        a = b_open_uri(uri, "bench.example", NULL, NULL);
        b = b_open_uri(uri, "bench.example", NULL, NULL);
        d = b_open_uri(uri, "bench.example", NULL, NULL);
    }
    if (a == NULL || b == NULL || d == NULL)
        return -1;
    servers[0] = b_server(TLS1_3_VERSION, "EC", a);
    servers[1] = b_server(TLS1_3_VERSION, "EC", b);
    servers[2] = b_server(TLS1_2_VERSION, "EC", a);
    servers[3] = b_server(TLS1_2_VERSION, "EC", b);
    if (b_client_init(&c[0], TLS1_3_VERSION) != 0 || b_connect(&c[0], servers[0], 0) != 0 ||
        b_client_init(&c[1], TLS1_2_VERSION) != 0 || b_connect(&c[1], servers[2], 0) != 0)
        return -1;

    /* Steady state: n resumed handshakes, alternating servers. */
    c0 = both(a, b);
    s0 = spy_signs();
    if (run_handshakes(c, servers, handshakes) != 0)
        return -1;
    snprintf(row, sizeof row, "%s: token calls per 100,000 resumed handshakes (2 servers, TLS 1.3+1.2, stats)", label);
    b_row1("3 token calls", row, (double)(both(a, b) - c0) * 100000.0 / (double)handshakes, "calls");
    if (s0 >= 0) {
        s1 = spy_signs();
        snprintf(row, sizeof row, "%s: C_Sign per 100,000 resumed handshakes (spy log)", label);
        b_row1("3 token calls", row, (double)(s1 - s0) * 100000.0 / (double)handshakes, "C_Sign");
    }

    /* Epoch changes: each server's maintainer derives the new look-ahead
     * epoch once.  The injected clock jumps a whole epoch at once, so each
     * maintainer is given the cycle that real time would have run meanwhile
     * (handshakes never derive: without it the first ones of the new epoch
     * would find no key to encrypt with). */
    for (i = 0; i < B_EPOCH_CHANGES; i++) {
        c0 = both(a, b);
        s0 = spy_signs();
        b_clock_fixed += 3600;
        if (hsmkeys_refresh(a) != HSMKEYS_OK || hsmkeys_refresh(b) != HSMKEYS_OK ||
            run_handshakes(c, servers, 1000) != 0)
            return -1;
        per_change[i] = (double)(both(a, b) - c0) / 2.0;
        spy_change[i] = s0 >= 0 ? (double)(spy_signs() - s0) / 2.0 : 0;
    }
    snprintf(row, sizeof row, "%s: token calls per epoch change per server (its maintainer's cycle, then 1,000 handshakes)", label);
    b_row("3 token calls", row, per_change, B_EPOCH_CHANGES, "calls");
    if (s0 >= 0) {
        snprintf(row, sizeof row, "%s: C_Sign per epoch change per server (spy log)", label);
        b_row("3 token calls", row, spy_change, B_EPOCH_CHANGES, "C_Sign");
    }

    /* One epoch's keys: hsmkeys_refresh right after the clock moved on. */
    for (i = 0; i < B_DERIVE_SAMPLES; i++) {
        int64_t t0;
        c0 = b_token_calls(d);
        b_clock_fixed += 3600;
        t0 = b_mono_ns();
        if (hsmkeys_refresh(d) != HSMKEYS_OK)
            return -1;
        derive_us[i] = (double)(b_mono_ns() - t0) / 1000.0;
        derive_calls[i] = (double)(b_token_calls(d) - c0);
    }
    snprintf(row, sizeof row, "%s: hsmkeys_refresh across an epoch change (one epoch derived)", label);
    b_row("3 token calls", row, derive_us, B_DERIVE_SAMPLES, "us wall");
    snprintf(row, sizeof row, "%s: token calls per refresh", label);
    b_row("3 token calls", row, derive_calls, B_DERIVE_SAMPLES, "calls");

    for (i = 0; i < 4; i++)
        SSL_CTX_free(servers[i]);
    b_client_free(&c[0]);
    b_client_free(&c[1]);
    hsmkeys_close(a);
    hsmkeys_close(b);
    hsmkeys_close(d);
    if (uri == NULL)
        t_hsm_cleanup(&h);
    return 0;
}
