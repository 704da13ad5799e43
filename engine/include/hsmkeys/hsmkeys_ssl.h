/*
 * hsmkeys_ssl.h - attach libhsmkeys to an OpenSSL SSL_CTX.
 *
 * hsmkeys_ssl_attach() installs a session-ticket key callback
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb) that encrypts tickets with the
 * current epoch's key and decrypts those of the fleet's window.  It covers
 * TLS 1.2 and TLS 1.3 tickets, and sets the session timeout (the ticket
 * lifetime hint) to the configured ticket lifetime.
 *
 * Callback results: 1 resumed; 2 resumed and a new ticket is issued (ticket
 * of an older or newer epoch); 0 full handshake (foreign, expired or
 * unavailable key); on encryption, 0 means no ticket is issued: hsmkeys
 * never falls back to a random local key, which would silently break fleet
 * resumption.
 */
#ifndef HSMKEYS_SSL_H
#define HSMKEYS_SSL_H

#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Install the callback on ssl_ctx.  The SSL_CTX takes a reference on hk
 * (dropped when the SSL_CTX is freed), so the caller may close its own.
 * Attaching again replaces the previous context.
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID (NULL argument), HSMKEYS_E_NOMEM.
 */
int hsmkeys_ssl_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk);

/* The context attached to ssl_ctx, or NULL.  No reference is taken. */
hsmkeys_ctx *hsmkeys_ssl_get(SSL_CTX *ssl_ctx);

#ifdef __cplusplus
}
#endif
#endif /* HSMKEYS_SSL_H */
