/*
 * hk-ticket.c - test helper: issue a TLS session ticket with one hsmkeys
 * context and resume it with another, over in-memory BIO pairs.
 *
 *   hk-ticket issue  --uri URI --domain D [--at T] [--epoch S] [--lifetime S] [--tls13]
 *       full handshake; the client's session (PEM) goes to stdout, to be
 *       piped into "resume" running with another host's SOFTHSM2_CONF.
 *   hk-ticket resume --uri URI --domain D [--at T] ... < session.pem
 *       offers the session; prints "resumed NAME" (exit 0) or "full NAME"
 *       (exit 3), NAME being the hex key name of the ticket offered.
 *   hk-ticket pair   --uri URI --uri2 URI2 --domain D ...
 *       two server contexts in one process (shared token): a ticket from
 *       each must resume on the other.  Prints "pair ok" (exit 0).
 *
 * Owns nothing of the product; it exercises the public API and
 * hsmkeys_ssl_attach the way a server does.  The session travels through a
 * pipe only, never a file.  Exit 1 on setup errors.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>

struct opts {
    const char *mode, *uri, *uri2, *domain, *epoch, *lifetime;
    int64_t at;
    int tls13;
};

static EVP_PKEY *g_key;
static X509 *g_cert;

static int64_t fixed_clock(void *arg)
{
    return *(const int64_t *)arg;
}

static void die(const char *what)
{
    fprintf(stderr, "hk-ticket: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void make_cert(void)
{
    g_key = EVP_EC_gen("P-256");
    g_cert = X509_new();
    if (!g_key || !g_cert)
        die("cannot make a test key");
    ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(g_cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(g_cert), 86400);
    X509_set_pubkey(g_cert, g_key);
    X509_NAME *n = X509_get_subject_name(g_cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"hk-ticket", -1, -1, 0);
    X509_set_issuer_name(g_cert, n);
    if (!X509_sign(g_cert, g_key, EVP_sha256()))
        die("cannot sign the test certificate");
}

static hsmkeys_ctx *open_hk(const struct opts *o, const char *uri, int64_t *clock)
{
    hsmkeys_config *cfg;
    hsmkeys_ctx *hk = NULL;
    if (hsmkeys_config_new(&cfg) != HSMKEYS_OK || hsmkeys_config_set(cfg, "uri", uri) != HSMKEYS_OK ||
        hsmkeys_config_set(cfg, "domain", o->domain) != HSMKEYS_OK ||
        (o->epoch && hsmkeys_config_set(cfg, "epoch", o->epoch) != HSMKEYS_OK) ||
        (o->lifetime && hsmkeys_config_set(cfg, "lifetime", o->lifetime) != HSMKEYS_OK)) {
        fprintf(stderr, "hk-ticket: config: %s\n", hsmkeys_last_error());
        exit(1);
    }
    if (o->at >= 0) {
        *clock = o->at;
        hsmkeys_config_set_clock(cfg, fixed_clock, clock);
    }
    /* SoftHSM2 (directly or behind p11-kit server) may show no token while
     * another process initialises at the same moment; a server would retry
     * too.  Each retry is reported; see the provisioning report. */
    int rc = HSMKEYS_E_NO_TOKEN;
    for (int i = 0; i < 6; i++) {
        rc = hsmkeys_open(cfg, &hk);
        if (rc == HSMKEYS_OK || (rc != HSMKEYS_E_NO_TOKEN && rc != HSMKEYS_E_TOKEN))
            break;
        fprintf(stderr, "# hk-ticket: open failed, retrying: %s\n", hsmkeys_last_error());
        struct timespec ts = {0, 10000000L << i};
        nanosleep(&ts, NULL);
    }
    if (rc != HSMKEYS_OK) {
        fprintf(stderr, "hk-ticket: open: %s\n", hsmkeys_last_error());
        exit(1);
    }
    hsmkeys_config_free(cfg);
    return hk;
}

static SSL_CTX *server_ctx(const struct opts *o, hsmkeys_ctx *hk)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    int v = o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!s || !SSL_CTX_set_min_proto_version(s, v) || !SSL_CTX_set_max_proto_version(s, v) ||
        SSL_CTX_use_certificate(s, g_cert) != 1 || SSL_CTX_use_PrivateKey(s, g_key) != 1 ||
        !SSL_CTX_set_session_id_context(s, (const unsigned char *)"hk-ticket", 9))
        die("cannot make the server context");
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF); /* tickets only */
    if (hsmkeys_ssl_attach(s, hk) != HSMKEYS_OK) {
        fprintf(stderr, "hk-ticket: attach: %s\n", hsmkeys_last_error());
        exit(1);
    }
    return s;
}

static SSL_CTX *client_ctx(const struct opts *o)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    int v = o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!c || !SSL_CTX_set_min_proto_version(c, v) || !SSL_CTX_set_max_proto_version(c, v))
        die("cannot make the client context");
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    return c;
}

