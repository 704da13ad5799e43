/*
 * ngx_http_hsmkeys_metrics.c - "hsmkeys_metrics;" in a location: the
 * Prometheus text of every hsmkeys context of http{}, summed over all
 * worker processes through shared memory.
 *
 * Data: one shared zone "hsmkeys_metrics" of NGX_HSMKEYS_MAX_WORKERS x
 * NGX_HSMKEYS_MAX_CTX slots.  Each worker publishes, every second and
 * before it answers a scrape, one hsmkeys_metrics snapshot per context into
 * its row (ngx_worker), under a per-slot sequence counter (odd while it
 * writes), minus the counters it inherited from the master at fork (the
 * master's own token calls at open would otherwise count once per worker).
 * The scraping worker adds up the rows (hsmkeys_metrics_add) and renders
 * with hsmkeys_metrics_render, as every integration does.  The zone is
 * zeroed at each (re)configuration: counters restart at a reload, which
 * Prometheus treats as a counter reset; exiting workers stop publishing.
 *
 * Threat: the page is public to whoever reaches the location (restrict it
 * with allow/deny); it holds counts, epochs, the generation and its public
 * tag, never key bytes.  Publishing and scraping never call the token.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_http_hsmkeys_metrics.h"


#define NGX_HSMKEYS_MAX_WORKERS   64
#define NGX_HSMKEYS_MAX_CTX       8
#define NGX_HSMKEYS_PUBLISH_MS    1000


typedef struct {
    ngx_atomic_t       seq;     /* odd while the owner writes */
    ngx_atomic_t       used;
    hsmkeys_metrics    m;
} ngx_hsmkeys_slot_t;


typedef struct {
    ngx_hsmkeys_slot_t  slot[NGX_HSMKEYS_MAX_WORKERS][NGX_HSMKEYS_MAX_CTX];
} ngx_hsmkeys_zone_t;


/* this worker's zone, found in its cycle at worker start (a static set
 * while parsing could outlive a reload that failed) */
static ngx_shm_zone_t  *ngx_http_hsmkeys_metrics_zone;
static ngx_event_t      ngx_http_hsmkeys_publish_ev;
static hsmkeys_metrics  ngx_http_hsmkeys_base[NGX_HSMKEYS_MAX_CTX];
static ngx_uint_t       ngx_http_hsmkeys_have_base;


static ngx_int_t ngx_http_hsmkeys_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_shm_zone_t *ngx_http_hsmkeys_metrics_find(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_hsmkeys_metrics_handler(ngx_http_request_t *r);
static void ngx_http_hsmkeys_publish(ngx_hsmkeys_main_conf_t *mcf);
static void ngx_http_hsmkeys_publish_handler(ngx_event_t *ev);
static void ngx_http_hsmkeys_sub(hsmkeys_metrics *m,
    const hsmkeys_metrics *base);


char *
ngx_http_hsmkeys_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                  name = ngx_string("hsmkeys_metrics");
    ngx_shm_zone_t            *zone;
    ngx_http_core_loc_conf_t  *clcf;

    /* one zone per cycle: nginx returns the same one for every location */
    zone = ngx_shared_memory_add(cf, &name,
               ngx_align(sizeof(ngx_hsmkeys_zone_t), ngx_pagesize)
               + 8 * ngx_pagesize,
               &ngx_http_hsmkeys_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_hsmkeys_metrics_init_zone;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_hsmkeys_metrics_handler;

    return NGX_CONF_OK;
}


/* The cycle's "hsmkeys_metrics" zone, or NULL when no location has the
 * directive. */
static ngx_shm_zone_t *
ngx_http_hsmkeys_metrics_find(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    part = &cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == &ngx_http_hsmkeys_module
            && zone[i].shm.name.len == sizeof("hsmkeys_metrics") - 1
            && ngx_strncmp(zone[i].shm.name.data, "hsmkeys_metrics",
                           zone[i].shm.name.len) == 0)
        {
            return &zone[i];
        }
    }
}


static ngx_int_t
ngx_http_hsmkeys_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t     *shpool;
    ngx_hsmkeys_zone_t  *z;

    if (data != NULL) {
        z = data;

    } else {
        shpool = (ngx_slab_pool_t *) zone->shm.addr;
        z = ngx_slab_alloc(shpool, sizeof(ngx_hsmkeys_zone_t));
        if (z == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memzero(z, sizeof(ngx_hsmkeys_zone_t));
    zone->data = z;

    return NGX_OK;
}


ngx_int_t
ngx_http_hsmkeys_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf)
{
    ngx_event_t  *ev;

    ngx_http_hsmkeys_metrics_zone = ngx_http_hsmkeys_metrics_find(cycle);

    if (ngx_http_hsmkeys_metrics_zone == NULL || mcf == NULL
        || mcf->opened.nelts == 0)
    {
        return NGX_OK;
    }

    if (ngx_worker >= NGX_HSMKEYS_MAX_WORKERS) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "hsmkeys_metrics: worker %ui is not counted: at most "
                      "%d workers are summed", ngx_worker,
                      NGX_HSMKEYS_MAX_WORKERS);
        return NGX_OK;
    }

    ev = &ngx_http_hsmkeys_publish_ev;
    ev->handler = ngx_http_hsmkeys_publish_handler;
    ev->data = mcf;
    ev->log = cycle->log;
    ev->cancelable = 1;

    ngx_http_hsmkeys_publish(mcf);
    ngx_add_timer(ev, NGX_HSMKEYS_PUBLISH_MS);

    return NGX_OK;
}


