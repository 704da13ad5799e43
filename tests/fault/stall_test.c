/*
 * stall_test.c - a token call that hangs (a slow or wedged HSM) must not
 * stall any handshake: the maintainer thread waits in it, handshakes read
 * the ring and never wait for the maintainer, not even those that need a
 * key it has not derived yet.
 *
 * The fault module holds one C_Sign until released; the test checks that the
 * handshakes of four threads all finish while that call is still held.  No
 * timing is asserted: if handshakes waited for the call, they could only
 * finish after it was released (20 s later), which the test sees.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "fault_env.h"
#include "tls.h"

#define THREADS 4
#define RESUMES 100
#define FULLS 20

static fe_env env;
static fe_clock clk = { FE_T0 };
static hsmkeys_ctx *hk;
static SSL_CTX *srv, *cli;
static SSL_SESSION *ticket;

struct deriver { uint64_t epoch; int rc; unsigned char name[16]; };

static void *derive_thread(void *arg)
{
    struct deriver *d = arg;
    unsigned char aes[32], hmac[32];
    d->rc = hsmkeys_epoch_key(hk, d->epoch, d->name, aes, hmac);
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    return NULL;
}

struct worker { int resumed, full_with_ticket; };

static void *handshake_thread(void *arg)
{
    struct worker *w = arg;
    t_hs r;
    for (int i = 0; i < RESUMES; i++)
        if (t_handshake(cli, srv, ticket, &r) == 0) {
            w->resumed += r.resumed;
            SSL_SESSION_free(r.session);
        }
    for (int i = 0; i < FULLS; i++)
        if (t_handshake(cli, srv, NULL, &r) == 0) {
            w->full_with_ticket += r.has_ticket;
            SSL_SESSION_free(r.session);
        }
    return NULL;
}

int main(void)
{
    uint64_t e = (uint64_t)(FE_T0 / FE_EPOCH);
    struct deriver d = { e + 2, -100, { 0 } };
    pthread_t dt, ht[THREADS];
    struct worker w[THREADS];
    int derive_started = 0;

    if (fe_setup(&env) != 0) {
        printf("not ok 1 - set-up: token, master and fault module\n");
        return 1;
    }
    srv = t_server_ctx(0, "EC");
    cli = t_client_ctx(TLS1_2_VERSION);

    T_CASE("open, attach, first ticket") {
        t_hs r;
        T_RC(fe_open(&env, &clk, &hk), HSMKEYS_OK);
        T_TRUE(srv && cli && hk);
        if (hk && srv && cli) {
            T_RC(hsmkeys_ssl_attach(srv, hk), HSMKEYS_OK);
            T_EQ_INT(t_handshake(cli, srv, NULL, &r), 0);
            T_TRUE(r.has_ticket);
            ticket = r.session;
        }
    }
    if (!ticket)
        return t_done();

    T_CASE("a C_Sign held by the token: the maintainer waits in it") {
        env.fc.stall("C_Sign", 20000, 1);
        /* one epoch on: e + 1 is cached (derived ahead), e + 2 is the new
         * look-ahead, which needs the token; a tool asks for it and waits */
        atomic_store(&clk.now, FE_T0 + FE_EPOCH);
        derive_started = pthread_create(&dt, NULL, derive_thread, &d) == 0;
        T_TRUE(derive_started);
        for (int i = 0; i < 10000 && env.fc.stalled_now() == 0; i++) {
            struct timespec ms = { 0, 1000000 };
            nanosleep(&ms, NULL);
        }
        T_EQ_INT(env.fc.stalled_now(), 1);
    }

    T_CASE("meanwhile 4 threads finish 480 handshakes on cached keys") {
        int resumed = 0, full = 0;
        t_hs r;
        /* a ticket of the current epoch (e + 1, cached ahead of need) */
        T_EQ_INT(t_handshake(cli, srv, NULL, &r), 0);
        T_TRUE(r.has_ticket);
        SSL_SESSION_free(ticket);
        ticket = r.session;
        memset(w, 0, sizeof w);
        for (int i = 0; i < THREADS; i++)
            pthread_create(&ht[i], NULL, handshake_thread, &w[i]);
        for (int i = 0; i < THREADS; i++) {
            pthread_join(ht[i], NULL);
            resumed += w[i].resumed;
            full += w[i].full_with_ticket;
        }
        /* still held: no handshake waited for the token */
        T_EQ_INT(env.fc.stalled_now(), 1);
        T_EQ_INT(resumed, THREADS * RESUMES);
        T_EQ_INT(full, THREADS * FULLS);
    }

    T_CASE("a handshake that needs an underived key is not held either: full, no ticket") {
        t_hs r;
        int64_t saved = atomic_load(&clk.now);
        atomic_store(&clk.now, FE_T0 + 2 * FE_EPOCH); /* e + 2: not derived (held) */
        T_EQ_INT(t_handshake(cli, srv, NULL, &r), 0);
        T_EQ_INT(r.has_ticket, 0);
        SSL_SESSION_free(r.session);
        T_EQ_INT(env.fc.stalled_now(), 1); /* it did not wait for the held call */
        atomic_store(&clk.now, saved);
    }

    T_CASE("released, the held derivation completes with the right epoch") {
        uint64_t ep = 0;
        env.fc.release();
        if (derive_started)
            pthread_join(dt, NULL);
        T_RC(d.rc, HSMKEYS_OK);
        T_RC(hsmkeys_name_epoch(d.name, &ep), HSMKEYS_OK);
        T_EQ_INT(ep, e + 2);
        env.fc.clear();
    }

    SSL_SESSION_free(ticket);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    hsmkeys_close(hk);
    fe_cleanup(&env);
    return t_done();
}
