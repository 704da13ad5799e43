/*
 * ticket_cb.c - the OpenSSL session-ticket key callback (hsmkeys_ssl.h).
 *
 * Layout: each SSL_CTX carries, in its ex_data, an attachment holding a
 * reference to the hsmkeys context and the AES-256-CBC cipher fetched once
 * (fetching per handshake costs a provider lookup).  Key names, IVs and the
 * ticket format are OpenSSL's: name(16) || IV(16) || AES-256-CBC(state) ||
 * HMAC-SHA256.
 *
 * Threats: tickets from the wire are hostile.  The name alone decides which
 * key is used; names of another master or domain, or outside the window,
 * are refused before any token call (the context guarantees it) and the
 * handshake falls back to a full one.  OpenSSL verifies the HMAC before it
 * decrypts.  Key copies on the stack are wiped on every path.
 */
#include <string.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <hsmkeys/hsmkeys_ssl.h>

typedef struct hk_ssl_attachment {
    hsmkeys_ctx *hk;
    EVP_CIPHER *cipher;
} hk_ssl_attachment;

static int hk_ex_index = -1;
static pthread_once_t hk_ex_once = PTHREAD_ONCE_INIT;

static void attachment_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                            long argl, void *argp)
{
    hk_ssl_attachment *a = ptr;
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (a == NULL)
        return;
    hsmkeys_close(a->hk);
    EVP_CIPHER_free(a->cipher);
    OPENSSL_free(a);
}

static void ex_index_init(void)
{
    hk_ex_index = SSL_CTX_get_ex_new_index(0, "hsmkeys", NULL, NULL, attachment_free);
}

static hk_ssl_attachment *attachment_of(SSL_CTX *ctx)
{
    if (hk_ex_index < 0)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, hk_ex_index);
}

static int set_mac_key(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, HSMKEYS_HMAC_KEY_LEN);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* Returns 1 (ok), 2 (ok, renew), 0 (no key: full handshake / no ticket),
 * -1 (internal error), as OpenSSL defines. */
static int hk_ticket_key_cb(SSL *s, unsigned char name[16], unsigned char *iv,
                            EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    hk_ssl_attachment *a = attachment_of(SSL_get_SSL_CTX(s));
    unsigned char aes[HSMKEYS_AES_KEY_LEN], hmac[HSMKEYS_HMAC_KEY_LEN];
    int renew = 0, ret;

    if (a == NULL)
        return 0;
    if (enc) {
        if (hsmkeys_encrypt_key(a->hk, name, aes, hmac) != HSMKEYS_OK)
            return 0; /* no fleet key: issue no ticket rather than a local one */
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex2(cctx, a->cipher, aes, iv, NULL) != 1 ||
            set_mac_key(hctx, hmac) != 1)
            ret = -1;
        else
            ret = 1;
    } else {
        if (hsmkeys_decrypt_key(a->hk, name, aes, hmac, &renew) != HSMKEYS_OK)
            return 0; /* foreign, expired or unavailable: full handshake */
        if (set_mac_key(hctx, hmac) != 1 ||
            EVP_DecryptInit_ex2(cctx, a->cipher, aes, iv, NULL) != 1)
            ret = -1;
        else if (renew || SSL_version(s) == TLS1_3_VERSION)
            ret = 2; /* TLS 1.3: a fresh ticket per resumption, as RFC 8446
                      * C.4 asks clients to use each ticket once */
        else
            ret = 1;
    }
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    return ret;
}

int hsmkeys_ssl_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk)
{
    hk_ssl_attachment *a;

    if (ssl_ctx == NULL || hk == NULL)
        return HSMKEYS_E_INVALID;
    pthread_once(&hk_ex_once, ex_index_init);
    if (hk_ex_index < 0)
        return HSMKEYS_E_NOMEM;
    a = OPENSSL_zalloc(sizeof *a);
    if (a == NULL)
        return HSMKEYS_E_NOMEM;
    a->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (a->cipher == NULL) {
        OPENSSL_free(a);
        return HSMKEYS_E_NOMEM;
    }
    hsmkeys_ctx_up_ref(hk);
    a->hk = hk;
    /* Replacing an earlier attachment frees it through the ex_data callback
     * only at SSL_CTX_free, so drop it here. */
    {
        hk_ssl_attachment *old = attachment_of(ssl_ctx);
        if (SSL_CTX_set_ex_data(ssl_ctx, hk_ex_index, a) != 1) {
            attachment_free(NULL, a, NULL, 0, 0, NULL);
            return HSMKEYS_E_NOMEM;
        }
        if (old != NULL)
            attachment_free(NULL, old, NULL, 0, 0, NULL);
    }
    SSL_CTX_clear_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_timeout(ssl_ctx, (long)hsmkeys_lifetime_seconds(hk));
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ssl_ctx, hk_ticket_key_cb) != 1)
        return HSMKEYS_E_INVALID;
    return HSMKEYS_OK;
}

hsmkeys_ctx *hsmkeys_ssl_get(SSL_CTX *ssl_ctx)
{
    hk_ssl_attachment *a = ssl_ctx != NULL ? attachment_of(ssl_ctx) : NULL;
    return a != NULL ? a->hk : NULL;
}
