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
 *
 * One context per connection.  OpenSSL runs the ticket callback of the
 * SSL_CTX a connection started on (its session_ctx: the default server of
 * the address), for encryption and decryption alike, and in OpenSSL 3.0 it
 * decrypts the ticket of a TLS 1.2 or 1.3 ClientHello before the servername
 * callback can switch to the virtual host the client named.  So the
 * callback chooses the hsmkeys context once per connection, at its first
 * call, and uses that one context for every ticket of the connection:
 *  - the start SSL_CTX has a selector (hsmkeys_ssl_set_selector): the
 *    selector picks by the server name the client sent (read from the
 *    ClientHello itself while it is processed, so also before the switch);
 *  - otherwise: the context attached to the SSL_CTX in use at that first
 *    call (for servers that switch SSL_CTX in a client_hello callback, as
 *    Apache's mod_ssl does, that is already the virtual host's).
 * A ticket of another virtual host's domain is then refused as foreign (a
 * full handshake, no token call); a connection whose choice is "none" gets
 * no ticket and resumes none.
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
 * Attaching again replaces the previous context (a selector stays).
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID (NULL argument), HSMKEYS_E_NOMEM;
 * on failure hsmkeys_last_error() says why.
 */
int hsmkeys_ssl_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk);

/* The context attached to ssl_ctx, or NULL.  No reference is taken. */
hsmkeys_ctx *hsmkeys_ssl_get(SSL_CTX *ssl_ctx);

/*
 * Chooses the context of one connection.  server_name is the host name the
 * client sent, exactly as sent (not lower-cased), or NULL when it sent
 * none.  Returns the context whose keys encrypt and decrypt every ticket
 * of the connection, or NULL for none (no ticket is issued or resumed).
 * It runs on the handshake path, at most once per connection, possibly
 * before the server's own servername callback: it must not block.  The
 * context it returns must be open; the connection takes a reference of its
 * own for its lifetime.
 */
typedef hsmkeys_ctx *(*hsmkeys_ssl_select_fn)(SSL *ssl, const char *server_name,
                                               void *arg);

/*
 * Give start_ctx, an SSL_CTX that connections start on (the default server
 * of an address), a selector for name-based virtual hosts, and install the
 * ticket callback on it.  fn == NULL removes the selector.  arg is passed to
 * fn as is and must outlive start_ctx.  Options and session timeout of
 * start_ctx are left as they are (hsmkeys_ssl_attach sets them).
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID (start_ctx NULL), HSMKEYS_E_NOMEM;
 * on failure hsmkeys_last_error() says why.
 */
int hsmkeys_ssl_set_selector(SSL_CTX *start_ctx, hsmkeys_ssl_select_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* HSMKEYS_SSL_H */
