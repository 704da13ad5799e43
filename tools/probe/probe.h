/*
 * probe.h - hsmkeys-probe: measures TLS session resumption across a fleet
 * behind a load balancer, against any TLS server.
 *
 * Layout: options.c (command line), ticket.c (what a ticket's first 16 bytes
 * say), conn.c (one connection: TCP, handshake offering the newest ticket,
 * one HTTP GET), report.c (summaries, table, CSV, JSON), main.c (client
 * threads, exit status).
 *
 * Threat: the probe talks to servers it does not trust.  Everything read from
 * the network is bounded (response size, header length, timeouts) and treated
 * as text to print, never as a format.  It holds no secrets: the session
 * tickets it keeps are opaque to it and die with the process.
 */
#ifndef HSMKEYS_PROBE_H
#define HSMKEYS_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <openssl/ssl.h>

#define PROBE_NAME_LEN     16  /* ticket key name: first 16 bytes of a ticket */
#define PROBE_BACKEND_MAX  64
#define PROBE_BACKENDS_SHOWN 64 /* distinct backends reported; the rest: "(other)" */
#define PROBE_ERR_MAX      400
#define PROBE_CLIENT_MAX   64
#define PROBE_POOL         8   /* sessions a client keeps */

typedef struct probe_opts {
    char host[256];
    char port[16];
    const char *sni;            /* NULL: no SNI */
    const char *path;           /* request path */
    const char *backend_header; /* response header naming the backend */
    const char *cafile;         /* verify the server against it; NULL: no check */
    const char *csv_path;       /* per-connection records; "-" = stdout */
    const char *json_path;      /* summary + records; "-" = stdout */
    const char *client_prefix;  /* client names: PREFIX1..PREFIXn */
    int tls_version;            /* 0 (any), TLS1_2_VERSION, TLS1_3_VERSION */
    int count;                  /* connections per client (0: use duration) */
    double duration;            /* seconds; 0: use count */
    int clients;
    int parallel;               /* connection loops per client */
    int warmup;                 /* unrecorded connections before the run */
    char run_tag[8];            /* random, prefixes request ids */
    int interval_ms;
    int jitter;                 /* randomise the interval by +-50% */
    int timeout_s;
    double min_rate;            /* percent; -1: no check */
    int quiet;
} probe_opts;

/* One connection as the client saw it. */
typedef struct probe_conn {
    int client;                 /* index into the clients */
    int seq;                    /* 1-based within the client */
    char id[40];                /* request id sent as X-Probe-Id: 3fa9c1-C1-7 */
    char backend[PROBE_BACKEND_MAX]; /* "" if the server does not say */
    int ok;                     /* handshake and request completed */
    char err[PROBE_ERR_MAX];
    int reconnect;              /* the client held a session before: counts in the rate */
    int offered;                /* a session/ticket was offered */
    int resumed;
    const char *version;        /* "TLSv1.3", static string */
    double handshake_ms;
    int offered_has_name;       /* offered a ticket (not a bare session id) */
    unsigned char offered_name[PROBE_NAME_LEN];
    int new_has_name;           /* received a new ticket on this connection */
    unsigned char new_name[PROBE_NAME_LEN];
    uint32_t lifetime_hint;     /* of the newest ticket received, seconds */
    int renewed;                /* resumed, and a new ticket under another key name */
} probe_conn;

/* ---- options.c ---- */
/* Returns 0, or 2 after printing a message (usage error), or 3 for --help. */
int probe_parse_args(int argc, char **argv, probe_opts *o);
void probe_usage(FILE *f);

/* ---- ticket.c ---- */
/* Ticket key name as hex (33 bytes). */
void probe_name_hex(const unsigned char name[PROBE_NAME_LEN], char out[33]);
/* 1 and *epoch if the name parses as an hsmkeys v1 key name, else 0. */
int probe_name_epoch(const unsigned char name[PROBE_NAME_LEN], uint64_t *epoch);

/* ---- conn.c ---- */
/* A client: one or more connection loops (--parallel) sharing one ticket
 * store, as a busy server's connection pool shares its session cache. */
typedef struct probe_client {
    int index;
    char name[16];
    pthread_mutex_t lock;       /* guards everything below */
    SSL_SESSION *pool[PROBE_POOL]; /* sessions, newest last, owned (conn.c) */
    int npool;
    probe_conn *conns;          /* completed connections, in order of start */
    int n, cap, started;
    int had_session;            /* a session was ever received */
} probe_client;

/* Set up the shared client SSL_CTX (session callback installed).  NULL and a
 * message on stderr on failure. */
SSL_CTX *probe_ssl_ctx(const probe_opts *o);
/* One connection for client c; fills rec (rec->ok says if it worked). */
void probe_connect_once(const probe_opts *o, SSL_CTX *ctx, probe_client *c,
                        probe_conn *rec);

/* ---- report.c ---- */
typedef struct probe_run {
    const probe_opts *o;
    probe_client *clients;      /* clients[i].conns[0..n) */
} probe_run;

/* Overall resumption rate, percent, over reconnects: connections started
 * after the client had received a session; -1 if there was none. */
double probe_overall_rate(const probe_run *r, int *offered, int *resumed, int *failed);
void probe_print_table(const probe_run *r, FILE *f);
int probe_write_csv(const probe_run *r, const char *path);
int probe_write_json(const probe_run *r, const char *path);

#endif /* HSMKEYS_PROBE_H */