/* One connection; returns the client's newest session (caller frees). */
static SSL_SESSION *handshake(SSL_CTX *cc, SSL_CTX *sc, SSL_SESSION *offer, int *resumed)
{
    SSL *c = SSL_new(cc), *s = SSL_new(sc);
    BIO *cb, *sb;
    if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0))
        die("cannot make the connection");
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (offer && !SSL_set_session(c, offer))
        die("cannot offer the session");
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1) cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ) die("client handshake failed");
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1) sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) die("server handshake failed");
        }
    }
    if (!cdone || !sdone)
        die("handshake did not complete");
    unsigned char b;
    for (int i = 0; i < 4; i++) { /* let the client read TLS 1.3 tickets */
        (void)SSL_write(s, "x", 1);
        (void)SSL_read(c, &b, 1);
    }
    *resumed = SSL_session_reused(c);
    SSL_SESSION *sess = SSL_get1_session(c);
    /* A connection freed without shutdown marks its session not resumable. */
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c);
    SSL_free(s);
    return sess;
}

static void ticket_name(const SSL_SESSION *s, char hex[33])
{
    const unsigned char *t = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(s, &t, &len);
    strcpy(hex, "none");
    if (t && len >= 16)
        for (int i = 0; i < 16; i++)
            sprintf(hex + 2 * i, "%02x", t[i]);
}

static int pair_once(const struct opts *o, SSL_CTX *cc, SSL_CTX *a, SSL_CTX *b, const char *what)
{
    int resumed = 0;
    char name[33];
    SSL_SESSION *s1 = handshake(cc, a, NULL, &resumed);
    ticket_name(s1, name);
    SSL_SESSION *s2 = handshake(cc, b, s1, &resumed);
    printf("%s %s %s\n", what, resumed ? "resumed" : "full", name);
    (void)o;
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
    return resumed;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    o.at = -1;
    if (argc < 2)
        die("usage: hk-ticket issue|resume|pair --uri URI [--uri2 URI] --domain D [--at T] "
            "[--epoch S] [--lifetime S] [--tls13]");
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls13")) { o.tls13 = 1; continue; }
        if (!v) die("option without value");
        if (!strcmp(a, "--uri")) o.uri = v;
        else if (!strcmp(a, "--uri2")) o.uri2 = v;
        else if (!strcmp(a, "--domain")) o.domain = v;
        else if (!strcmp(a, "--epoch")) o.epoch = v;
        else if (!strcmp(a, "--lifetime")) o.lifetime = v;
        else if (!strcmp(a, "--at")) o.at = strtoll(v, NULL, 10);
        else die("unknown option");
        i++;
    }
    if (!o.uri || !o.domain)
        die("--uri and --domain are required");
    make_cert();
    int64_t clock1 = 0, clock2 = 0;
    hsmkeys_ctx *hk = open_hk(&o, o.uri, &clock1);
    SSL_CTX *sc = server_ctx(&o, hk), *cc = client_ctx(&o);
    int resumed = 0;
    char name[33];
    if (!strcmp(o.mode, "issue")) {
        SSL_SESSION *s = handshake(cc, sc, NULL, &resumed);
        ticket_name(s, name);
        if (!strcmp(name, "none"))
            die("the server issued no ticket");
        fprintf(stderr, "issued %s\n", name);
        PEM_write_SSL_SESSION(stdout, s);
        SSL_SESSION_free(s);
    } else if (!strcmp(o.mode, "resume")) {
        SSL_SESSION *offer = PEM_read_SSL_SESSION(stdin, NULL, NULL, NULL);
        if (!offer)
            die("no session on stdin");
        ticket_name(offer, name);
        SSL_SESSION *s = handshake(cc, sc, offer, &resumed);
        printf("%s %s\n", resumed ? "resumed" : "full", name);
        SSL_SESSION_free(offer);
        SSL_SESSION_free(s);
    } else if (!strcmp(o.mode, "pair")) {
        if (!o.uri2)
            die("pair needs --uri2");
        hsmkeys_ctx *hk2 = open_hk(&o, o.uri2, &clock2);
        SSL_CTX *sc2 = server_ctx(&o, hk2);
        int ok = pair_once(&o, cc, sc, sc2, "1->2") & pair_once(&o, cc, sc2, sc, "2->1");
        if (ok)
            printf("pair ok\n");
        resumed = ok;
        SSL_CTX_free(sc2);
        hsmkeys_close(hk2);
    } else {
        die("mode must be issue, resume or pair");
    }
    SSL_CTX_free(sc);
    SSL_CTX_free(cc);
    hsmkeys_close(hk);
    X509_free(g_cert);
    EVP_PKEY_free(g_key);
    if (!strcmp(o.mode, "issue"))
        return 0;
    return resumed ? 0 : 3;
}
