/*
 * ticket_cb_test.c - engine/src/ticket_cb.c end to end: two servers whose tokens
 * hold the same master resume each other's tickets; other masters and
 * domains do not, and cost no token call; epoch boundaries, renewals, the
 * window, and clock skew between servers.  Name-based virtual hosts: two
 * domains on one address, with the SSL_CTX switched by a servername
 * callback (nginx) or a client_hello callback (Apache's mod_ssl); each
 * resumes its own tickets across servers, and one's ticket offered to the
 * other gets a full handshake and costs no token call.
 */
#include <stdlib.h>
#include <time.h>
#include <strings.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "softhsm.h"
#include "tls.h"
#include "../../engine/src/sni.h"

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

/* The metrics count what went on the wire: hsmkeys_tickets_issued_total
 * grows by the tickets the client received, hsmkeys_tickets_resumed_total
 * by one per resumption. */
static void counted(int version, const char *vname, hsmkeys_ctx *a)
{
    SSL_CTX *sa = server(a, version), *c = t_client_ctx(version);
    hsmkeys_stats s0, s1, s2;
    char name[160];
    t_hs h1, h2;
    snprintf(name, sizeof name, "%s: a full handshake counts the tickets sent, a resumption one "
             "resumption and its renewals", vname);
    T_CASE(name) {
        hsmkeys_get_stats(a, &s0);
        T_EQ_INT(t_handshake(c, sa, NULL, &h1), 0);
        hsmkeys_get_stats(a, &s1);
        T_EQ_INT(h1.tickets_received, version == TLS1_3_VERSION ? 2 : 1);
        T_EQ_INT(s1.tickets_issued - s0.tickets_issued, h1.tickets_received);
        T_EQ_INT(s1.tickets_resumed - s0.tickets_resumed, 0);
        T_EQ_INT(t_handshake(c, sa, h1.session, &h2), 0);
        hsmkeys_get_stats(a, &s2);
        T_EQ_INT(h2.resumed, 1);
        T_EQ_INT(s2.tickets_resumed - s1.tickets_resumed, 1);
        T_EQ_INT(s2.tickets_issued - s1.tickets_issued, h2.tickets_received);
    }
    t_hs_clear(&h1); t_hs_clear(&h2);
    SSL_CTX_free(sa); SSL_CTX_free(c);
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

/* ---- name-based virtual hosts ------------------------------------------
 *
 * One "server" = a start SSL_CTX (the default virtual host, a.test) and a
 * virtual host SSL_CTX (b.test); c.test is a third virtual host without
 * hsmkeys.  Two such servers S1/S2 hold the same master (a1/a2 contexts of
 * domain a.test, b1/b2 of domain b.test): a client alternating between
 * them is the load balancer's round robin.
 */
typedef struct vserver {
    SSL_CTX *start, *vhost_b, *vhost_c;
    hsmkeys_ctx *a, *b;
} vserver;

static SSL_CTX *vhost_for(vserver *v, const char *name)
{
    if (name != NULL && strcasecmp(name, "b.test") == 0)
        return v->vhost_b;
    if (name != NULL && strcasecmp(name, "c.test") == 0)
        return v->vhost_c;
    return NULL;
}

/* nginx: the servername callback runs after the ticket was decrypted. */
static int servername_switch(SSL *s, int *al, void *arg)
{
    SSL_CTX *to = vhost_for(arg, SSL_get_servername(s, TLSEXT_NAMETYPE_host_name));
    (void)al;
    if (to != NULL)
        SSL_set_SSL_CTX(s, to);
    return SSL_TLSEXT_ERR_OK;
}

/* mod_ssl: the client_hello callback runs before anything is parsed. */
static int client_hello_switch(SSL *s, int *al, void *arg)
{
    const unsigned char *ext;
    size_t len;
    char name[HK_SNI_MAX + 1];
    SSL_CTX *to;
    (void)al;
    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &ext, &len) == 1
        && hk_sni_parse(ext, len, name) && (to = vhost_for(arg, name)) != NULL)
        SSL_set_SSL_CTX(s, to);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* The nginx integration's job: the server name -> that host's context. */
