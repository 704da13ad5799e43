/*
 * ticket_cb.c - the OpenSSL session-ticket key callback (hsmkeys_ssl.h).
 *
 * Layout: each SSL_CTX carries, in its ex_data, an attachment holding a
 * reference to the hsmkeys context (or none) and an optional selector for
 * name-based virtual hosts; the AES-256-CBC cipher is fetched once per
 * process (fetching per handshake costs a provider lookup).  Each SSL carries, in
 * its ex_data, the context chosen for the connection at its first ticket
 * callback (with a reference), or a marker for "none"; it lasts as long
 * as the SSL (an SSL reused with SSL_clear() for another connection would
 * keep it: servers here make one SSL per connection).  Key names, IVs and
 * the ticket format are OpenSSL's: name(16) || IV(16) || AES-256-CBC(state)
 * || HMAC-SHA256.
 *
 * Why one choice per connection: OpenSSL 3.0 calls the callback of the
 * connection's session_ctx (the SSL_CTX it started on) and decrypts a
 * ticket inside ssl_get_prev_session(), which tls_early_post_process_
 * client_hello() runs before tls_parse_all_extensions() parses server_name
 * and final_server_name() runs the servername callback; a ticket issued
 * after that switch is encrypted while SSL_get_SSL_CTX() is the virtual
 * host's.  Looking the context up in SSL_get_SSL_CTX() at each call would
 * decrypt under one virtual host's keys and encrypt under another's.
 *
 * Threats: tickets from the wire are hostile.  The name alone decides which
 * key is used; names of another master or domain (another virtual host's
 * domain included), or outside the window, are refused before any token
 * call (the context guarantees it) and the handshake falls back to a full
 * one.  OpenSSL verifies the HMAC before it decrypts.  The server name is
 * parsed from hostile bytes (sni.c).  Key copies on the stack are wiped on
 * every path.
 */
#include <string.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "../../hsmkeys/src/error.h"
#include "sni.h"

typedef struct hk_ssl_attachment {
    hsmkeys_ctx *hk;               /* NULL: none attached */
    hsmkeys_ssl_select_fn select;  /* NULL: use hk */
    void *select_arg;
} hk_ssl_attachment;

static int hk_ex_index = -1;      /* SSL_CTX -> attachment */
static int hk_conn_index = -1;    /* SSL -> chosen context or &hk_no_ctx */
static pthread_once_t hk_ex_once = PTHREAD_ONCE_INIT;
static const char hk_no_ctx = 0;  /* address marks "chosen: none" */
static EVP_CIPHER *hk_cipher;     /* fetched once, kept for the process */

static void attachment_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                            long argl, void *argp)
{
    hk_ssl_attachment *a = ptr;
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (a == NULL)
        return;
    hsmkeys_close(a->hk);
    OPENSSL_free(a);
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp)
{
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (ptr != NULL && ptr != (void *)&hk_no_ctx)
        hsmkeys_close(ptr);
}

/* No dup callback: OpenSSL 3.0's SSL_dup copies ex_data only of an SSL
 * that has not started its handshake, before any ticket callback set it
 * (a started one is shared by reference). */
static void ex_index_init(void)
{
    hk_ex_index = SSL_CTX_get_ex_new_index(0, "hsmkeys", NULL, NULL, attachment_free);
    hk_conn_index = SSL_get_ex_new_index(0, "hsmkeys connection", NULL, NULL, conn_free);
    hk_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static hk_ssl_attachment *attachment_of(SSL_CTX *ctx)
{
    if (hk_ex_index < 0 || ctx == NULL)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, hk_ex_index);
}

/* The server name the client sent: from the ClientHello while OpenSSL
 * processes it (ticket decryption happens then, before server_name is
 * parsed), else from the parsed extension (ticket encryption). */
static const char *client_server_name(SSL *s, char buf[HK_SNI_MAX + 1])
{
    const unsigned char *ext;
    size_t len;

    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &ext, &len) == 1)
        return hk_sni_parse(ext, len, buf) ? buf : NULL;
    return SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
}

