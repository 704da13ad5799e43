/*
 * report.c - hsmkeys-probe's summaries: per client, per backend and overall
 * (connections, full, resumed, failed, rate, median handshake time full vs
 * resumed, renewals), the key names seen, and the CSV and JSON outputs.
 *
 * Rate = resumed / reconnects, a reconnect being a completed connection
 * started after the client had received a session: a client's first
 * connection has nothing to offer and does not count against it, but a
 * server that stops issuing tickets (the client then has nothing left to
 * offer) does.
 *
 * Threat: backend names and errors come from the network or OpenSSL; they are
 * already reduced to safe characters (conn.c), and JSON strings are escaped
 * here all the same.  A hostile server can invent a new backend name per
 * connection: at most PROBE_BACKENDS_SHOWN names get their own row, every
 * later one is counted under "(other)", so memory stays linear in the run.
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct agg {
    char name[PROBE_BACKEND_MAX];
    int conns, failed, full, resumed, offered, renewals; /* offered: reconnects */
    double *full_ms, *res_ms;   /* handshake times */
    int nfull_ms, nres_ms;
} agg;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double rate_of(const agg *a)
{
    return a->offered ? 100.0 * a->resumed / a->offered : -1; /* -1: no reconnect */
}

static int total_conns(const probe_run *r)
{
    int n = 0;
    for (int i = 0; i < r->o->clients; i++)
        n += r->clients[i].n;
    return n;
}

static void agg_add(agg *a, const probe_conn *c)
{
    a->conns++;
    if (!c->ok) { a->failed++; return; }
    if (c->reconnect) a->offered++;
    if (c->resumed) { a->resumed++; a->res_ms[a->nres_ms++] = c->handshake_ms; }
    else { a->full++; a->full_ms[a->nfull_ms++] = c->handshake_ms; }
    if (c->renewed) a->renewals++;
}

static int agg_init(agg *a, const char *name, int cap)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->full_ms = calloc((size_t)cap + 1, sizeof(double));
    a->res_ms = calloc((size_t)cap + 1, sizeof(double));
    return a->full_ms && a->res_ms ? 0 : -1;
}

static void agg_free(agg *a) { free(a->full_ms); free(a->res_ms); }

static const char *backend_of(const probe_conn *c) { return c->backend[0] ? c->backend : "?"; }

/* Aggregates: [0..clients) per client, then per backend, then "all". */
typedef struct summary {
    agg *clients, *backends, all;
    int nbackends;
} summary;

static int summarise(const probe_run *r, summary *s)
{
    int cap = total_conns(r), nc = r->o->clients;
    memset(s, 0, sizeof *s);
    s->clients = calloc((size_t)nc, sizeof(agg));
    s->backends = calloc(PROBE_BACKENDS_SHOWN + 1, sizeof(agg));
    if (!s->clients || !s->backends || agg_init(&s->all, "all", cap))
        return -1;
    for (int i = 0; i < nc; i++) {
        if (agg_init(&s->clients[i], r->clients[i].name, r->clients[i].n))
            return -1;
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            agg_add(&s->clients[i], c);
            agg_add(&s->all, c);
            if (!c->ok)
                continue;
            int b;
            for (b = 0; b < s->nbackends; b++)
                if (!strcmp(s->backends[b].name, backend_of(c)))
                    break;
            if (b == s->nbackends && s->nbackends == PROBE_BACKENDS_SHOWN + 1)
                b = PROBE_BACKENDS_SHOWN; /* "(other)" exists: count it there */
            if (b == s->nbackends) {
                const char *name = b == PROBE_BACKENDS_SHOWN ? "(other)" : backend_of(c);
                if (agg_init(&s->backends[b], name, cap))
                    return -1;
                s->nbackends++;
            }
            agg_add(&s->backends[b], c);
        }
    }
    return 0;
}

static void summary_free(summary *s, int nc)
{
    for (int i = 0; s->clients && i < nc; i++) agg_free(&s->clients[i]);
    for (int b = 0; b < s->nbackends; b++) agg_free(&s->backends[b]);
    agg_free(&s->all);
    free(s->clients);
    free(s->backends);
}

double probe_overall_rate(const probe_run *r, int *offered, int *resumed, int *failed)
{
    int o = 0, res = 0, f = 0;
    for (int i = 0; i < r->o->clients; i++)
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            if (!c->ok) { f++; continue; }
            if (c->reconnect) { o++; res += c->resumed; }
        }
    if (offered) *offered = o;
    if (resumed) *resumed = res;
    if (failed) *failed = f;
    return o ? 100.0 * res / o : -1;
}

