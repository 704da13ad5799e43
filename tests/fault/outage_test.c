/*
 * outage_test.c - the token fails while servers handshake: they keep
 * resuming on cached keys, call the token no more than the backoff allows,
 * issue no ticket rather than one under a non-fleet key, and pick up
 * derivation by themselves once the token is back.
 *
 * Two "servers" (SSL_CTXs, each with its own hsmkeys context, both through
 * the fault module around the real SoftHSM2) and TLS 1.2 / 1.3 clients do
 * in-memory handshakes; time is the injected clock.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "fault_env.h"
#include "tls.h"

/* Derivation attempts the two contexts may make during one outage phase:
 * the backoff doubles from 1 s, so 8 attempts each cover more than 4 minutes
 * of outage, far longer than any phase of this test.  Each attempt costs
 * up to ~16 calls (close, slots, token info, open session, login, find the
 * masters, read their attributes, sign).  One call per handshake would be
 * over a thousand per phase. */
#define MAX_OUTAGE_ATTEMPTS 16
#define MAX_OUTAGE_CALLS (MAX_OUTAGE_ATTEMPTS * 24)

static fe_env env;
static fe_clock clk = { FE_T0 };
static SSL_CTX *sa, *sb, *c12, *c13;
static hsmkeys_ctx *ha, *hb;
static unsigned long tickets_seen, tickets_foreign;

static uint64_t epoch_now(void)
{
    return (uint64_t)(atomic_load(&clk.now) / FE_EPOCH);
}

/* Every ticket any client receives must carry a fleet key name. */
static void audit(const t_hs *r)
{
    uint64_t ep;
    if (!r->has_ticket)
        return;
    tickets_seen++;
    if (hsmkeys_name_epoch(r->ticket_name, &ep) != HSMKEYS_OK || memcmp(r->ticket_name + 1, env.tag, 9) != 0) {
        tickets_foreign++;
        printf("# ticket under a non-fleet key name\n");
    }
}

/* One handshake; returns reused (0/1), -1 on failure.  *sess (if not NULL)
 * receives the new session when it has a ticket. */
static int hs(SSL_CTX *c, SSL_CTX *s, SSL_SESSION *resume, SSL_SESSION **sess, int *ticket)
{
    t_hs r;
    /* Offer a copy: an OpenSSL client retires a TLS 1.3 session once it has
     * used it, and these tests replay one ticket many times. */
    SSL_SESSION *offer = resume ? SSL_SESSION_dup(resume) : NULL;
    int rc = t_handshake(c, s, offer, &r);
    SSL_SESSION_free(offer);
    if (rc != 0)
        return -1;
    audit(&r);
    if (ticket)
        *ticket = r.has_ticket;
    if (sess && r.has_ticket) {
        SSL_SESSION_free(*sess);
        *sess = r.session;
    } else {
        SSL_SESSION_free(r.session);
    }
    return r.resumed;
}

static uint64_t token_calls(void)
{
    hsmkeys_stats a, b;
    hsmkeys_get_stats(ha, &a);
    hsmkeys_get_stats(hb, &b);
    return a.token_calls + b.token_calls;
}

static uint64_t refused_unavailable(void)
{
    hsmkeys_stats a, b;
    hsmkeys_get_stats(ha, &a);
    hsmkeys_get_stats(hb, &b);
    return a.refused_unavailable + b.refused_unavailable;
}

/* Epoch of a session's ticket, or UINT64_MAX. */
static uint64_t ticket_epoch(SSL_SESSION *s)
{
    const unsigned char *t;
    size_t len;
    uint64_t ep;
    if (!s || !SSL_SESSION_has_ticket(s))
        return UINT64_MAX;
    SSL_SESSION_get0_ticket(s, &t, &len);
    if (len < 16 || hsmkeys_name_epoch(t, &ep) != HSMKEYS_OK)
        return UINT64_MAX;
    return ep;
}

/* After the fault is cleared: step the injected clock (1 s at a time, within
 * the epoch) and real time (the backoff may count either) until server `s`
 * issues a ticket of the current epoch again.  Returns that session. */
