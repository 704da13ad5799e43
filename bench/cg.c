/*
 * cg.c - item 7: the driver that bench/run.sh runs under callgrind.  Each
 * phase warms up, zeroes the counters, runs N handshakes and dumps a part
 * (CALLGRIND_DUMP_STATS_AT), so every part holds exactly N handshakes of one
 * kind.  Instruction counts do not depend on the machine's noise.
 *
 * Phases (in this order; mode "all"):
 *   enc   TLS 1.2 full handshakes, hsmkeys: one ticket encryption each
 *   dec   TLS 1.2 resumed handshakes, hsmkeys: one ticket decryption each
 *   b13 / h13 / b12 / h12   resumed handshakes, built-in keys / hsmkeys
 */
#include <stdio.h>
#include <string.h>
#include <valgrind/callgrind.h>
#include "bench.h"

static int phase(const char *name, SSL_CTX *server, int version, int resume, int n)
{
    b_client c;
    int i;
    if (b_client_init(&c, version) != 0 || b_connect(&c, server, 0) != 0)
        return -1;
    for (i = 0; i < 20; i++)
        if (b_connect(&c, server, resume) != resume)
            return -1;
    CALLGRIND_ZERO_STATS;
    for (i = 0; i < n; i++)
        if (b_connect(&c, server, resume) != resume)
            return -1;
    CALLGRIND_DUMP_STATS_AT(name);
    printf("PART %s %d\n", name, n);
    fflush(stdout);
    b_client_free(&c);
    return 0;
}

int bench_cg(const char *mode, int n)
{
    t_hsm h;
    hsmkeys_ctx *hk;
    SSL_CTX *b13, *h13, *b12, *h12;
    int rc;

    if (strcmp(mode, "all") != 0)
        return -1;
    if (t_fleet_setup(&h) != 0 || (hk = b_open(&h, "S1", NULL, NULL)) == NULL)
        return -1;
    b13 = b_server(TLS1_3_VERSION, "EC", NULL);
    h13 = b_server(TLS1_3_VERSION, "EC", hk);
    b12 = b_server(TLS1_2_VERSION, "EC", NULL);
    h12 = b_server(TLS1_2_VERSION, "EC", hk);
    rc = phase("enc", h12, TLS1_2_VERSION, 0, n / 5 > 0 ? n / 5 : 1) ||
         phase("dec", h12, TLS1_2_VERSION, 1, n) ||
         phase("b13", b13, TLS1_3_VERSION, 1, n) || phase("h13", h13, TLS1_3_VERSION, 1, n) ||
         phase("b12", b12, TLS1_2_VERSION, 1, n) || phase("h12", h12, TLS1_2_VERSION, 1, n);
    SSL_CTX_free(b13); SSL_CTX_free(h13); SSL_CTX_free(b12); SSL_CTX_free(h12);
    hsmkeys_close(hk);
    t_hsm_cleanup(&h);
    return rc ? -1 : 0;
}
