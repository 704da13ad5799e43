/* tls.c - in-process TLS handshakes over a memory BIO pair (see tls.h). */
#include <pthread.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "tls.h"

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    t_hs *h = SSL_get_app_data(ssl);
    const unsigned char *tick;
    size_t len;
    if (h == NULL)
        return 0;
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    h->session = sess; /* we keep the reference: return 1 */
    h->tickets_received++;
    SSL_SESSION_get0_ticket(sess, &tick, &len);
    h->has_ticket = len >= 16;
    if (h->has_ticket)
        memcpy(h->ticket_name, tick, 16);
    return 1;
}

X509 *t_self_signed(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *n;
    if (x == NULL)
        return NULL;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (X509_sign(x, key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int make_cert(EVP_PKEY **pkey_out, X509 **cert_out, const char *key_type)
{
    EVP_PKEY *pkey = strcmp(key_type, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *x = pkey != NULL ? t_self_signed(pkey, "hsmkeys.test") : NULL;
    if (x == NULL)
        return -1;
    *pkey_out = pkey;
    *cert_out = x;
    return 0;
}

SSL_CTX *t_server_ctx(int version, const char *key_type)
{
    static EVP_PKEY *keys[2];
    static X509 *certs[2];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int i = strcmp(key_type, "RSA") == 0, ok;
    SSL_CTX *ctx;

    pthread_mutex_lock(&lock); /* tests may make servers from several threads */
    ok = keys[i] != NULL || make_cert(&keys[i], &certs[i], key_type) == 0;
    pthread_mutex_unlock(&lock);
    if (!ok || (ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        return NULL;
    SSL_CTX_use_certificate(ctx, certs[i]);
    SSL_CTX_use_PrivateKey(ctx, keys[i]);
    SSL_CTX_set_min_proto_version(ctx, version ? version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, version);
    /* Tickets only: a server-side session cache would resume on its own. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hsmkeys-test", 12);
    return ctx;
}

SSL_CTX *t_client_ctx(int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return ctx;
}

void t_hs_clear(t_hs *h)
{
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    memset(h, 0, sizeof *h);
}

int t_handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *offer, t_hs *h)
{
    return t_handshake_sni(cctx, sctx, NULL, offer, h);
}

int t_handshake_sni(SSL_CTX *cctx, SSL_CTX *sctx, const char *sni, SSL_SESSION *offer, t_hs *h)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *cb = NULL, *sb = NULL;
    unsigned char buf[16];
    int i, cdone = 0, sdone = 0, rc = -1;

    memset(h, 0, sizeof *h);
    if (c == NULL || s == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
        goto out;
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_app_data(c, h);
    if (sni != NULL && SSL_set_tlsext_host_name(c, sni) != 1)
        goto out;
    if (offer != NULL)
        SSL_set_session(c, offer);
    for (i = 0; i < 64 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1) cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ) goto out;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1) sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) goto out;
        }
    }
    if (!(cdone && sdone))
        goto out;
    /* Server sends a byte; the client's read also consumes the TLS 1.3
     * NewSessionTicket messages that came before it. */
    if (SSL_write(s, "x", 1) != 1 || SSL_read(c, buf, sizeof buf) != 1)
        goto out;
    h->ok = 1;
    h->resumed = SSL_session_reused(c);
    h->version = SSL_version(c);
    {
        /* The client's current session carries the newest ticket (a TLS 1.2
         * renewal replaces it without a new-session callback). */
        SSL_SESSION *cur = h->version == TLS1_2_VERSION ? SSL_get1_session(c) : NULL;
        const unsigned char *tick;
        size_t len = 0;
        if (cur != NULL)
            SSL_SESSION_get0_ticket(cur, &tick, &len);
        if (cur != NULL && len >= 16 && SSL_SESSION_is_resumable(cur)) {
            if (h->session != NULL)
                SSL_SESSION_free(h->session);
            h->session = cur;
            h->has_ticket = 1;
            memcpy(h->ticket_name, tick, 16);
        } else if (cur != NULL) {
            SSL_SESSION_free(cur);
        }
    }
    h->version = SSL_version(c);
    /* A connection freed without a shutdown marks its session not
     * resumable: close both sides cleanly, as a real client would. */
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    rc = 0;
out:
    SSL_set_app_data(c, NULL);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error(); /* a failed handshake must not fail the next one */
    return rc;
}
