/*
 * full.c - item 2: CPU cost of a full and of a resumed handshake (both ends
 * of the in-process connection) for ECDSA P-256 and RSA-2048 server keys,
 * in software and in the token through libp11's engine (each full
 * handshake then makes one token signature).  The hsmkeys callback issues
 * and takes the tickets, as in a deployment.  Configurations are
 * interleaved run by run.
 */
#include <stdio.h>
#include <stdlib.h>
#include "bench.h"

#define B_FULL_SLICE_NS 150000000LL
#define B_NCONF 8

typedef struct conf {
    const char *name;
    int version;
    SSL_CTX *server;
    b_client client;
    double full[32], resumed[32];
} conf;

int bench_full(int runs)
{
    static const char *keys[4] = { "EC", "RSA", "EC", "RSA" };
    static const char *key_names[4] = { "ECDSA P-256", "RSA-2048", "ECDSA P-256 in token (libp11)",
                                        "RSA-2048 in token (libp11)" };
    static conf c[B_NCONF];
    t_hsm h;
    hsmkeys_ctx *hk;
    char label[160];
    int i, r;

    if (runs > 32)
        runs = 32;
    if (t_fleet_setup(&h) != 0 || (hk = b_open(&h, "S1", NULL, NULL)) == NULL ||
        b_token_tls_keys("TLS") != 0)
        return -1;
    for (i = 0; i < B_NCONF; i++) {
        int k = i / 2, token = k >= 2;
        c[i].version = i % 2 ? TLS1_2_VERSION : TLS1_3_VERSION;
        c[i].name = key_names[k];
        c[i].server = token ? b_engine_server(c[i].version, keys[k], "TLS", h.pin_file, hk)
                            : b_server(c[i].version, keys[k], hk);
        if (c[i].server == NULL || b_client_init(&c[i].client, c[i].version) != 0)
            return -1;
        /* warm-up */
        if (b_full_rate(&c[i].client, c[i].server, B_FULL_SLICE_NS / 5) < 0 ||
            b_resume_rate(&c[i].client, &c[i].server, 1, B_FULL_SLICE_NS / 5, NULL) < 0) {
            fprintf(stderr, "hsmkeys-bench: %s handshakes fail\n", c[i].name);
            return -1;
        }
    }
    for (r = 0; r < runs; r++) {
        for (i = 0; i < B_NCONF; i++) {
            int j = r % 2 ? B_NCONF - 1 - i : i;
            double f = b_full_rate(&c[j].client, c[j].server, B_FULL_SLICE_NS);
            double s = b_resume_rate(&c[j].client, &c[j].server, 1, B_FULL_SLICE_NS, NULL);
            if (f <= 0 || s <= 0)
                return -1;
            c[j].full[r] = 1e6 / f;
            c[j].resumed[r] = 1e6 / s;
        }
        fprintf(stderr, "# full/resumed run %d done\n", r + 1);
    }
    for (i = 0; i < B_NCONF; i++) {
        const char *v = c[i].version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2";
        double ratio[32];
        for (r = 0; r < runs; r++)
            ratio[r] = c[i].full[r] / c[i].resumed[r];
        snprintf(label, sizeof label, "%s %s: full handshake", v, c[i].name);
        b_row("2 full vs resumed", label, c[i].full, (size_t)runs, "us CPU/handshake");
        snprintf(label, sizeof label, "%s %s: resumed handshake", v, c[i].name);
        b_row("2 full vs resumed", label, c[i].resumed, (size_t)runs, "us CPU/handshake");
        snprintf(label, sizeof label, "%s %s: full/resumed", v, c[i].name);
        b_row("2 full vs resumed", label, ratio, (size_t)runs, "x");
        b_client_free(&c[i].client);
        SSL_CTX_free(c[i].server);
    }
    hsmkeys_close(hk);
    t_hsm_cleanup(&h);
    return 0;
}
