/*
 * tls.h - in-process TLS handshakes over a memory BIO pair, for tests and
 * benchmarks: no sockets, no network noise.
 */
#ifndef HSMKEYS_TEST_TLS_H
#define HSMKEYS_TEST_TLS_H

#include <openssl/ssl.h>

/* version: TLS1_2_VERSION or TLS1_3_VERSION (pins min and max), or 0 for
 * TLS 1.2 and 1.3.  key_type: "EC" (P-256) or "RSA" (2048); one key and
 * certificate per type, shared by every server of the process. */
SSL_CTX *t_server_ctx(int version, const char *key_type);
SSL_CTX *t_client_ctx(int version);
/* A self-signed certificate (CN = cn, valid one day) for `key`; NULL on error. */
X509 *t_self_signed(EVP_PKEY *key, const char *cn);

typedef struct t_hs {
    int ok;                       /* handshake completed */
    int resumed;                  /* SSL_session_reused on the client */
    int version;                  /* negotiated */
    SSL_SESSION *session;         /* client's newest session (caller frees) */
    int has_ticket;
    unsigned char ticket_name[16];/* first 16 bytes of the newest ticket */
    unsigned tickets_received;    /* new session tickets seen by the client */
} t_hs;

/* One connection: offer `offer` (may be NULL), complete the handshake, let
 * the client process post-handshake tickets.  Returns 0 if ok. */
int t_handshake(SSL_CTX *client, SSL_CTX *server, SSL_SESSION *offer, t_hs *out);
/* The same, the client sending `sni` as its server name (NULL: none). */
int t_handshake_sni(SSL_CTX *client, SSL_CTX *server, const char *sni,
                    SSL_SESSION *offer, t_hs *out);
void t_hs_clear(t_hs *h);

#endif
