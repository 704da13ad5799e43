/*
 * server.h - hsmkeys-demo-server: a small threaded HTTPS server that names
 * itself ("X-Server: S1") and logs, per connection, whether the handshake
 * resumed, so tests can hold the server's view against the probe's.
 *
 * Layout: main.c (options, listen, accept loop, shutdown), tls.c (SSL_CTX:
 * ephemeral or file certificate; hsmkeys ticket keys or OpenSSL's own random
 * ones in --baseline), session.c (one connection: handshake, request, answer,
 * log line).
 *
 * Threat: clients are untrusted.  Requests are read with a size cap and a
 * timeout, the number of live connections is capped, and nothing a client
 * sends reaches a log line unless reduced to safe characters.  Ticket keys
 * never leave libhsmkeys; the server logs key names and counters only.
 */
#ifndef HSMKEYS_DEMO_SERVER_H
#define HSMKEYS_DEMO_SERVER_H

#include <stdio.h>
#include <pthread.h>
#include <openssl/ssl.h>

#define DS_MAX_OPTS 16

typedef struct ds_opts {
    const char *name;          /* what the server calls itself: S1 */
    const char *listen;        /* ADDR:PORT */
    const char *log_path;      /* per-connection log; NULL: stdout */
    const char *cert, *key;    /* PEM files; NULL: ephemeral self-signed */
    const char *cn;            /* CN of the ephemeral certificate */
    const char *sid_ctx;       /* session id context (same on the fleet) */
    int baseline;              /* OpenSSL's own random ticket keys */
    int nopts;
    char *hk_opts[DS_MAX_OPTS];/* hsmkeys config "name=value" */
    int max_conns;
    int timeout_s;
    const char *metrics;       /* loopback ADDR:PORT for GET /metrics; NULL: none */
} ds_opts;

typedef struct ds_server {
    const ds_opts *o;
    SSL_CTX *ctx;
    FILE *log;
    pthread_mutex_t lock;      /* guards log and live */
    pthread_cond_t idle;
    int live;                  /* connections being served */
    unsigned long served, resumed;
} ds_server;

/* tls.c: NULL and a message on stderr on failure. */
SSL_CTX *ds_tls_ctx(const ds_opts *o);
/* Print libhsmkeys counters (no key material) to stderr. */
void ds_tls_report(const ds_opts *o, SSL_CTX *ctx);

/* session.c: serve one accepted socket (takes ownership of fd). */
void ds_serve(ds_server *s, int fd);

#endif
