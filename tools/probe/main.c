/*
 * main.c - hsmkeys-probe: run the clients (one thread each, each with its own
 * newest ticket), then print the summary and set the exit status.
 *
 * Threat: a probe pointed at a slow or hostile server must still end: every
 * connection has I/O timeouts (conn.c) and the run is bounded by --count or
 * --duration.  Exit status: 0 ok, 1 failures or rate below --min-rate,
 * 2 usage or set-up error.
 */
#include "probe.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

typedef struct worker {
    const probe_opts *o;
    SSL_CTX *ctx;
    probe_client *client;
    double deadline; /* monotonic seconds, 0 = none */
} worker;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(const probe_opts *o)
{
    if (o->interval_ms <= 0)
        return;
    double ms = o->interval_ms;
    if (o->jitter) {
        unsigned int r = 0;
        RAND_bytes((unsigned char *)&r, sizeof r);
        ms *= 0.5 + (double)(r % 1001) / 1000.0; /* 50% .. 150% */
    }
    long ns = (long)(ms * 1e6);
    struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
    nanosleep(&ts, NULL);
}

/* Store a finished record in the client's list.  0 ok, -1 out of memory. */
static int keep(probe_client *c, const probe_conn *rec)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->n == c->cap) {
        int ncap = c->cap ? 2 * c->cap : 256;
        probe_conn *nc = realloc(c->conns, (size_t)ncap * sizeof *nc);
        if (nc) { c->conns = nc; c->cap = ncap; }
        else rc = -1;
    }
    if (!rc)
        c->conns[c->n++] = *rec;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* One connection loop of a client; --parallel loops share the client. */
static void *run_loop(void *arg)
{
    worker *w = arg;
    probe_client *c = w->client;
    for (int first = 1;; first = 0) {
        if (!first)
            pause_ms(w->o);
        if (w->deadline && mono_s() >= w->deadline)
            break;
        pthread_mutex_lock(&c->lock);
        int seq = (!w->o->count || c->started < w->o->count) ? ++c->started : 0;
        pthread_mutex_unlock(&c->lock);
        if (!seq)
            break;
        probe_conn rec;
        memset(&rec, 0, sizeof rec);
        rec.client = c->index;
        rec.seq = seq;
        snprintf(rec.id, sizeof rec.id, "%s-%s-%d", w->o->run_tag, c->name, seq);
        probe_connect_once(w->o, w->ctx, c, &rec);
        if (keep(c, &rec))
            break;
    }
    return NULL;
}

static int cmp_seq(const void *a, const void *b)
{
    return ((const probe_conn *)a)->seq - ((const probe_conn *)b)->seq;
}

int main(int argc, char **argv)
{
    probe_opts o;
    int rc = probe_parse_args(argc, argv, &o);
    if (rc == 3)
        return 0;
    if (rc)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = probe_ssl_ctx(&o);
    if (!ctx)
        return 2;

    unsigned char tag[3];
    RAND_bytes(tag, sizeof tag);
    snprintf(o.run_tag, sizeof o.run_tag, "%02x%02x%02x", tag[0], tag[1], tag[2]);
    int nloops = o.clients * o.parallel;
    probe_client *clients = calloc((size_t)o.clients, sizeof *clients);
    worker *w = calloc((size_t)nloops, sizeof *w);
    pthread_t *th = calloc((size_t)nloops, sizeof *th);
    if (!clients || !w || !th) {
        fprintf(stderr, "hsmkeys-probe: out of memory\n");
        return 2;
    }
    /* Warm-up: the first handshake of a process pays OpenSSL's lazy
     * algorithm loading; do it off the record, with a throwaway client. */
    for (int k = 0; k < o.warmup; k++) {
        probe_client wc = { .index = -1 };
        probe_conn rec = { .seq = k + 1 };
        pthread_mutex_init(&wc.lock, NULL);
        snprintf(rec.id, sizeof rec.id, "%s-warmup-%d", o.run_tag, k + 1);
        probe_connect_once(&o, ctx, &wc, &rec);
        while (wc.npool > 0)
            SSL_SESSION_free(wc.pool[--wc.npool]);
        pthread_mutex_destroy(&wc.lock);
    }
    double deadline = o.duration > 0 ? mono_s() + o.duration : 0;
    for (int i = 0; i < o.clients; i++) {
        clients[i].index = i;
        pthread_mutex_init(&clients[i].lock, NULL);
        snprintf(clients[i].name, sizeof clients[i].name, "%s%d", o.client_prefix, i + 1);
    }
    for (int k = 0; k < nloops; k++) {
        w[k] = (worker){ .o = &o, .ctx = ctx, .client = &clients[k % o.clients], .deadline = deadline };
        if (pthread_create(&th[k], NULL, run_loop, &w[k])) {
            fprintf(stderr, "hsmkeys-probe: cannot start client thread %d\n", k + 1);
            return 2;
        }
    }
    for (int k = 0; k < nloops; k++)
        pthread_join(th[k], NULL);
    for (int i = 0; i < o.clients; i++)
        qsort(clients[i].conns, (size_t)clients[i].n, sizeof *clients[i].conns, cmp_seq);

    probe_run run = { .o = &o, .clients = clients };
    int to_stdout = (o.csv_path && !strcmp(o.csv_path, "-")) ||
                    (o.json_path && !strcmp(o.json_path, "-")) ||
                    (o.summary_path && !strcmp(o.summary_path, "-"));
    if (!o.quiet) {
        FILE *f = to_stdout ? stderr : stdout;
        fprintf(f, "hsmkeys-probe: %s:%s%s%s, %d client%s x %d parallel, %s, run %s\n", o.host,
                o.port, o.sni ? " sni " : "", o.sni ? o.sni : "", o.clients,
                o.clients > 1 ? "s" : "", o.parallel,
                o.tls_version == TLS1_2_VERSION ? "TLS 1.2" :
                o.tls_version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2-1.3", o.run_tag);
        probe_print_table(&run, f);
    }
    int status = 0;
    if (o.csv_path && probe_write_csv(&run, o.csv_path))
        status = 2;
    if (o.json_path && probe_write_json(&run, o.json_path))
        status = 2;
    if (o.summary_path && probe_write_summary(&run, o.summary_path))
        status = 2;

    int offered, resumed, failed;
    double rate = probe_overall_rate(&run, &offered, &resumed, &failed);
    for (int i = 0; i < o.clients; i++)
        for (int j = 0; j < clients[i].n; j++)
            if (!clients[i].conns[j].ok) {
                fprintf(stderr, "hsmkeys-probe: %s: %s\n", clients[i].conns[j].id, clients[i].conns[j].err);
                break; /* first failure per client is enough */
            }
    if (!status && failed) {
        fprintf(stderr, "hsmkeys-probe: %d connection%s failed\n", failed, failed > 1 ? "s" : "");
        status = 1;
    }
    if (!status && o.min_rate >= 0 && rate < 0) {
        fprintf(stderr, "hsmkeys-probe: no reconnect completed: cannot check --min-rate\n");
        status = 1;
    }
    if (!status && o.min_rate >= 0 && rate < o.min_rate) {
        fprintf(stderr, "hsmkeys-probe: resumption rate %.1f%% is below --min-rate %.1f%%\n",
                rate, o.min_rate);
        status = 1;
    }
    for (int i = 0; i < o.clients; i++) {
        while (clients[i].npool > 0) SSL_SESSION_free(clients[i].pool[--clients[i].npool]);
        free(clients[i].conns);
        pthread_mutex_destroy(&clients[i].lock);
    }
    free(clients); free(w); free(th);
    SSL_CTX_free(ctx);
    return status;
}