static void ms_cell(char *buf, size_t len, double v)
{
    if (v < 0) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", v);
}

static void print_row(FILE *f, const char *label, agg *a)
{
    char fm[24], rm[24];
    ms_cell(fm, sizeof fm, median(a->full_ms, a->nfull_ms));
    ms_cell(rm, sizeof rm, median(a->res_ms, a->nres_ms));
    char rate[16];
    if (rate_of(a) < 0) snprintf(rate, sizeof rate, "-");
    else snprintf(rate, sizeof rate, "%.1f%%", rate_of(a));
    fprintf(f, "  %-10s %6d %6d %8d %7d %8s %9s %11s %9d\n", label, a->conns, a->full,
            a->resumed, a->failed, rate, fm, rm, a->renewals);
}

static void print_header(FILE *f, const char *first)
{
    fprintf(f, "  %-10s %6s %6s %8s %7s %8s %9s %11s %9s\n", first, "conns", "full",
            "resumed", "failed", "rate", "full ms", "resumed ms", "renewals");
}

/* Distinct key names of the tickets received, in order of first sight. */
static void print_names(const probe_run *r, FILE *f)
{
    int cap = total_conns(r), n = 0;
    const probe_conn **seen = calloc((size_t)cap + 1, sizeof *seen);
    int *count = calloc((size_t)cap + 1, sizeof *count);
    if (!seen || !count)
        goto out;
    for (int i = 0; i < r->o->clients; i++)
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            if (!c->new_has_name)
                continue;
            int k;
            for (k = 0; k < n; k++)
                if (!memcmp(seen[k]->new_name, c->new_name, PROBE_NAME_LEN))
                    break;
            if (k == n)
                seen[n++] = c;
            count[k]++;
        }
    fprintf(f, "ticket key names seen: %d\n", n);
    for (int k = 0; k < n && k < 12; k++) {
        char hex[33];
        uint64_t e;
        probe_name_hex(seen[k]->new_name, hex);
        fprintf(f, "  %s  tickets %-5d lifetime hint %us", hex, count[k], seen[k]->lifetime_hint);
        if (probe_name_epoch(seen[k]->new_name, &e))
            fprintf(f, "  hsmkeys epoch %llu", (unsigned long long)e);
        fputc('\n', f);
    }
    if (n > 12)
        fprintf(f, "  ... %d more\n", n - 12);
out:
    free(seen);
    free(count);
}

void probe_print_table(const probe_run *r, FILE *f)
{
    summary s;
    if (summarise(r, &s)) {
        fprintf(stderr, "hsmkeys-probe: out of memory\n");
        summary_free(&s, r->o->clients);
        return;
    }
    fprintf(f, "per client:\n");
    print_header(f, "client");
    for (int i = 0; i < r->o->clients; i++)
        print_row(f, s.clients[i].name, &s.clients[i]);
    fprintf(f, "per backend (as named by the server):\n");
    print_header(f, "backend");
    for (int b = 0; b < s.nbackends; b++)
        print_row(f, s.backends[b].name, &s.backends[b]);
    print_row(f, "all", &s.all);
    print_names(r, f);
    if (s.all.offered)
        fprintf(f, "resumed %d of %d reconnects: %.1f%%\n", s.all.resumed, s.all.offered, rate_of(&s.all));
    else
        fprintf(f, "resumed 0 of 0 reconnects: no reconnect completed\n");
    summary_free(&s, r->o->clients);
}

static FILE *open_out(const char *path)
{
    if (!strcmp(path, "-"))
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "hsmkeys-probe: cannot write %s\n", path);
    return f;
}

static int close_out(FILE *f)
{
    if (f == stdout)
        return fflush(f) ? -1 : 0;
    return fclose(f) ? -1 : 0;
}

static void epoch_cell(char *buf, size_t len, int has, const unsigned char *name)
{
    uint64_t e;
    if (has && probe_name_epoch(name, &e)) snprintf(buf, len, "%llu", (unsigned long long)e);
    else buf[0] = '\0';
}

