/*
 * setup.c - hsmkeys contexts and TLS server contexts for the benchmarks,
 * with an injectable clock (fixed, or real time plus an offset so a run can
 * sit on an epoch boundary).  Tokens are throwaway SoftHSM2 tokens made by
 * tests/lib/softhsm.c; PINs come from their 0600 pin file via the URI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "bench.h"
#include "tls.h"

volatile int64_t b_clock_fixed = 1700000000;
volatile int64_t b_clock_offset_ns;
volatile int b_clock_follow;

static int64_t b_clock(void *arg)
{
    (void)arg;
    if (b_clock_follow) {
        int64_t t = b_real_ns() + b_clock_offset_ns;
        return t / 1000000000;
    }
    return b_clock_fixed;
}

static void b_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= HSMKEYS_LOG_WARNING)
        fprintf(stderr, "# hsmkeys: %s\n", msg);
}

hsmkeys_ctx *b_open_uri(const char *uri, const char *domain, const char *epoch,
                        const char *lifetime)
{
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    if (hsmkeys_config_new(&c) != HSMKEYS_OK ||
        hsmkeys_config_set(c, "uri", uri) != HSMKEYS_OK ||
        hsmkeys_config_set(c, "domain", domain) != HSMKEYS_OK ||
        (epoch && hsmkeys_config_set(c, "epoch", epoch) != HSMKEYS_OK) ||
        (lifetime && hsmkeys_config_set(c, "lifetime", lifetime) != HSMKEYS_OK))
        goto out;
    hsmkeys_config_set_log(c, b_log, NULL);
    hsmkeys_config_set_clock(c, b_clock, NULL);
    if (hsmkeys_open(c, &ctx) != HSMKEYS_OK)
        ctx = NULL;
out:
    if (ctx == NULL)
        fprintf(stderr, "hsmkeys-bench: open: %s\n", hsmkeys_last_error());
    hsmkeys_config_free(c);
    return ctx;
}

hsmkeys_ctx *b_open(const t_hsm *h, const char *token, const char *epoch, const char *lifetime)
{
    char uri[700];
    t_uri(uri, sizeof uri, token, h->pin_file);
    return b_open_uri(uri, "bench.example", epoch, lifetime);
}

uint64_t b_token_calls(const hsmkeys_ctx *hk)
{
    hsmkeys_stats st;
    hsmkeys_get_stats(hk, &st);
    return st.token_calls;
}

SSL_CTX *b_server(int version, const char *key_type, hsmkeys_ctx *hk)
{
    SSL_CTX *s = t_server_ctx(version, key_type);
    if (s == NULL || (hk != NULL && hsmkeys_ssl_attach(s, hk) != HSMKEYS_OK)) {
        fprintf(stderr, "hsmkeys-bench: server context failed\n");
        abort();
    }
    return s;
}