/* The connection's context, chosen at its first call and kept. */
static hsmkeys_ctx *conn_ctx(SSL *s)
{
    void *chosen = SSL_get_ex_data(s, hk_conn_index);
    hk_ssl_attachment *a;
    hsmkeys_ctx *hk = NULL;
    char name[HK_SNI_MAX + 1];

    if (chosen != NULL)
        return chosen == (void *)&hk_no_ctx ? NULL : chosen;
    a = attachment_of(SSL_get_SSL_CTX(s));
    if (a != NULL)
        hk = a->select != NULL ? a->select(s, client_server_name(s, name), a->select_arg)
                               : a->hk;
    if (hk == NULL) {
        SSL_set_ex_data(s, hk_conn_index, (void *)&hk_no_ctx);
        return NULL;
    }
    hsmkeys_ctx_up_ref(hk);
    if (SSL_set_ex_data(s, hk_conn_index, hk) != 1) {
        hsmkeys_close(hk);
        return NULL; /* no memory: no ticket, full handshake */
    }
    return hk;
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
    hsmkeys_ctx *hk = conn_ctx(s);
    unsigned char aes[HSMKEYS_AES_KEY_LEN], hmac[HSMKEYS_HMAC_KEY_LEN];
    const EVP_CIPHER *cipher = hk_cipher; /* set before any callback runs */
    int renew = 0, ret;

    if (hk == NULL)
        return 0;
    if (enc) {
        if (hsmkeys_encrypt_key(hk, name, aes, hmac) != HSMKEYS_OK)
            return 0; /* no fleet key: issue no ticket rather than a local one */
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex2(cctx, cipher, aes, iv, NULL) != 1 ||
            set_mac_key(hctx, hmac) != 1)
            ret = -1;
        else
            ret = 1;
    } else {
        if (hsmkeys_decrypt_key(hk, name, aes, hmac, &renew) != HSMKEYS_OK)
            return 0; /* foreign, expired or unavailable: full handshake */
        if (set_mac_key(hctx, hmac) != 1 ||
            EVP_DecryptInit_ex2(cctx, cipher, aes, iv, NULL) != 1)
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

/* The attachment of ssl_ctx, created (and the callback installed) if
 * missing. */
static int attachment_get(SSL_CTX *ssl_ctx, const char *fn, hk_ssl_attachment **out)
{
    hk_ssl_attachment *a;

    pthread_once(&hk_ex_once, ex_index_init);
    if (hk_ex_index < 0 || hk_conn_index < 0)
        return hk_fail(HSMKEYS_E_NOMEM, "%s: OpenSSL has no ex_data index left", fn);
    if (hk_cipher == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "%s: OpenSSL offers no AES-256-CBC "
                       "(check the providers loaded by OPENSSL_CONF)", fn);
    a = attachment_of(ssl_ctx);
    if (a == NULL) {
        a = OPENSSL_zalloc(sizeof *a);
        if (a == NULL)
            return hk_fail(HSMKEYS_E_NOMEM, "%s: out of memory", fn);
        if (SSL_CTX_set_ex_data(ssl_ctx, hk_ex_index, a) != 1) {
            attachment_free(NULL, a, NULL, 0, 0, NULL);
            return hk_fail(HSMKEYS_E_NOMEM, "%s: out of memory", fn);
        }
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ssl_ctx, hk_ticket_key_cb) != 1)
        return hk_fail(HSMKEYS_E_INVALID, "%s: OpenSSL refused the ticket key callback", fn);
    *out = a;
    return HSMKEYS_OK;
}

int hsmkeys_ssl_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk)
{
    hk_ssl_attachment *a;

    if (ssl_ctx == NULL || hk == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_ssl_attach: %s is NULL",
                       ssl_ctx == NULL ? "the SSL_CTX" : "the hsmkeys context");
    HK_TRY(attachment_get(ssl_ctx, "hsmkeys_ssl_attach", &a));
    hsmkeys_ctx_up_ref(hk);
    hsmkeys_close(a->hk); /* an earlier attachment's (NULL: none) */
    a->hk = hk;
    SSL_CTX_clear_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_timeout(ssl_ctx, (long)hsmkeys_lifetime_seconds(hk));
    return HSMKEYS_OK;
}

int hsmkeys_ssl_set_selector(SSL_CTX *start_ctx, hsmkeys_ssl_select_fn fn, void *arg)
{
    hk_ssl_attachment *a;

    if (start_ctx == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_ssl_set_selector: the SSL_CTX is NULL");
    HK_TRY(attachment_get(start_ctx, "hsmkeys_ssl_set_selector", &a));
    a->select = fn;
    a->select_arg = fn != NULL ? arg : NULL;
    return HSMKEYS_OK;
}

hsmkeys_ctx *hsmkeys_ssl_get(SSL_CTX *ssl_ctx)
{
    hk_ssl_attachment *a = attachment_of(ssl_ctx);
    return a != NULL ? a->hk : NULL;
}
