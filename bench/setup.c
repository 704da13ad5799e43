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

hsmkeys_ctx *b_open_uri(const char *uri, const char *domain, const char *epoch,
                        const char *lifetime)
{
    return t_open_uri(uri, domain, epoch, lifetime, b_clock, NULL);
}

hsmkeys_ctx *b_open_uri_fe(const char *uri, const char *domain, const char *epoch,
                           const char *lifetime, int forward_erasable)
{
    return t_open_uri_fe(uri, domain, epoch, lifetime, forward_erasable, b_clock, NULL);
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