int probe_write_csv(const probe_run *r, const char *path)
{
    FILE *f = open_out(path);
    if (!f)
        return -1;
    fprintf(f, "client,seq,id,backend,ok,reconnect,offered,resumed,version,handshake_ms,"
               "offered_name,offered_epoch,new_name,new_epoch,lifetime_hint,renewed,error\n");
    for (int i = 0; i < r->o->clients; i++)
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            char on[33] = "", nn[33] = "", oe[24], ne[24];
            if (c->offered_has_name) probe_name_hex(c->offered_name, on);
            if (c->new_has_name) probe_name_hex(c->new_name, nn);
            epoch_cell(oe, sizeof oe, c->offered_has_name, c->offered_name);
            epoch_cell(ne, sizeof ne, c->new_has_name, c->new_name);
            char err[PROBE_ERR_MAX];
            snprintf(err, sizeof err, "%s", c->err);
            for (char *p = err; *p; p++)
                if (*p == ',' || *p == '"' || *p == '\n') *p = ' ';
            fprintf(f, "%s,%d,%s,%s,%d,%d,%d,%d,%s,%.3f,%s,%s,%s,%s,%u,%d,%s\n",
                    r->clients[i].name, c->seq, c->id, c->backend, c->ok, c->reconnect, c->offered,
                    c->resumed, c->version, c->handshake_ms, on, oe, nn, ne,
                    c->lifetime_hint, c->renewed, err);
        }
    return close_out(f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_agg(FILE *f, agg *a)
{
    double fm = median(a->full_ms, a->nfull_ms), rm = median(a->res_ms, a->nres_ms);
    fputs("{\"name\":", f);
    json_str(f, a->name);
    fprintf(f, ",\"connections\":%d,\"full\":%d,\"resumed\":%d,\"failed\":%d,\"reconnects\":%d,"
               "\"rate\":", a->conns, a->full, a->resumed, a->failed, a->offered);
    if (rate_of(a) < 0) fputs("null", f); else fprintf(f, "%.2f", rate_of(a));
    fprintf(f, ",\"renewals\":%d,\"median_full_ms\":", a->renewals);
    if (fm < 0) fputs("null", f); else fprintf(f, "%.3f", fm);
    fputs(",\"median_resumed_ms\":", f);
    if (rm < 0) fputs("null", f); else fprintf(f, "%.3f", rm);
    fputc('}', f);
}

int probe_write_json(const probe_run *r, const char *path)
{
    summary s;
    if (summarise(r, &s)) {
        summary_free(&s, r->o->clients);
        return -1;
    }
    FILE *f = open_out(path);
    if (!f) {
        summary_free(&s, r->o->clients);
        return -1;
    }
    fputs("{\"target\":", f);
    char target[300];
    snprintf(target, sizeof target, "%s:%s", r->o->host, r->o->port);
    json_str(f, target);
    fputs(",\"clients\":[", f);
    for (int i = 0; i < r->o->clients; i++) {
        if (i) fputc(',', f);
        json_agg(f, &s.clients[i]);
    }
    fputs("],\"backends\":[", f);
    for (int b = 0; b < s.nbackends; b++) {
        if (b) fputc(',', f);
        json_agg(f, &s.backends[b]);
    }
    fputs("],\"all\":", f);
    json_agg(f, &s.all);
    fputs(",\"connections\":[", f);
    int first = 1;
    for (int i = 0; i < r->o->clients; i++)
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            char nn[33] = "";
            uint64_t e;
            if (c->new_has_name) probe_name_hex(c->new_name, nn);
            fputs(first ? "\n" : ",\n", f);
            first = 0;
            fputs("{\"id\":", f); json_str(f, c->id);
            fputs(",\"client\":", f); json_str(f, r->clients[i].name);
            fputs(",\"backend\":", f); json_str(f, c->backend);
            fprintf(f, ",\"ok\":%s,\"reconnect\":%s,\"offered\":%s,\"resumed\":%s,\"version\":",
                    c->ok ? "true" : "false", c->reconnect ? "true" : "false",
                    c->offered ? "true" : "false",
                    c->resumed ? "true" : "false");
            json_str(f, c->version);
            fprintf(f, ",\"handshake_ms\":%.3f,\"ticket_name\":", c->handshake_ms);
            json_str(f, nn);
            fputs(",\"ticket_epoch\":", f);
            if (c->new_has_name && probe_name_epoch(c->new_name, &e))
                fprintf(f, "%llu", (unsigned long long)e);
            else
                fputs("null", f);
            fprintf(f, ",\"lifetime_hint\":%u,\"renewed\":%s,\"error\":", c->lifetime_hint,
                    c->renewed ? "true" : "false");
            json_str(f, c->err);
            fputc('}', f);
        }
    fputs("]}\n", f);
    summary_free(&s, r->o->clients);
    return close_out(f);
}