static hsmkeys_ctx *select_by_name(SSL *s, const char *name, void *arg)
{
    vserver *v = arg;
    (void)s;
    if (name != NULL && strcasecmp(name, "b.test") == 0)
        return v->b;
    if (name != NULL && strcasecmp(name, "c.test") == 0)
        return NULL;
    return v->a; /* the default server */
}

static void vserver_make(vserver *v, int version, int apache, hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    v->a = a;
    v->b = b;
    v->start = server(a, version);
    v->vhost_b = server(b, version);
    v->vhost_c = t_server_ctx(version, "EC"); /* tickets on, no hsmkeys */
    if (v->vhost_c == NULL)
        abort();
    if (apache) {
        SSL_CTX_set_client_hello_cb(v->start, client_hello_switch, v);
    } else {
        SSL_CTX_set_tlsext_servername_callback(v->start, servername_switch);
        SSL_CTX_set_tlsext_servername_arg(v->start, v);
        if (hsmkeys_ssl_set_selector(v->start, select_by_name, v) != HSMKEYS_OK)
            abort();
    }
}

static void vserver_free(vserver *v)
{
    SSL_CTX_free(v->start); SSL_CTX_free(v->vhost_b); SSL_CTX_free(v->vhost_c);
}

/* Token calls of every context of the two servers. */
static uint64_t all_calls(vserver *v1, vserver *v2)
{
    return calls(v1->a) + calls(v1->b) + calls(v2->a) + calls(v2->b);
}

static int name_of(hsmkeys_ctx *hk, const unsigned char name[16])
{
    unsigned char aes[32], hmac[32];
    int renew, rc = hsmkeys_decrypt_key(hk, name, aes, hmac, &renew);
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    return rc == HSMKEYS_OK;
}

