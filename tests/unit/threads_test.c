/*
 * threads_test.c - many handshake threads on two servers at once while the
 * clock crosses epoch boundaries: every reconnect resumes, derivations stay
 * bounded, and (under `make SAN=tsan check-unit`) no data race.
 */
#include <pthread.h>
#include <stdlib.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "softhsm.h"
#include "tls.h"

#define THREADS 6
#define ROUNDS 150

static int64_t clock_now = 1700000000;
static SSL_CTX *servers[2];
static hsmkeys_ctx *hk[2];
static int resumed[THREADS], failed[THREADS];

static int64_t atomic_clock(void *arg)
{
    (void)arg;
    return __atomic_load_n(&clock_now, __ATOMIC_RELAXED);
}

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg, i;
    SSL_CTX *c = t_client_ctx(id & 1 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_SESSION *offer = NULL;
    t_hs h;
    for (i = 0; i < ROUNDS; i++) {
        if (t_handshake(c, servers[(i + id) & 1], offer, &h) != 0)
            failed[id]++;
        else if (h.resumed)
            resumed[id]++;
        if (h.session != NULL) {
            if (offer != NULL)
                SSL_SESSION_free(offer);
            offer = h.session;
            h.session = NULL;
        }
        t_hs_clear(&h);
        if (id == 0 && i % 25 == 24) { /* one thread moves time on: an epoch */
            __atomic_add_fetch(&clock_now, 60, __ATOMIC_RELAXED);
            /* the maintainers sleep on the real clock: as real time would,
             * let each finish a cycle at the new time */
            if (hsmkeys_refresh(hk[0]) != HSMKEYS_OK || hsmkeys_refresh(hk[1]) != HSMKEYS_OK)
                failed[id]++;
        }
    }
    if (offer != NULL)
        SSL_SESSION_free(offer);
    SSL_CTX_free(c);
    return NULL;
}

static hsmkeys_ctx *open_atomic(t_hsm *h, const char *token)
{
    hsmkeys_config *c;
    hsmkeys_ctx *ctx = NULL;
    char uri[700];
    t_uri(uri, sizeof uri, token, h->pin_file);
    hsmkeys_config_new(&c);
    hsmkeys_config_set(c, "uri", uri);
    hsmkeys_config_set(c, "domain", "www.example.com");
    hsmkeys_config_set(c, "epoch", "60");
    hsmkeys_config_set(c, "lifetime", "600"); /* wider than any lag */
    hsmkeys_config_set_clock(c, atomic_clock, NULL);
    if (hsmkeys_open(c, &ctx) != HSMKEYS_OK)
        fprintf(stderr, "# %s\n", hsmkeys_last_error());
    hsmkeys_config_free(c);
    return ctx;
}

int main(void)
{
    t_hsm h;
    hsmkeys_ctx *a, *b;
    pthread_t t[THREADS];
    hsmkeys_stats sa, sb;
    int i, total_resumed = 0, total_failed = 0;

    if (t_fleet_setup(&h) != 0)
        return 1;
    a = open_atomic(&h, "S1");
    b = open_atomic(&h, "S2");
    if (a == NULL || b == NULL)
        return 1;
    hk[0] = a;
    hk[1] = b;
    servers[0] = t_server_ctx(TLS1_3_VERSION, "EC");
    servers[1] = t_server_ctx(TLS1_3_VERSION, "EC");
    SSL_CTX_set_min_proto_version(servers[0], TLS1_2_VERSION);
    SSL_CTX_set_min_proto_version(servers[1], TLS1_2_VERSION);
    hsmkeys_ssl_attach(servers[0], a);
    hsmkeys_ssl_attach(servers[1], b);

    T_CASE("6 threads x 150 reconnects across 6 epoch changes: all but the first resume") {
        for (i = 0; i < THREADS; i++)
            pthread_create(&t[i], NULL, client, (void *)(intptr_t)i);
        for (i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            total_resumed += resumed[i];
            total_failed += failed[i];
        }
        T_EQ_INT(total_failed, 0);
        T_EQ_INT(total_resumed, THREADS * (ROUNDS - 1));
        hsmkeys_get_stats(a, &sa);
        hsmkeys_get_stats(b, &sb);
        /* open derives the window (10 past epochs, the current and the
         * next); each of 6 epoch changes 1 more per server: independent of
         * the handshake count */
        T_TRUE(sa.token_derivations <= 12 + 6);
        T_TRUE(sb.token_derivations <= 12 + 6);
        T_EQ_INT(sa.token_errors + sb.token_errors, 0);
        printf("# resumed %d of %d; derivations %llu + %llu\n", total_resumed,
               THREADS * ROUNDS, (unsigned long long)sa.token_derivations,
               (unsigned long long)sb.token_derivations);
    }
    SSL_CTX_free(servers[0]);
    SSL_CTX_free(servers[1]);
    hsmkeys_close(a);
    hsmkeys_close(b);
    t_hsm_cleanup(&h);
    return t_done();
}
