/*
 * sesscache.c - item 8: TLS 1.2 session-ID resumption through the sealed
 * session cache on Redis, against ticket resumption and a full handshake,
 * side by side in one run; then the cost of a store outage.
 *
 * Two servers (the fleet's S1 and S2 tokens, ECDSA P-256, TLS 1.2) with the
 * ticket callback and the sealed cache on a real Redis (bench/run.sh starts
 * it on loopback); every handshake goes to the other server than the
 * previous one, so each resumption is a cross-server one.  Variants are
 * interleaved in short slices of CPU time, run by run:
 *   full        a client without the ticket extension offers no session
 *               (the server seals and writes the new one)
 *   ticket      a ticket client resumes
 *   session ID  a client without the ticket extension resumes by ID
 * Figures per handshake: CPU of this process (both ends of the in-process
 * connection, as items 1-2), Redis' own CPU (from /proc), and wall latency
 * (p50, p99; includes the Redis round trip).  Outage: the session-ID client
 * while Redis is stopped (SIGSTOP: every lookup would wait) and while
 * nothing listens (connection refused): latency and CPU per handshake.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "bench.h"
#include "tls.h"
#include "sc_conf.h"
#include "sc_glue.h"
#include "sc_store.h"

#define B_SC_SLICE_NS 40000000LL
#define B_SC_SLICES   8
#define B_SC_MAXLAT   400000

enum { V_FULL, V_TICKET, V_SID, V_N };
static const char *v_name[V_N] = { "full handshake", "ticket resumption", "session-ID resumption (sealed cache)" };

typedef struct variant {
    b_client client;
    uint64_t n, resumed;
    int64_t cpu, redis, wall;
    double *lat;
    size_t nlat;
} variant;

static int64_t redis_cpu_ns(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(buf, sizeof buf, f) == NULL)
        buf[0] = '\0';
    fclose(f);
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (int64_t)(ut + st) * (1000000000LL / sysconf(_SC_CLK_TCK));
}

static void b_log(void *arg, int level, const char *msg)
{
    (void)arg;
    fprintf(stderr, "# store log %d: %s\n", level, msg);
}

static hsmkeys_ctx *open_sc(const t_hsm *h, const char *token)
{
    char uri[700];
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;

    t_uri(uri, sizeof uri, token, h->pin_file);
    if (hsmkeys_config_new(&c) == HSMKEYS_OK &&
        hsmkeys_config_set(c, "uri", uri) == HSMKEYS_OK &&
        hsmkeys_config_set(c, "domain", "bench.example") == HSMKEYS_OK &&
        hsmkeys_config_set(c, "session-cache", "yes") == HSMKEYS_OK &&
        hsmkeys_open(c, &ctx) != HSMKEYS_OK)
        ctx = NULL;
    hsmkeys_config_free(c);
    if (ctx == NULL)
        fprintf(stderr, "hsmkeys-bench: open %s: %s\n", token, hsmkeys_last_error());
    else
        hsmkeys_refresh(ctx);
    return ctx;
}

static SSL_CTX *server(hsmkeys_ctx *hk, sc_store *st)
{
    char err[200];
    SSL_CTX *s = b_server(TLS1_2_VERSION, "EC", hk);
    if (sc_attach(s, hk, "bench.example", st, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "hsmkeys-bench: %s\n", err);
        abort();
    }
    return s;
}

/* Handshakes of variant v until `cpu_ns` of CPU passed; alternating servers. */
static sc_store *b_sc_store;

static void store_stats_line(void)
{
    sc_store_stats ss;
    if (b_sc_store == NULL)
        return;
    sc_store_get_stats(b_sc_store, &ss);
    fprintf(stderr, "# store: %llu writes, %llu dropped, %llu hits, %llu misses, %llu skipped, "
            "%llu failures, %llu connects\n",
            (unsigned long long)ss.writes, (unsigned long long)ss.dropped, (unsigned long long)ss.hits,
            (unsigned long long)ss.misses, (unsigned long long)ss.skipped,
            (unsigned long long)ss.failures, (unsigned long long)ss.connects);
}