static void
ngx_http_hsmkeys_publish_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_hsmkeys_publish(ev->data);
    ngx_add_timer(ev, NGX_HSMKEYS_PUBLISH_MS);
}


/* This worker's row: its snapshots minus what it inherited at fork. */
static void
ngx_http_hsmkeys_publish(ngx_hsmkeys_main_conf_t *mcf)
{
    ngx_uint_t             i, n;
    hsmkeys_metrics        m;
    ngx_hsmkeys_zone_t    *z;
    ngx_hsmkeys_slot_t    *s;
    ngx_hsmkeys_opened_t  *op;

    if (ngx_http_hsmkeys_metrics_zone == NULL
        || ngx_worker >= NGX_HSMKEYS_MAX_WORKERS)
    {
        return;
    }

    z = ngx_http_hsmkeys_metrics_zone->data;
    op = mcf->opened.elts;
    n = ngx_min(mcf->opened.nelts, NGX_HSMKEYS_MAX_CTX);

    for (i = 0; i < n; i++) {
        if (hsmkeys_get_metrics(op[i].hk, &m, sizeof(m)) != HSMKEYS_OK) {
            continue;
        }

        if (!ngx_http_hsmkeys_have_base) {
            ngx_http_hsmkeys_base[i] = m;
        }

        ngx_http_hsmkeys_sub(&m, &ngx_http_hsmkeys_base[i]);

        s = &z->slot[ngx_worker][i];
        (void) ngx_atomic_fetch_add(&s->seq, 1);
        ngx_memory_barrier();
        s->m = m;
        s->used = 1;
        ngx_memory_barrier();
        (void) ngx_atomic_fetch_add(&s->seq, 1);
    }

    ngx_http_hsmkeys_have_base = 1;
}


static void
ngx_http_hsmkeys_sub(hsmkeys_metrics *m, const hsmkeys_metrics *base)
{
    ngx_uint_t  b;

    m->tickets_issued -= base->tickets_issued;
    m->tickets_resumed -= base->tickets_resumed;
    m->tickets_renewed -= base->tickets_renewed;
    m->refused_foreign -= base->refused_foreign;
    m->refused_window -= base->refused_window;
    m->refused_unavailable -= base->refused_unavailable;
    m->token_derivations -= base->token_derivations;
    m->token_calls -= base->token_calls;
    m->token_errors -= base->token_errors;
    m->derivation_nanoseconds -= base->derivation_nanoseconds;

    for (b = 0; b < HSMKEYS_METRICS_BUCKETS; b++) {
        m->derivation_buckets[b] -= base->derivation_buckets[b];
    }
}


static ngx_int_t
ngx_http_hsmkeys_metrics_handler(ngx_http_request_t *r)
{
    size_t                    len;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_uint_t                w, i, n, tries;
    ngx_chain_t               out;
    ngx_atomic_uint_t         seq;
    hsmkeys_metrics           sum[NGX_HSMKEYS_MAX_CTX], m;
    ngx_hsmkeys_zone_t       *z;
    ngx_hsmkeys_slot_t       *s;
    ngx_hsmkeys_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_hsmkeys_module);
    if (ngx_http_hsmkeys_metrics_zone == NULL || mcf == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    /* this worker's row is current; the others are at most 1 s old */
    ngx_http_hsmkeys_publish(mcf);

    z = ngx_http_hsmkeys_metrics_zone->data;
    n = ngx_min(mcf->opened.nelts, NGX_HSMKEYS_MAX_CTX);
    ngx_memzero(sum, sizeof(sum));

    for (i = 0; i < n; i++) {
        for (w = 0; w < NGX_HSMKEYS_MAX_WORKERS; w++) {
            s = &z->slot[w][i];

            for (tries = 0; tries < 100; tries++) {
                seq = s->seq;
                ngx_memory_barrier();
                if (seq & 1) {
                    continue;
                }
                m = s->m;
                ngx_memory_barrier();
                if (s->seq == seq) {
                    break;
                }
            }

            if (tries < 100 && s->used) {
                hsmkeys_metrics_add(&sum[i], &m);
            }
        }
    }

    len = hsmkeys_metrics_render(sum, n, NULL, 0);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) hsmkeys_metrics_render(sum, n, (char *) b->pos, len + 1);
    b->last = b->pos + len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