static SSL_SESSION *await_recovery(SSL_CTX *s, int max_steps)
{
    SSL_SESSION *sess = NULL;
    struct timespec d = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < max_steps; i++) {
        int ticket = 0;
        if (hs(c12, s, NULL, &sess, &ticket) >= 0 && ticket && ticket_epoch(sess) == epoch_now())
            return sess;
        if ((atomic_load(&clk.now) + 1) % FE_EPOCH != 0)
            atomic_fetch_add(&clk.now, 1);
        nanosleep(&d, NULL);
    }
    SSL_SESSION_free(sess);
    return NULL;
}

int main(void)
{
    SSL_SESSION *s12 = NULL, *s13 = NULL;
    uint64_t e0 = epoch_now();

    if (fe_setup(&env) != 0) {
        printf("not ok 1 - set-up: token, master and fault module\n");
        return 1;
    }
    sa = t_server_ctx(0, "EC");
    sb = t_server_ctx(0, "EC");
    c12 = t_client_ctx(TLS1_2_VERSION);
    c13 = t_client_ctx(TLS1_3_VERSION);

    T_CASE("open two contexts through the fault module") {
        T_RC(fe_open(&env, &clk, &ha), HSMKEYS_OK);
        T_RC(fe_open(&env, &clk, &hb), HSMKEYS_OK);
        T_TRUE(ha && hb && sa && sb && c12 && c13);
    }
    if (ha && hb && sa && sb && c12 && c13)
    T_CASE("warm-up handshakes: tickets of the current epoch resume on the other server") {
        unsigned char name[16], aes[32], hmac[32];
        T_RC(hsmkeys_ssl_attach(sa, ha), HSMKEYS_OK);
        T_RC(hsmkeys_ssl_attach(sb, hb), HSMKEYS_OK);
        T_RC(hsmkeys_epoch_key(ha, e0, name, aes, hmac), HSMKEYS_OK);
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(hmac, sizeof hmac);
        memcpy(env.tag, name + 1, 9);
        T_EQ_INT(hs(c12, sa, NULL, &s12, NULL), 0);
        T_EQ_INT(hs(c13, sa, NULL, &s13, NULL), 0);
        T_EQ_INT(ticket_epoch(s12), e0);
        T_EQ_INT(ticket_epoch(s13), e0);
        T_EQ_INT(hs(c12, sb, s12, NULL, NULL), 1);
        T_EQ_INT(hs(c13, sb, s13, &s13, NULL), 1);
    }
    if (!ha || !hb || !s12 || !s13) {
        printf("# cannot go on without a working fleet\n");
        return t_done();
    }

    T_CASE("C_Sign fails (CKR_DEVICE_REMOVED): 2000 resumptions on cached keys, no token call") {
        unsigned long calls0 = env.fc.count("*");
        uint64_t stats0 = token_calls();
        int reused = 0, tickets = 0, t;
        env.fc.fail("C_Sign", CKR_DEVICE_REMOVED, -1, 0);
        for (int i = 0; i < 2000; i++)
            reused += hs(i % 4 == 3 ? c13 : c12, i % 2 ? sa : sb, i % 4 == 3 ? s13 : s12,
                         NULL, NULL) == 1;
        for (int i = 0; i < 100; i++)
            if (hs(c12, i % 2 ? sa : sb, NULL, NULL, &t) == 0)
                tickets += t;
        T_EQ_INT(reused, 2000);
        T_EQ_INT(tickets, 100);
        T_EQ_INT(env.fc.count("*") - calls0, 0);
        T_EQ_INT(token_calls() - stats0, 0);
    }

    T_CASE("outage in an epoch not yet derived: no ticket at all, old tickets resume, calls bounded") {
        unsigned long calls0 = env.fc.count("*"), inj0 = env.fc.injected();
        uint64_t stats0 = token_calls(), unav0 = refused_unavailable();
        int full_ok = 0, tickets = 0, reused = 0, t;
        atomic_store(&clk.now, FE_T0 + 2 * FE_EPOCH); /* e0 + 2: only e0, e0 + 1 cached */
        for (int i = 0; i < 1000; i++)
            if (hs(c12, i % 2 ? sa : sb, NULL, NULL, &t) == 0) {
                full_ok++;
                tickets += t;
            }
        for (int i = 0; i < 200; i++)
            reused += hs(c12, i % 2 ? sa : sb, s12, NULL, NULL) == 1;
        unsigned long calls = env.fc.count("*") - calls0;
        uint64_t scalls = token_calls() - stats0;
        unsigned long attempts = env.fc.injected() - inj0;
        printf("# outage of 1200 handshakes: %lu token calls (module), %llu (hsmkeys stats), "
               "%lu derivation attempts (failed C_Sign)\n", calls, (unsigned long long)scalls,
               attempts);
        T_TRUE(attempts >= 1 && attempts <= MAX_OUTAGE_ATTEMPTS);
        T_EQ_INT(full_ok, 1000);   /* the server keeps serving */
        T_EQ_INT(tickets, 0);      /* no ticket rather than a non-fleet one */
        T_EQ_INT(reused, 200);     /* epoch e0 is still in the window and cached */
        T_TRUE(calls <= MAX_OUTAGE_CALLS);
        T_TRUE(scalls <= MAX_OUTAGE_CALLS);
        T_TRUE(refused_unavailable() - unav0 >= 1000);
    }

    T_CASE("token back: derivation resumes by itself, new tickets resume across servers") {
        SSL_SESSION *s1, *s2;
        env.fc.clear();
        /* each server leaves its own backoff: wait for both */
        s1 = await_recovery(sa, 600);
        s2 = await_recovery(sb, 600);
        T_TRUE(s1 != NULL);
        T_TRUE(s2 != NULL);
        if (s1 && s2) {
            T_EQ_INT(ticket_epoch(s1), epoch_now());
            T_EQ_INT(hs(c12, sb, s1, NULL, NULL), 1);
            T_EQ_INT(hs(c12, sa, s2, NULL, NULL), 1);
        }
        SSL_SESSION_free(s1);
        SSL_SESSION_free(s2);
    }

    T_CASE("every call fails (CKR_DEVICE_REMOVED): serving goes on, calls bounded, recovery") {
        SSL_SESSION *cur = NULL, *s;
        int tickets = 0, reused = 0, full_ok = 0, t;
        unsigned long calls0, inj0 = env.fc.injected();
        /* a ticket of the current epoch, to resume during the outage */
        T_EQ_INT(hs(c12, sa, NULL, &cur, NULL), 0);
        env.fc.fail("*", CKR_DEVICE_REMOVED, -1, 0);
        calls0 = env.fc.count("*");
        atomic_store(&clk.now, FE_T0 + 4 * FE_EPOCH); /* nothing cached for e0 + 4 */
        for (int i = 0; i < 500; i++)
            if (hs(c12, i % 2 ? sa : sb, NULL, NULL, &t) == 0) {
                full_ok++;
                tickets += t;
            }
        for (int i = 0; i < 500; i++)
            reused += hs(c12, i % 2 ? sa : sb, cur, NULL, NULL) == 1;
        printf("# device removed, 1000 handshakes: %lu token calls, %lu refused by injection\n",
               env.fc.count("*") - calls0, env.fc.injected() - inj0);
        T_EQ_INT(full_ok, 500);
        T_EQ_INT(tickets, 0);
        T_EQ_INT(reused, 500);
        T_TRUE(env.fc.count("*") - calls0 <= MAX_OUTAGE_CALLS);
        env.fc.clear();
        s = await_recovery(sa, 600);
        T_TRUE(s != NULL);
        SSL_SESSION_free(s);
        SSL_SESSION_free(cur);
    }

    T_CASE("C_Sign fails once with CKR_SESSION_HANDLE_INVALID: a new session, then keys again") {
        SSL_SESSION *s;
        unsigned long open0 = env.fc.count("C_OpenSession");
        env.fc.fail("C_Sign", CKR_SESSION_HANDLE_INVALID, 1, 0);
        atomic_store(&clk.now, FE_T0 + 7 * FE_EPOCH);
        s = await_recovery(sa, 600);
        T_TRUE(s != NULL);
        T_EQ_INT(env.fc.injected() > 0, 1);
        T_TRUE(env.fc.count("C_OpenSession") > open0);
        SSL_SESSION_free(s);
        env.fc.clear();
    }

    T_CASE("no ticket was ever issued under a key name that is not the fleet's") {
        printf("# %lu tickets audited\n", tickets_seen);
        T_TRUE(tickets_seen > 2000);
        T_EQ_INT(tickets_foreign, 0);
    }

    SSL_SESSION_free(s12);
    SSL_SESSION_free(s13);
    SSL_CTX_free(sa);
    SSL_CTX_free(sb);
    SSL_CTX_free(c12);
    SSL_CTX_free(c13);
    hsmkeys_close(ha);
    hsmkeys_close(hb);
    fe_cleanup(&env);
    return t_done();
}
