/*
 * ticket_cb_test.c - engine/src/ticket_cb.c end to end: two servers whose tokens
 * hold the same master resume each other's tickets; other masters and
 * domains do not, and cost no token call; epoch boundaries, renewals, the
 * window, and clock skew between servers.
 */
#include <stdlib.h>
#include <time.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "softhsm.h"
#include "tls.h"

static int64_t clock_a = 1700000000, clock_b = 1700000000;

static SSL_CTX *server(hsmkeys_ctx *hk, int version)
{
    SSL_CTX *s = t_server_ctx(version, "EC");
    if (s == NULL || hsmkeys_ssl_attach(s, hk) != HSMKEYS_OK)
        abort();
    return s;
}

/* Move the injected clocks.  The maintainer sleeps on the real clock, so
 * after a jump the test lets each context finish one maintenance cycle, as
 * the passing of real time would. */
static void set_clocks(int64_t ta, int64_t tb, hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    __atomic_store_n(&clock_a, ta, __ATOMIC_RELAXED);
    __atomic_store_n(&clock_b, tb, __ATOMIC_RELAXED);
    T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
    T_RC(hsmkeys_refresh(b), HSMKEYS_OK);
}

static uint64_t calls(hsmkeys_ctx *hk)
{
    hsmkeys_stats st;
    hsmkeys_get_stats(hk, &st);
    return st.token_calls;
}

static void cross_server(int version, const char *vname, hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    char name[120];
    SSL_CTX *sa = server(a, version), *sb = server(b, version), *c = t_client_ctx(version);
    t_hs h1, h2, h3;

    snprintf(name, sizeof name, "%s: ticket from server A resumes on server B and back", vname);
    T_CASE(name) {
        T_EQ_INT(t_handshake(c, sa, NULL, &h1), 0);
        T_EQ_INT(h1.resumed, 0);
        T_TRUE(h1.has_ticket);
        T_EQ_INT(t_handshake(c, sb, h1.session, &h2), 0);
        T_EQ_INT(h2.resumed, 1);
        T_EQ_INT(t_handshake(c, sa, h2.session ? h2.session : h1.session, &h3), 0);
        T_EQ_INT(h3.resumed, 1);
        T_EQ_INT(h3.version, version);
    }
    t_hs_clear(&h1); t_hs_clear(&h2); t_hs_clear(&h3);
    SSL_CTX_free(sa); SSL_CTX_free(sb); SSL_CTX_free(c);
}

static void refused(int version, const char *what, hsmkeys_ctx *a, hsmkeys_ctx *x)
{
    SSL_CTX *sa = server(a, version), *sx = server(x, version), *c = t_client_ctx(version);
    hsmkeys_stats before, after;
    t_hs h1, h2;
    T_CASE(what) {
        T_EQ_INT(t_handshake(c, sa, NULL, &h1), 0);
        hsmkeys_get_stats(x, &before);
        T_EQ_INT(t_handshake(c, sx, h1.session, &h2), 0);
        hsmkeys_get_stats(x, &after);
        T_EQ_INT(h2.resumed, 0);
        T_EQ_INT(after.refused_foreign - before.refused_foreign, 1);
        T_EQ_INT(after.token_calls, before.token_calls); /* no token call */
    }
    t_hs_clear(&h1); t_hs_clear(&h2);
    SSL_CTX_free(sa); SSL_CTX_free(sx); SSL_CTX_free(c);
}

static void epochs(int version, const char *vname, hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    SSL_CTX *sa = server(a, version), *sb = server(b, version), *c = t_client_ctx(version);
    char name[160];
    t_hs h1, h2;
    SSL_SESSION *kept = NULL;
    uint64_t e0, e1, epoch_of_ticket;
    hsmkeys_stats before, after;

    /* epoch 60 s, lifetime 120 s: window is [e-2, e+1] */
    set_clocks(1700000000, 1700000000, a, b);
    snprintf(name, sizeof name, "%s: ticket of epoch e resumes in e+1 on the other server and is renewed", vname);
    T_CASE(name) {
        T_EQ_INT(t_handshake(c, sa, NULL, &h1), 0);
        T_EQ_INT(hsmkeys_name_epoch(h1.ticket_name, &e0), HSMKEYS_OK);
        T_EQ_INT(e0, hsmkeys_current_epoch(a));
        T_TRUE(h1.session != NULL);
        kept = h1.session ? SSL_SESSION_dup(h1.session) : NULL; /* using a session may retire it */
        set_clocks(__atomic_load_n(&clock_a, __ATOMIC_RELAXED) + 60, __atomic_load_n(&clock_b, __ATOMIC_RELAXED) + 60, a, b);
        hsmkeys_get_stats(b, &before);
        T_EQ_INT(t_handshake(c, sb, h1.session, &h2), 0);
        hsmkeys_get_stats(b, &after);
        T_EQ_INT(h2.resumed, 1);
        T_EQ_INT(after.tickets_renewed - before.tickets_renewed, 1);
        T_TRUE(h2.has_ticket);
        T_EQ_INT(hsmkeys_name_epoch(h2.ticket_name, &e1), HSMKEYS_OK);
        T_EQ_INT(e1, e0 + 1); /* the renewed ticket is under the current key */
    }
    t_hs_clear(&h2);
    snprintf(name, sizeof name, "%s: ticket is refused once its epoch left the window", vname);
    T_CASE(name) {
        set_clocks(__atomic_load_n(&clock_a, __ATOMIC_RELAXED) + 120, __atomic_load_n(&clock_b, __ATOMIC_RELAXED) + 120, a, b); /* now e0 + 3: window [e0+1, e0+4] */
        hsmkeys_get_stats(b, &before);
        T_EQ_INT(t_handshake(c, sb, kept, &h2), 0);
        hsmkeys_get_stats(b, &after);
        T_EQ_INT(h2.resumed, 0);
        T_EQ_INT(after.refused_window - before.refused_window, 1);
        T_TRUE(hsmkeys_name_epoch(h1.ticket_name, &epoch_of_ticket) == HSMKEYS_OK && epoch_of_ticket == e0);
    }
    t_hs_clear(&h1); t_hs_clear(&h2);
    SSL_SESSION_free(kept);
    snprintf(name, sizeof name, "%s: one epoch of clock skew either way still resumes", vname);
    T_CASE(name) {
        set_clocks(1700000000 + 600, 1700000000 + 660, a, b); /* B is one epoch ahead */
        T_EQ_INT(t_handshake(c, sa, NULL, &h1), 0);
        T_EQ_INT(t_handshake(c, sb, h1.session, &h2), 0);
        T_EQ_INT(h2.resumed, 1);           /* B sees a ticket of e-1 */
        t_hs_clear(&h2);
        t_hs_clear(&h1);
        T_EQ_INT(t_handshake(c, sb, NULL, &h1), 0);
        T_EQ_INT(t_handshake(c, sa, h1.session, &h2), 0);
        T_EQ_INT(h2.resumed, 1);           /* A sees a ticket of e+1 */
    }
    t_hs_clear(&h1); t_hs_clear(&h2);
    set_clocks(1700000000, 1700000000, a, b);
    SSL_CTX_free(sa); SSL_CTX_free(sb); SSL_CTX_free(c);
}