static void vhosts(int version, const char *vname, int apache,
                   hsmkeys_ctx *a1, hsmkeys_ctx *b1, hsmkeys_ctx *a2, hsmkeys_ctx *b2)
{
    vserver v1, v2;
    SSL_CTX *c = t_client_ctx(version);
    const char *style = apache ? "client_hello switch" : "servername switch + selector";
    hsmkeys_stats before, after;
    char what[200];
    t_hs ha, hb, h1, h2, h3;
    uint64_t calls0;
    int i, resumed;

    vserver_make(&v1, version, apache, a1, b1);
    vserver_make(&v2, version, apache, a2, b2);
    memset(&ha, 0, sizeof ha); memset(&hb, 0, sizeof hb);

    snprintf(what, sizeof what, "%s, %s: each virtual host resumes its own domain's tickets across servers", vname, style);
    T_CASE(what) {
        const char *hosts[2] = { "a.test", "B.Test" };
        for (i = 0; i < 2; i++) {
            hsmkeys_ctx *mine = i ? b1 : a1, *theirs = i ? a1 : b1;
            T_EQ_INT(t_handshake_sni(c, v1.start, hosts[i], NULL, &h1), 0);
            T_TRUE(h1.has_ticket);
            T_TRUE(name_of(mine, h1.ticket_name));    /* issued under its domain */
            T_TRUE(!name_of(theirs, h1.ticket_name));
            T_EQ_INT(t_handshake_sni(c, v2.start, hosts[i], h1.session, &h2), 0);
            T_EQ_INT(h2.resumed, 1);
            T_EQ_INT(t_handshake_sni(c, v1.start, hosts[i], h2.session ? h2.session : h1.session, &h3), 0);
            T_EQ_INT(h3.resumed, 1);
            if (i == 0) { ha = h3; memset(&h3, 0, sizeof h3); }
            else { hb = h3; memset(&h3, 0, sizeof h3); }
            t_hs_clear(&h1); t_hs_clear(&h2); t_hs_clear(&h3);
        }
    }

    snprintf(what, sizeof what, "%s, %s: 200 reconnects per host alternating servers all resume", vname, style);
    T_CASE(what) {
        for (i = 0, resumed = 0; i < 400; i++) {
            t_hs *h = (i & 2) ? &hb : &ha;
            t_hs n;
            if (t_handshake_sni(c, (i & 1) ? v1.start : v2.start, (i & 2) ? "b.test" : "a.test",
                                h->session, &n) == 0 && n.resumed)
                resumed++;
            if (n.session != NULL) {
                t_hs_clear(h);
                *h = n;
            } else {
                t_hs_clear(&n);
            }
        }
        T_EQ_INT(resumed, 400);
    }

    snprintf(what, sizeof what, "%s, %s: a.test's ticket offered to b.test: full handshake, refused as foreign, 0 token calls", vname, style);
    T_CASE(what) {
        hsmkeys_get_stats(b2, &before);
        calls0 = all_calls(&v1, &v2);
        T_EQ_INT(t_handshake_sni(c, v2.start, "b.test", ha.session, &h1), 0);
        hsmkeys_get_stats(b2, &after);
        T_EQ_INT(h1.resumed, 0);
        T_EQ_INT(after.refused_foreign - before.refused_foreign, 1);
        T_EQ_INT(all_calls(&v1, &v2) - calls0, 0);
        T_TRUE(h1.has_ticket && name_of(b2, h1.ticket_name)); /* and b.test's new ticket */
        t_hs_clear(&h1);
    }

    snprintf(what, sizeof what, "%s, %s: b.test's ticket offered to a.test: full handshake, refused as foreign, 0 token calls", vname, style);
    T_CASE(what) {
        hsmkeys_get_stats(a1, &before);
        calls0 = all_calls(&v1, &v2);
        T_EQ_INT(t_handshake_sni(c, v1.start, "a.test", hb.session, &h1), 0);
        hsmkeys_get_stats(a1, &after);
        T_EQ_INT(h1.resumed, 0);
        T_EQ_INT(after.refused_foreign - before.refused_foreign, 1);
        T_EQ_INT(all_calls(&v1, &v2) - calls0, 0);
        T_TRUE(h1.has_ticket && name_of(a1, h1.ticket_name));
        t_hs_clear(&h1);
        /* no server name: the default server's domain */
        T_EQ_INT(t_handshake_sni(c, v1.start, NULL, hb.session, &h2), 0);
        T_EQ_INT(h2.resumed, 0);
        T_TRUE(h2.has_ticket && name_of(a1, h2.ticket_name));
        t_hs_clear(&h2);
    }

    snprintf(what, sizeof what, "%s, %s: a virtual host without hsmkeys gets no ticket and resumes none", vname, style);
    T_CASE(what) {
        hsmkeys_get_stats(a1, &before);
        calls0 = all_calls(&v1, &v2);
        T_EQ_INT(t_handshake_sni(c, v1.start, "c.test", ha.session, &h1), 0);
        hsmkeys_get_stats(a1, &after);
        T_EQ_INT(h1.resumed, 0);
        T_EQ_INT(h1.has_ticket, 0);
        T_EQ_INT(after.tickets_resumed, before.tickets_resumed);
        T_EQ_INT(all_calls(&v1, &v2) - calls0, 0);
        t_hs_clear(&h1);
    }
    t_hs_clear(&ha); t_hs_clear(&hb);
    vserver_free(&v1); vserver_free(&v2);
    SSL_CTX_free(c);
}

/* Without the per-connection choice, OpenSSL 3.0 decrypts under the
 * default server and encrypts under the virtual host: record the order. */
static int order_sni_ran, order_dec_before_sni, order_dec_name_null;
static int order_sn_cb(SSL *s, int *al, void *arg)
{
    (void)s; (void)al; (void)arg;
    order_sni_ran = 1;
    return SSL_TLSEXT_ERR_OK;
}
static hsmkeys_ctx *order_select(SSL *s, const char *name, void *arg)
{
    if (!order_sni_ran && SSL_get_servername(s, TLSEXT_NAMETYPE_host_name) == NULL)
        order_dec_name_null++;   /* OpenSSL has not parsed server_name yet */
    if (!order_sni_ran && name != NULL && strcmp(name, "b.test") == 0)
        order_dec_before_sni++;  /* but the ClientHello gave us the name */
    return arg;
}

