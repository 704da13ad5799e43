/*
 * summary.c - hsmkeys-probe --summary: the whole run as one key=value line,
 * the one format scripts read (tests/lib/probe_summary.sh), so no test or
 * benchmark parses the JSON or the table on its own.
 *
 * Layout (one line, keys in this order, values decimal; rate with two
 * decimals, -1 when there was no reconnect):
 *   hsmkeys-probe-summary v=1 connections failed reconnects resumed rate
 *     offered offered_resumed renewals followups followups_resumed
 *     followups_cross followups_renewed backends unnamed epochs
 * reconnects/resumed/rate: the table's "all" row (a reconnect is a completed
 * connection started after its client had received a session).  offered:
 * connections started after a session, completed or not, that offered one;
 * offered_resumed: of those, resumed.  followups: completed connections after
 * their client's first completed one; followups_resumed: of those, offered a
 * ticket and resumed; _cross: ... on another backend than that client's
 * previous completed connection; _renewed: ... with a renewed ticket.
 * backends: distinct non-empty backend names of completed connections (at
 * most PROBE_BACKENDS_SHOWN + 1, as in the table); unnamed: 1 if a completed
 * connection named none.  epochs: distinct hsmkeys epochs of the tickets
 * received.  Bump v= when a key changes meaning; keys are only added.
 *
 * Threat: none beyond report.c's: only counts are written, no names.
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tally {
    int connections, failed, reconnects, resumed, offered, offered_resumed, renewals;
    int followups, followups_resumed, followups_cross, followups_renewed;
    int backends, unnamed, epochs;
} tally;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void count_backend(char names[][PROBE_BACKEND_MAX], tally *t, const char *name)
{
    int i;
    if (!name[0]) {
        t->unnamed = 1;
        return;
    }
    for (i = 0; i < t->backends && i < PROBE_BACKENDS_SHOWN; i++)
        if (!strcmp(names[i], name))
            return;
    if (t->backends < PROBE_BACKENDS_SHOWN)
        snprintf(names[t->backends], PROBE_BACKEND_MAX, "%s", name);
    if (t->backends <= PROBE_BACKENDS_SHOWN) /* the rest count once, as "(other)" */
        t->backends++;
}

static int tally_run(const probe_run *r, tally *t)
{
    static char names[PROBE_BACKENDS_SHOWN][PROBE_BACKEND_MAX];
    int cap = 0, ne = 0;
    uint64_t *epochs;

    memset(t, 0, sizeof *t);
    for (int i = 0; i < r->o->clients; i++)
        cap += r->clients[i].n;
    epochs = calloc((size_t)cap + 1, sizeof *epochs);
    if (!epochs)
        return -1;
    for (int i = 0; i < r->o->clients; i++) {
        const char *prev = NULL; /* backend of this client's previous completed connection */
        for (int j = 0; j < r->clients[i].n; j++) {
            const probe_conn *c = &r->clients[i].conns[j];
            uint64_t e;
            t->connections++;
            if (c->new_has_name && probe_name_epoch(c->new_name, &e))
                epochs[ne++] = e;
            if (c->reconnect && c->offered) {
                t->offered++;
                t->offered_resumed += c->resumed;
            }
            if (!c->ok) {
                t->failed++;
                continue;
            }
            count_backend(names, t, c->backend);
            if (c->reconnect) {
                t->reconnects++;
                t->resumed += c->resumed;
            }
            t->renewals += c->renewed;
            if (prev) {
                t->followups++;
                if (c->offered && c->resumed) {
                    t->followups_resumed++;
                    t->followups_cross += strcmp(prev, c->backend) != 0;
                    t->followups_renewed += c->renewed != 0;
                }
            }
            prev = c->backend;
        }
    }
    qsort(epochs, (size_t)ne, sizeof *epochs, cmp_u64);
    for (int k = 0; k < ne; k++)
        t->epochs += k == 0 || epochs[k] != epochs[k - 1];
    free(epochs);
    return 0;
}

int probe_write_summary(const probe_run *r, const char *path)
{
    tally t;
    FILE *f;
    int rc;

    if (tally_run(r, &t))
        return -1;
    f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "hsmkeys-probe: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "hsmkeys-probe-summary v=1 connections=%d failed=%d reconnects=%d resumed=%d "
               "rate=%.2f offered=%d offered_resumed=%d renewals=%d followups=%d "
               "followups_resumed=%d followups_cross=%d followups_renewed=%d backends=%d "
               "unnamed=%d epochs=%d\n",
            t.connections, t.failed, t.reconnects, t.resumed,
            t.reconnects ? 100.0 * t.resumed / t.reconnects : -1.0, t.offered, t.offered_resumed,
            t.renewals, t.followups, t.followups_resumed, t.followups_cross, t.followups_renewed,
            t.backends, t.unnamed, t.epochs);
    rc = f == stdout ? fflush(f) : fclose(f);
    return rc ? -1 : 0;
}