static int slice(variant *v, int kind, SSL_CTX **srv, unsigned *turn, int64_t cpu_ns, int rpid,
                 int want_resumed)
{
    int64_t c0 = b_cpu_ns(), r0 = redis_cpu_ns(rpid), m0 = b_mono_ns(), t;
    uint64_t n = 0;

    do {
        int64_t w0 = b_mono_ns();
        int rc = b_connect(&v->client, srv[(*turn)++ % 2], kind != V_FULL);
        double us = (double)(b_mono_ns() - w0) / 1000.0;
        if (rc < 0 || (want_resumed >= 0 && rc != want_resumed)) {
            fprintf(stderr, "hsmkeys-bench: %s: handshake %s\n", v_name[kind],
                    rc < 0 ? "failed" : rc ? "resumed unexpectedly" : "not resumed");
            store_stats_line();
            return -1;
        }
        v->resumed += rc == 1;
        if (v->nlat < B_SC_MAXLAT)
            v->lat[v->nlat++] = us;
        n++;
        t = b_cpu_ns();
    } while (t - c0 < cpu_ns);
    v->n += n;
    v->cpu += t - c0;
    v->wall += b_mono_ns() - m0;
    v->redis += redis_cpu_ns(rpid) - r0;
    return 0;
}

static int init_variant(variant *v, int kind)
{
    memset(v, 0, sizeof *v);
    if (b_client_init(&v->client, TLS1_2_VERSION) != 0 ||
        (v->lat = calloc(B_SC_MAXLAT, sizeof(double))) == NULL)
        return -1;
    /* the full handshake is a session-ID client's too: it gets a session
     * ID (a ticket client gets an empty one) and the server writes it */
    if (kind == V_SID || kind == V_FULL)
        SSL_CTX_set_options(v->client.ctx, SSL_OP_NO_TICKET);
    return 0;
}

static void free_variant(variant *v)
{
    b_client_free(&v->client);
    free(v->lat);
}

static void row_lat(const char *label, variant *v)
{
    char l[200];
    b_sort(v->lat, v->nlat);
    snprintf(l, sizeof l, "%s: latency p50 / p99 / max", label);
    printf("ROW|8 session IDs|%s|%.0f|%.0f|%.0f|us (wall)\n", l, b_quantile(v->lat, v->nlat, 0.5),
           b_quantile(v->lat, v->nlat, 0.99), v->lat[v->nlat - 1]);
}

/* The session-ID client against servers whose store is down (stopped or
 * refusing): every reconnect is a full handshake; how long do they take? */
static int outage(const char *label, SSL_CTX **srv, int rpid, int64_t cpu_ns)
{
    variant v;
    unsigned turn = 0;
    char l[200];
    int rc = -1;

    if (init_variant(&v, V_SID) != 0 || b_connect(&v.client, srv[0], 0) < 0)
        goto out;
    if (slice(&v, V_SID, srv, &turn, cpu_ns, rpid, 0) != 0)
        goto out;
    snprintf(l, sizeof l, "outage, %s: CPU per handshake (all full)", label);
    b_row1("8 session IDs", l, (double)v.cpu / (double)v.n / 1000.0, "us CPU");
    snprintf(l, sizeof l, "outage, %s", label);
    row_lat(l, &v);
    snprintf(l, sizeof l, "outage, %s: handshakes measured", label);
    b_row1("8 session IDs", l, (double)v.n, "handshakes");
    {
        size_t waited = 0;
        for (size_t i = 0; i < v.nlat; i++)
            waited += v.lat[i] >= 5000.0;
        snprintf(l, sizeof l, "outage, %s: handshakes that waited >= the 5 ms timeout (%.1f s run)",
                 label, (double)v.wall / 1e9);
        b_row1("8 session IDs", l, (double)waited, "handshakes");
    }
    rc = 0;
out:
    free_variant(&v);
    return rc;
}