static void openssl_order(int version, const char *vname, hsmkeys_ctx *a)
{
    SSL_CTX *s = server(a, version), *c = t_client_ctx(version);
    char what[200];
    t_hs h1, h2;

    SSL_CTX_set_tlsext_servername_callback(s, order_sn_cb);
    hsmkeys_ssl_set_selector(s, order_select, a);
    snprintf(what, sizeof what, "%s: OpenSSL decrypts the ticket before the servername callback; the name comes from the ClientHello", vname);
    T_CASE(what) {
        T_EQ_INT(t_handshake_sni(c, s, "b.test", NULL, &h1), 0);
        order_sni_ran = order_dec_before_sni = order_dec_name_null = 0;
        T_EQ_INT(t_handshake_sni(c, s, "b.test", h1.session, &h2), 0);
        T_EQ_INT(h2.resumed, 1);
        T_EQ_INT(order_dec_name_null, 1);
        T_EQ_INT(order_dec_before_sni, 1);
    }
    t_hs_clear(&h1); t_hs_clear(&h2);
    SSL_CTX_free(s); SSL_CTX_free(c);
}

int main(void)
{
    t_hsm h;
    hsmkeys_ctx *a, *b, *other_master, *other_domain, *ea, *eb, *va1, *vb1, *va2, *vb2;

    if (t_fleet_setup(&h) != 0)
        return 1;
    a = t_open(&h, "S1", "www.example.com", NULL, NULL, &clock_a);
    b = t_open(&h, "S2", "www.example.com", NULL, NULL, &clock_b);
    other_master = t_open(&h, "S3", "www.example.com", NULL, NULL, &clock_b);
    other_domain = t_open(&h, "S2", "api.example.com", NULL, NULL, &clock_b);
    ea = t_open(&h, "S1", "www.example.com", "60", "120", &clock_a);
    eb = t_open(&h, "S2", "www.example.com", "60", "120", &clock_b);
    va1 = t_open(&h, "S1", "a.test", NULL, NULL, &clock_a);
    vb1 = t_open(&h, "S1", "b.test", NULL, NULL, &clock_a);
    va2 = t_open(&h, "S2", "a.test", NULL, NULL, &clock_b);
    vb2 = t_open(&h, "S2", "b.test", NULL, NULL, &clock_b);
    if (!a || !b || !other_master || !other_domain || !ea || !eb || !va1 || !vb1 || !va2 || !vb2)
        return 1;

    cross_server(TLS1_3_VERSION, "TLS 1.3", a, b);
    cross_server(TLS1_2_VERSION, "TLS 1.2", a, b);
    counted(TLS1_3_VERSION, "TLS 1.3", a);
    counted(TLS1_2_VERSION, "TLS 1.2", a);
    refused(TLS1_3_VERSION, "TLS 1.3: a different master means a full handshake and no token call", a, other_master);
    refused(TLS1_2_VERSION, "TLS 1.2: a different master means a full handshake and no token call", a, other_master);
    refused(TLS1_3_VERSION, "TLS 1.3: a different ticket domain means a full handshake and no token call", a, other_domain);
    refused(TLS1_2_VERSION, "TLS 1.2: a different ticket domain means a full handshake and no token call", a, other_domain);
    epochs(TLS1_3_VERSION, "TLS 1.3", ea, eb);
    epochs(TLS1_2_VERSION, "TLS 1.2", ea, eb);
    steady_state(a, b);
    openssl_order(TLS1_2_VERSION, "TLS 1.2", va1);
    openssl_order(TLS1_3_VERSION, "TLS 1.3", va1);
    vhosts(TLS1_2_VERSION, "TLS 1.2", 0, va1, vb1, va2, vb2);
    vhosts(TLS1_3_VERSION, "TLS 1.3", 0, va1, vb1, va2, vb2);
    vhosts(TLS1_2_VERSION, "TLS 1.2", 1, va1, vb1, va2, vb2);
    vhosts(TLS1_3_VERSION, "TLS 1.3", 1, va1, vb1, va2, vb2);

    hsmkeys_close(a); hsmkeys_close(b); hsmkeys_close(other_master);
    hsmkeys_close(other_domain); hsmkeys_close(ea); hsmkeys_close(eb);
    hsmkeys_close(va1); hsmkeys_close(vb1); hsmkeys_close(va2); hsmkeys_close(vb2);
    t_hsm_cleanup(&h);
    return t_done();
}
