/*
 * hsmk_apache_metrics.c - see hsmk_apache_metrics.h.
 *
 * Data: an anonymous shared segment (inherited by the children at fork) of
 * `nrows` rows { pid, seq, m[HSMK_METRICS_CTX] }.  A child claims the first
 * row that is free or whose pid is dead (compare-and-swap), and writes it
 * under seq (odd while writing, one writer: a per-child mutex).  Counters
 * are published minus what the child inherited from the parent at fork (the
 * parent's own token calls at start would count once per child).  A row of
 * a child that exited keeps its last counts until another child claims it;
 * then they drop (Prometheus sees a reset), as at a graceful restart, which
 * makes a new segment.
 */
#include "hsmk_apache_metrics.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ap_mpm.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"
#include "http_log.h"
#include "http_protocol.h"

#include <hsmkeys/hsmkeys.h>

#include "hsmk_apache_ctx.h"

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

#define HSMK_METRICS_CTX 8
#define HSMK_METRICS_MAX_ROWS 4096

typedef struct row {
    volatile apr_uint32_t pid;
    volatile apr_uint32_t seq;
    apr_uint32_t n;
    hsmkeys_metrics m[HSMK_METRICS_CTX];
} row;

static row *rows;               /* the segment (parent and children) */
static int nrows;
static apr_pool_t *rows_pool;   /* the configuration the contexts belong to */
/* this child */
static row *mine;
static hsmkeys_metrics base[HSMK_METRICS_CTX];
static int have_base;
static apr_thread_mutex_t *publish_lock;
static volatile int stopping;
static apr_thread_t *publisher;

void hsmk_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    hsmkeys_ctx *ctx[HSMK_METRICS_CTX];
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    int limit = 0;

    rows = NULL;
    nrows = 0;
    rows_pool = pconf;
    if (hsmk_ctx_list(pconf, ctx, HSMK_METRICS_CTX) == 0)
        return;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1)
        limit = 256;
    if (limit > HSMK_METRICS_MAX_ROWS)
        limit = HSMK_METRICS_MAX_ROWS;
    rv = apr_shm_create(&shm, (apr_size_t)limit * sizeof(row), NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "mod_hsmkeys: no shared memory for the metrics "
                     "(hsmkeys-metrics will show this child only)");
        return;
    }
    rows = apr_shm_baseaddr_get(shm);
    memset(rows, 0, (size_t)limit * sizeof(row));
    nrows = limit;
}

static void publish(void)
{
    hsmkeys_ctx *ctx[HSMK_METRICS_CTX];
    hsmkeys_metrics m;
    int i, b, n;

    if (mine == NULL)
        return;
    n = hsmk_ctx_list(rows_pool, ctx, HSMK_METRICS_CTX);
    apr_thread_mutex_lock(publish_lock);
    __atomic_add_fetch(&mine->seq, 1, __ATOMIC_ACQ_REL);
    for (i = 0; i < n; i++) {
        if (hsmkeys_get_metrics(ctx[i], &m, sizeof m) != HSMKEYS_OK)
            continue;
        if (!have_base)
            base[i] = m;
        m.tickets_issued -= base[i].tickets_issued;
        m.tickets_resumed -= base[i].tickets_resumed;
        m.tickets_renewed -= base[i].tickets_renewed;
        m.refused_foreign -= base[i].refused_foreign;
        m.refused_window -= base[i].refused_window;
        m.refused_unavailable -= base[i].refused_unavailable;
        m.token_derivations -= base[i].token_derivations;
        m.token_calls -= base[i].token_calls;
        m.token_errors -= base[i].token_errors;
        m.derivation_nanoseconds -= base[i].derivation_nanoseconds;
        for (b = 0; b < HSMKEYS_METRICS_BUCKETS; b++)
            m.derivation_buckets[b] -= base[i].derivation_buckets[b];
        mine->m[i] = m;
    }
    mine->n = (apr_uint32_t)n;
    have_base = 1;
    __atomic_add_fetch(&mine->seq, 1, __ATOMIC_ACQ_REL);
    apr_thread_mutex_unlock(publish_lock);
}

static void *APR_THREAD_FUNC publisher_main(apr_thread_t *t, void *arg)
{
    int tick;
    (void)arg;
    while (!stopping) {
        publish();
        for (tick = 0; tick < 10 && !stopping; tick++)
            apr_sleep(apr_time_from_msec(100));
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t child_exit(void *data)
{
    apr_status_t rv;
    (void)data;
    stopping = 1;
    if (publisher != NULL)
        apr_thread_join(&rv, publisher);
    publisher = NULL;
    return APR_SUCCESS;
}

void hsmk_metrics_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_uint32_t me = (apr_uint32_t)getpid();
    int i;

    mine = NULL;
    have_base = 0;
    stopping = 0;
    if (rows == NULL)
        return;
    for (i = 0; i < nrows && mine == NULL; i++) {
        apr_uint32_t pid = rows[i].pid;
        if (pid == 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            if (__atomic_compare_exchange_n(&rows[i].pid, &pid, me, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                mine = &rows[i];
        }
    }
    if (mine == NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_hsmkeys: no free metrics row for child %u: its "
                     "tickets are not counted in hsmkeys-metrics", (unsigned)me);
        return;
    }
    if (apr_thread_mutex_create(&publish_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        mine = NULL;
        return;
    }
    publish(); /* the inherited counters become the base */
    if (apr_thread_create(&publisher, NULL, publisher_main, NULL, pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_hsmkeys: no metrics thread in child %u: its counts "
                     "are published only when it answers a scrape", (unsigned)me);
        publisher = NULL;
    }
    apr_pool_cleanup_register(pchild, NULL, child_exit, apr_pool_cleanup_null);
}

int hsmk_metrics_handler(request_rec *r)
{
    hsmkeys_metrics sum[HSMK_METRICS_CTX], m[HSMK_METRICS_CTX];
    hsmkeys_ctx *ctx[HSMK_METRICS_CTX];
    apr_uint32_t seq, n;
    int i, j, k, tries;
    size_t len;
    char *body;

    if (r->handler == NULL || strcmp(r->handler, "hsmkeys-metrics") != 0)
        return DECLINED;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    k = hsmk_ctx_list(rows_pool, ctx, HSMK_METRICS_CTX);
    memset(sum, 0, sizeof sum);
    if (rows == NULL || mine == NULL) {
        /* no segment: this child's own numbers */
        for (i = 0; i < k; i++)
            if (hsmkeys_get_metrics(ctx[i], &m[0], sizeof m[0]) == HSMKEYS_OK)
                hsmkeys_metrics_add(&sum[i], &m[0]);
    } else {
        publish();
        for (j = 0; j < nrows; j++) {
            if (rows[j].pid == 0)
                continue;
            for (tries = 0; tries < 100; tries++) {
                seq = __atomic_load_n(&rows[j].seq, __ATOMIC_ACQUIRE);
                if (seq & 1)
                    continue;
                n = rows[j].n;
                memcpy(m, rows[j].m, sizeof m);
                if (__atomic_load_n(&rows[j].seq, __ATOMIC_ACQUIRE) == seq)
                    break;
            }
            if (tries == 100)
                continue;
            for (i = 0; i < k && i < (int)n; i++)
                hsmkeys_metrics_add(&sum[i], &m[i]);
        }
    }
    len = hsmkeys_metrics_render(sum, (size_t)k, NULL, 0);
    body = apr_palloc(r->pool, len + 1);
    hsmkeys_metrics_render(sum, (size_t)k, body, len + 1);
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}
