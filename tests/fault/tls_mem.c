/*
 * tls_mem.c - in-memory TLS handshakes for the fault and hygiene tests (see
 * tls_mem.h).  Tests only; the threat it helps test is a ticket issued or
 * accepted under the wrong key, which only a real OpenSSL handshake shows.
 */
#include "tls_mem.h"

#include <pthread.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

static EVP_PKEY *tm_key;
static X509 *tm_cert;
static pthread_once_t tm_once = PTHREAD_ONCE_INIT;

static void tm_make_cert(void)
{
    X509_NAME *n;
    tm_key = EVP_EC_gen("P-256");
    tm_cert = X509_new();
    if (!tm_key || !tm_cert)
        return;
    ASN1_INTEGER_set(X509_get_serialNumber(tm_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(tm_cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(tm_cert), 3600L * 24 * 365 * 30);
    X509_set_pubkey(tm_cert, tm_key);
    n = X509_get_subject_name(tm_cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"hsmkeys.test", -1, -1, 0);
    X509_set_issuer_name(tm_cert, n);
    if (!X509_sign(tm_cert, tm_key, EVP_sha256())) {
        X509_free(tm_cert);
        tm_cert = NULL;
    }
}

SSL_CTX *tm_server_ctx(void)
{
    SSL_CTX *ctx;
    pthread_once(&tm_once, tm_make_cert);
    if (!tm_cert)
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hsmkeys-test", 12);
    if (SSL_CTX_use_certificate(ctx, tm_cert) != 1 || SSL_CTX_use_PrivateKey(ctx, tm_key) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tm_client_ctx(int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

/* Step one side; returns 1 when done, 0 when it wants I/O, -1 on error. */
static int tm_step(SSL *s)
{
    int r = SSL_do_handshake(s);
    if (r == 1)
        return 1;
    switch (SSL_get_error(s, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        return -1;
    }
}

int tm_handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *resume, tm_result *r)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *bc = NULL, *bs = NULL;
    int cd = 0, sd = 0, rc = -1, i;
    unsigned char buf[64];

    memset(r, 0, sizeof *r);
    if (!c || !s || !BIO_new_bio_pair(&bc, 0, &bs, 0))
        goto out;
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (resume && SSL_set_session(c, resume) != 1)
        goto out;
    for (i = 0; i < 64 && !(cd && sd); i++) {
        if (!cd && (cd = tm_step(c)) < 0)
            goto out;
        if (!sd && (sd = tm_step(s)) < 0)
            goto out;
    }
    if (!(cd && sd))
        goto out;
    /* TLS 1.3 tickets arrive after the handshake: let the client read them. */
    for (i = 0; i < 4; i++)
        (void)SSL_read(c, buf, sizeof buf);
    r->ok = 1;
    r->reused = SSL_session_reused(c);
    r->session = SSL_get1_session(c);
    if (r->session && SSL_SESSION_has_ticket(r->session)) {
        const unsigned char *t;
        size_t len;
        SSL_SESSION_get0_ticket(r->session, &t, &len);
        if (len >= 16) {
            r->has_ticket = 1;
            memcpy(r->name, t, 16);
        }
    }
    rc = 0;
    /* A clean close: SSL_free of an unfinished connection marks its
     * session not resumable. */
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
out:
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    return rc;
}

void tm_cleanup(void)
{
    X509_free(tm_cert);
    EVP_PKEY_free(tm_key);
    tm_cert = NULL;
    tm_key = NULL;
}