static void steady_state(hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    SSL_CTX *sa = server(a, TLS1_3_VERSION), *sb = server(b, TLS1_3_VERSION);
    SSL_CTX *c = t_client_ctx(TLS1_3_VERSION);
    t_hs h0, h;
    SSL_SESSION *offer;
    int i, resumed = 0;
    uint64_t ca, cb;
    time_t t0;

    T_CASE("10,000 resumed handshakes after warm-up make zero token calls") {
        T_EQ_INT(t_handshake(c, sa, NULL, &h0), 0);
        T_EQ_INT(t_handshake(c, sb, h0.session, &h), 0); /* warm-up */
        offer = h.session;
        h.session = NULL;
        t_hs_clear(&h);
        ca = calls(a);
        cb = calls(b);
        t0 = time(NULL);
        /* Like the seed's clients: alternate servers, offer the newest ticket. */
        for (i = 0; i < 10000; i++) {
            if (t_handshake(c, (i & 1) ? sa : sb, offer, &h) == 0 && h.resumed)
                resumed++;
            if (h.session != NULL) {
                SSL_SESSION_free(offer);
                offer = h.session;
                h.session = NULL;
            }
            t_hs_clear(&h);
        }
        SSL_SESSION_free(offer);
        T_EQ_INT(resumed, 10000);
        /* Handshakes never call the token; the maintainers re-read the
         * generations every 30 s (1 h epochs), whatever the handshake count:
         * on a slow run (sanitizers) such re-reads may fall in the loop. */
        if (time(NULL) - t0 < 25) {
            T_EQ_INT(calls(a) - ca, 0);
            T_EQ_INT(calls(b) - cb, 0);
        } else {
            T_TRUE(calls(a) - ca <= 16 * (uint64_t)((time(NULL) - t0) / 30 + 1));
            T_TRUE(calls(b) - cb <= 16 * (uint64_t)((time(NULL) - t0) / 30 + 1));
        }
        printf("# token calls per 10000 resumed handshakes: %llu\n",
               (unsigned long long)(calls(a) - ca + calls(b) - cb));
    }
    t_hs_clear(&h0);
    SSL_CTX_free(sa); SSL_CTX_free(sb); SSL_CTX_free(c);
}

int main(void)
{
    t_hsm h;
    hsmkeys_ctx *a, *b, *other_master, *other_domain, *ea, *eb;

    if (t_fleet_setup(&h) != 0)
        return 1;
    a = t_open(&h, "S1", "www.example.com", NULL, NULL, &clock_a);
    b = t_open(&h, "S2", "www.example.com", NULL, NULL, &clock_b);
    other_master = t_open(&h, "S3", "www.example.com", NULL, NULL, &clock_b);
    other_domain = t_open(&h, "S2", "api.example.com", NULL, NULL, &clock_b);
    ea = t_open(&h, "S1", "www.example.com", "60", "120", &clock_a);
    eb = t_open(&h, "S2", "www.example.com", "60", "120", &clock_b);
    if (!a || !b || !other_master || !other_domain || !ea || !eb)
        return 1;

    cross_server(TLS1_3_VERSION, "TLS 1.3", a, b);
    cross_server(TLS1_2_VERSION, "TLS 1.2", a, b);
    refused(TLS1_3_VERSION, "TLS 1.3: a different master means a full handshake and no token call", a, other_master);
    refused(TLS1_2_VERSION, "TLS 1.2: a different master means a full handshake and no token call", a, other_master);
    refused(TLS1_3_VERSION, "TLS 1.3: a different ticket domain means a full handshake and no token call", a, other_domain);
    refused(TLS1_2_VERSION, "TLS 1.2: a different ticket domain means a full handshake and no token call", a, other_domain);
    epochs(TLS1_3_VERSION, "TLS 1.3", ea, eb);
    epochs(TLS1_2_VERSION, "TLS 1.2", ea, eb);
    steady_state(a, b);

    hsmkeys_close(a); hsmkeys_close(b); hsmkeys_close(other_master);
    hsmkeys_close(other_domain); hsmkeys_close(ea); hsmkeys_close(eb);
    t_hsm_cleanup(&h);
    return t_done();
}
