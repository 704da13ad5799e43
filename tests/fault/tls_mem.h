/*
 * tls_mem.h - in-memory TLS handshakes between OpenSSL client and server
 * SSL_CTXs (a BIO pair, no sockets), for tests that drive the ticket
 * callback thousands of times.
 *
 * Servers share one self-signed P-256 certificate and one session id
 * context, as a fleet behind a load balancer does, and keep no server-side
 * session cache: resumption can only come from tickets.
 */
#ifndef HSMKEYS_TLS_MEM_H
#define HSMKEYS_TLS_MEM_H

#include <openssl/ssl.h>

/* Server SSL_CTX (TLS 1.2..1.3, tickets on, no session cache); NULL on error. */
SSL_CTX *tm_server_ctx(void);
/* Client SSL_CTX limited to `version` (TLS1_2_VERSION or TLS1_3_VERSION). */
SSL_CTX *tm_client_ctx(int version);

typedef struct tm_result {
    int ok;                /* handshake completed */
    int reused;            /* session resumed */
    SSL_SESSION *session;  /* client session after the handshake (owned) */
    int has_ticket;        /* session carries a ticket */
    unsigned char name[16];/* first 16 bytes of the ticket (its key name) */
} tm_result;

/* Handshake a new client of cctx (offering `resume`, may be NULL) with a new
 * server of sctx.  Returns 0 and fills r (free r->session), or -1. */
int tm_handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *resume, tm_result *r);

/* Free the certificate and key shared by the server contexts. */
void tm_cleanup(void);

#endif
