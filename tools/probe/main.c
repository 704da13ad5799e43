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
    probe_conn *conns;
    int cap, n;
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
    struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6) };
    nanosleep(&ts, NULL);
}

static void *run_client(void *arg)
{
    worker *w = arg;
    for (;;) {
        if (w->o->count && w->n >= w->o->count)
            break;
        if (w->deadline && mono_s() >= w->deadline)
            break;
        if (w->n == w->cap) {
            int ncap = w->cap ? 2 * w->cap : 256;
            probe_conn *nc = realloc(w->conns, (size_t)ncap * sizeof *nc);
            if (!nc)
                break;
            w->conns = nc;
            w->cap = ncap;
        }
        probe_conn *rec = &w->conns[w->n];
        memset(rec, 0, sizeof *rec);
        rec->client = w->client->index;
        rec->seq = w->n + 1;
        snprintf(rec->id, sizeof rec->id, "%s-%d", w->client->name, rec->seq);
        if (w->n)
            pause_ms(w->o);
        probe_connect_once(w->o, w->ctx, w->client, rec);
        w->n++;
    }
    return NULL;
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

    probe_client *clients = calloc((size_t)o.clients, sizeof *clients);
    worker *w = calloc((size_t)o.clients, sizeof *w);
    pthread_t *th = calloc((size_t)o.clients, sizeof *th);
    probe_conn **conns = calloc((size_t)o.clients, sizeof *conns);
    int *ncon = calloc((size_t)o.clients, sizeof *ncon);
    if (!clients || !w || !th || !conns || !ncon) {
        fprintf(stderr, "hsmkeys-probe: out of memory\n");
        return 2;
    }
    double deadline = o.duration > 0 ? mono_s() + o.duration : 0;
    for (int i = 0; i < o.clients; i++) {
        clients[i].index = i;
        snprintf(clients[i].name, sizeof clients[i].name, "%s%d", o.client_prefix, i + 1);
        w[i] = (worker){ .o = &o, .ctx = ctx, .client = &clients[i], .deadline = deadline };
        if (pthread_create(&th[i], NULL, run_client, &w[i])) {
            fprintf(stderr, "hsmkeys-probe: cannot start client thread %d\n", i + 1);
            return 2;
        }
    }
    for (int i = 0; i < o.clients; i++) {
        pthread_join(th[i], NULL);
        conns[i] = w[i].conns;
        ncon[i] = w[i].n;
    }

    probe_run run = { .o = &o, .clients = clients, .conns = conns, .ncon = ncon };
    int to_stdout = (o.csv_path && !strcmp(o.csv_path, "-")) ||
                    (o.json_path && !strcmp(o.json_path, "-"));
    if (!o.quiet) {
        FILE *f = to_stdout ? stderr : stdout;
        fprintf(f, "hsmkeys-probe: %s:%s%s%s, %d client%s, %s\n", o.host, o.port,
                o.sni ? " sni " : "", o.sni ? o.sni : "", o.clients, o.clients > 1 ? "s" : "",
                o.tls_version == TLS1_2_VERSION ? "TLS 1.2" :
                o.tls_version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2-1.3");
        probe_print_table(&run, f);
    }
    int status = 0;
    if (o.csv_path && probe_write_csv(&run, o.csv_path))
        status = 2;
    if (o.json_path && probe_write_json(&run, o.json_path))
        status = 2;

    int offered, resumed, failed;
    double rate = probe_overall_rate(&run, &offered, &resumed, &failed);
    for (int i = 0; i < o.clients; i++)
        for (int j = 0; j < ncon[i]; j++)
            if (!conns[i][j].ok) {
                fprintf(stderr, "hsmkeys-probe: %s: %s\n", conns[i][j].id, conns[i][j].err);
                break; /* first failure per client is enough */
            }
    if (!status && failed) {
        fprintf(stderr, "hsmkeys-probe: %d connection%s failed\n", failed, failed > 1 ? "s" : "");
        status = 1;
    }
    if (!status && o.min_rate >= 0 && rate < o.min_rate) {
        fprintf(stderr, "hsmkeys-probe: resumption rate %.1f%% is below --min-rate %.1f%%\n",
                rate, o.min_rate);
        status = 1;
    }
    for (int i = 0; i < o.clients; i++) {
        if (clients[i].session) SSL_SESSION_free(clients[i].session);
        free(conns[i]);
    }
    free(clients); free(w); free(th); free(conns); free(ncon);
    SSL_CTX_free(ctx);
    return status;
}