int bench_sesscache(int runs, const char *url, const char *pwfile, int rpid)
{
    static double cpu[V_N][32], rcpu[V_N][32];
    char opt[600], err[400], l[200];
    sc_conf conf, dead;
    sc_store *st = NULL, *st_dead = NULL;
    hsmkeys_ctx *h1, *h2;
    SSL_CTX *srv[2], *srv_dead[2];
    variant v[V_N];
    unsigned turn = 0;
    t_hsm h;
    int i, r, k;

    if (runs > 32)
        runs = 32;
    sc_conf_init(&conf);
    snprintf(opt, sizeof opt, "password-file=%s", pwfile);
    if (sc_conf_url(&conf, url, err, sizeof err) != 0 ||
        sc_conf_option(&conf, opt, err, sizeof err) != 0 ||
        sc_conf_option(&conf, "timeout=5ms", err, sizeof err) != 0) {
        fprintf(stderr, "hsmkeys-bench: %s\n", err);
        return -1;
    }
    if (sc_store_probe(&conf, 1000, err, sizeof err) != 0) {
        fprintf(stderr, "hsmkeys-bench: the store %s: %s\n", url, err);
        return -1;
    }
    if (t_fleet_setup(&h) != 0 || (h1 = open_sc(&h, "S1")) == NULL || (h2 = open_sc(&h, "S2")) == NULL)
        return -1;
    st = sc_store_new(&conf, b_log, NULL);
    b_sc_store = st;
    srv[0] = server(h1, st);
    srv[1] = server(h2, st);
    for (k = 0; k < V_N; k++) {
        if (init_variant(&v[k], k) != 0 || b_connect(&v[k].client, srv[0], 0) < 0)
            return -1;
    }
    /* warm-up (not counted) */
    for (k = 0; k < V_N; k++)
        if (slice(&v[k], k, srv, &turn, 3 * B_SC_SLICE_NS, rpid, k == V_FULL ? 0 : k == V_TICKET ? 1 : -1) != 0)
            return -1;
    for (k = 0; k < V_N; k++)
        v[k].n = v[k].resumed = 0, v[k].cpu = v[k].redis = 0;
    for (r = 0; r < runs; r++) {
        uint64_t n0[V_N];
        int64_t c0[V_N], r0[V_N];
        for (k = 0; k < V_N; k++) {
            n0[k] = v[k].n; c0[k] = v[k].cpu; r0[k] = v[k].redis;
            v[k].nlat = 0;
        }
        for (i = 0; i < B_SC_SLICES * V_N; i++) {
            k = (i + r) % V_N;
            /* a session-ID lookup may time out on a loaded machine (then a
             * full handshake): counted, not fatal */
            if (slice(&v[k], k, srv, &turn, B_SC_SLICE_NS, rpid, k == V_FULL ? 0 : k == V_TICKET ? 1 : -1) != 0)
                return -1;
        }
        for (k = 0; k < V_N; k++) {
            double n = (double)(v[k].n - n0[k]);
            cpu[k][r] = (double)(v[k].cpu - c0[k]) / n / 1000.0;
            rcpu[k][r] = (double)(v[k].redis - r0[k]) / n / 1000.0;
        }
        fprintf(stderr, "# run %d: CPU us/handshake full %.0f, ticket %.0f, session ID %.0f (+ Redis %.1f)\n",
                r + 1, cpu[V_FULL][r], cpu[V_TICKET][r], cpu[V_SID][r], rcpu[V_SID][r]);
    }
    for (k = 0; k < V_N; k++) {
        snprintf(l, sizeof l, "%s: CPU per handshake (both ends)", v_name[k]);
        b_row("8 session IDs", l, cpu[k], (size_t)runs, "us CPU");
        snprintf(l, sizeof l, "%s: Redis CPU per handshake", v_name[k]);
        b_row("8 session IDs", l, rcpu[k], (size_t)runs, "us CPU");
        row_lat(v_name[k], &v[k]);
    }
    b_row1("8 session IDs", "session-ID handshakes resumed (cross-server)",
           100.0 * (double)v[V_SID].resumed / (double)v[V_SID].n, "%");

    {
        sc_store_stats ss;
        store_stats_line();
        sc_store_get_stats(st, &ss);
        b_row1("8 session IDs", "store writes dropped (of all writes)", (double)ss.dropped, "writes");
        b_row1("8 session IDs", "store failures (timeouts, errors) during the run", (double)ss.failures, "failures");
    }
    b_sc_store = NULL;
    /* outage: stopped store (the breaker bounds the waits), refused store */
    if (rpid > 0 && kill(rpid, SIGSTOP) == 0) {
        int orc = outage("Redis stopped (SIGSTOP), timeout 5ms", srv, rpid, 400000000LL);
        kill(rpid, SIGCONT);
        if (orc != 0)
            return -1;
    }
    sc_conf_init(&dead);
    if (sc_conf_url(&dead, "redis://127.0.0.1:1", err, sizeof err) != 0)
        return -1;
    st_dead = sc_store_new(&dead, NULL, NULL);
    srv_dead[0] = server(h1, st_dead);
    srv_dead[1] = server(h2, st_dead);
    if (outage("nothing listens (connection refused)", srv_dead, rpid, 400000000LL) != 0)
        return -1;

    for (k = 0; k < V_N; k++)
        free_variant(&v[k]);
    SSL_CTX_free(srv[0]); SSL_CTX_free(srv[1]);
    SSL_CTX_free(srv_dead[0]); SSL_CTX_free(srv_dead[1]);
    sc_store_free(st);
    sc_store_free(st_dead);
    sc_conf_clear(&conf);
    hsmkeys_close(h1);
    hsmkeys_close(h2);
    t_hsm_cleanup(&h);
    return 0;
}
