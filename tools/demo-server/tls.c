/*
 * tls.c - the demo server's SSL_CTX.
 *
 * hsmkeys mode: ticket keys come from libhsmkeys (hsmkeys_ssl_attach): the
 * master stays in the PKCS#11 token and every server of the fleet derives the
 * same epoch keys.  The context's key maintainer (a libhsmkeys thread
 * started right after open) derives them ahead of need and follows rotations
 * on the token, so connection threads never call it.  --baseline: OpenSSL's
 * default, a random ticket key per process, which is the problem hsmkeys
 * fixes.
 * The certificate is ephemeral (P-256 key made in memory, self-signed) unless
 * files are given: the demo then writes no private key anywhere.
 *
 * Threat: a misconfigured hsmkeys server must not quietly run with local
 * random keys; any hsmkeys error is fatal here with libhsmkeys' message.
 */
#include "server.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>

static int ephemeral_cert(SSL_CTX *ctx, const char *cn)
{
    int ok = 0;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pk || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, pk, EVP_sha256()))
        goto out;
    ok = SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, pk) == 1;
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok;
}

static int attach_hsmkeys(SSL_CTX *ctx, const ds_opts *o)
{
    hsmkeys_config *cfg = NULL;
    hsmkeys_ctx *hk = NULL;
    int rc = hsmkeys_config_new(&cfg);
    for (int i = 0; rc == HSMKEYS_OK && i < o->nopts; i++) {
        char *eq = strchr(o->hk_opts[i], '=');
        *eq = '\0';
        rc = hsmkeys_config_set(cfg, o->hk_opts[i], eq + 1);
        if (rc != HSMKEYS_OK)
            fprintf(stderr, "%s: hsmkeys option %s: %s\n", o->name, o->hk_opts[i],
                    hsmkeys_last_error());
        *eq = '=';
    }
    if (rc == HSMKEYS_OK) {
        rc = hsmkeys_open(cfg, &hk);
        if (rc != HSMKEYS_OK)
            fprintf(stderr, "%s: cannot open hsmkeys (%s): %s\n", o->name,
                    hsmkeys_result_name(rc), hsmkeys_last_error());
    }
    if (rc == HSMKEYS_OK) {
        /* The key maintainer thread does every token call from here on;
         * connection threads only read its cache.  It blocks every signal
         * itself: signals stay with the accept loop. */
        int st = hsmkeys_start(hk, 1000);
        if (st == HSMKEYS_E_UNAVAILABLE)
            fprintf(stderr, "%s: warning: no ticket key after 1 s (token failing or slow): "
                    "full handshakes until the key maintainer has it: %s\n", o->name,
                    hsmkeys_last_error());
        else if (st != HSMKEYS_OK) {
            fprintf(stderr, "%s: cannot start the key maintainer (%s): %s\n", o->name,
                    hsmkeys_result_name(st), hsmkeys_last_error());
            rc = st;
        }
    }
    if (rc == HSMKEYS_OK) {
        rc = hsmkeys_ssl_attach(ctx, hk);
        if (rc != HSMKEYS_OK)
            fprintf(stderr, "%s: cannot attach hsmkeys: %s\n", o->name, hsmkeys_last_error());
        else
            fprintf(stderr, "%s: hsmkeys ticket keys, epoch %llds, lifetime %llds, current epoch %llu\n",
                    o->name, (long long)hsmkeys_epoch_seconds(hk),
                    (long long)hsmkeys_lifetime_seconds(hk),
                    (unsigned long long)hsmkeys_current_epoch(hk));
    }
    hsmkeys_close(hk); /* the SSL_CTX holds its own reference */
    hsmkeys_config_free(cfg);
    return rc == HSMKEYS_OK ? 0 : -1;
}

SSL_CTX *ds_tls_ctx(const ds_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)o->sid_ctx,
                                   (unsigned)strlen(o->sid_ctx));
    int ok = o->cert ? SSL_CTX_use_certificate_chain_file(ctx, o->cert) == 1 &&
                       SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) == 1
                     : ephemeral_cert(ctx, o->cn);
    if (!ok) {
        char e[200];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        fprintf(stderr, "%s: cannot set up the certificate: %s\n", o->name, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->baseline) {
        fprintf(stderr, "%s: baseline: OpenSSL's own random ticket keys (not shared)\n", o->name);
        return ctx;
    }
    if (attach_hsmkeys(ctx, o)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void ds_tls_report(const ds_opts *o, SSL_CTX *ctx)
{
    hsmkeys_ctx *hk = o->baseline ? NULL : hsmkeys_ssl_get(ctx);
    if (!hk)
        return;
    hsmkeys_stats st;
    hsmkeys_get_stats(hk, &st);
    fprintf(stderr, "%s: hsmkeys stats: issued %llu resumed %llu renewed %llu refused "
            "foreign %llu window %llu unavailable %llu; token derivations %llu calls %llu errors %llu\n",
            o->name, (unsigned long long)st.tickets_issued, (unsigned long long)st.tickets_resumed,
            (unsigned long long)st.tickets_renewed, (unsigned long long)st.refused_foreign,
            (unsigned long long)st.refused_window, (unsigned long long)st.refused_unavailable,
            (unsigned long long)st.token_derivations, (unsigned long long)st.token_calls,
            (unsigned long long)st.token_errors);
}
