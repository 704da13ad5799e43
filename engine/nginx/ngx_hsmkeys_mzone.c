/*
 * ngx_hsmkeys_mzone.c - metrics summed over workers through shared memory
 * (see ngx_hsmkeys_mzone.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_mzone.h"


#define NGX_HSMKEYS_MZONE_MAGIC  0x684b6d7aU   /* "hKmz" */


typedef struct {
    ngx_atomic_t       seq;     /* odd while the owner writes */
    ngx_atomic_t       used;
    hsmkeys_metrics    m;
} ngx_hsmkeys_slot_t;


typedef struct {
    uint32_t            magic;
    uint32_t            size;   /* sizeof(ngx_hsmkeys_mzone_t) of the writer */
    ngx_hsmkeys_slot_t  slot[NGX_HSMKEYS_MAX_WORKERS][NGX_HSMKEYS_MAX_CTX];
} ngx_hsmkeys_mzone_t;


static ngx_int_t ngx_hsmkeys_mzone_init(ngx_shm_zone_t *zone, void *data);
static void ngx_hsmkeys_publish_handler(ngx_event_t *ev);
static void ngx_hsmkeys_metrics_sub(hsmkeys_metrics *m,
    const hsmkeys_metrics *base);
static ngx_int_t ngx_hsmkeys_slot_read(ngx_hsmkeys_slot_t *s,
    hsmkeys_metrics *m);


ngx_shm_zone_t *
ngx_hsmkeys_mzone_add(ngx_conf_t *cf, const char *name, void *tag)
{
    ngx_str_t        zname;
    ngx_shm_zone_t  *zone;

    zname.data = (u_char *) name;
    zname.len = ngx_strlen(name);

    /* one zone per cycle: nginx returns the same one at every call */
    zone = ngx_shared_memory_add(cf, &zname,
               ngx_align(sizeof(ngx_hsmkeys_mzone_t), ngx_pagesize)
               + 8 * ngx_pagesize, tag);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_hsmkeys_mzone_init;

    return zone;
}


static ngx_int_t
ngx_hsmkeys_mzone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t      *shpool;
    ngx_hsmkeys_mzone_t  *z;

    if (data != NULL) {
        z = data;

    } else {
        shpool = (ngx_slab_pool_t *) zone->shm.addr;
        z = ngx_slab_alloc(shpool, sizeof(ngx_hsmkeys_mzone_t));
        if (z == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memzero(z, sizeof(ngx_hsmkeys_mzone_t));
    z->magic = NGX_HSMKEYS_MZONE_MAGIC;
    z->size = sizeof(ngx_hsmkeys_mzone_t);
    zone->data = z;

    return NGX_OK;
}


ngx_shm_zone_t *
ngx_hsmkeys_mzone_find(ngx_cycle_t *cycle, const char *name)
{
    size_t                len;
    ngx_uint_t            i;
    ngx_list_part_t      *part;
    ngx_shm_zone_t       *zone;
    ngx_hsmkeys_mzone_t  *z;

    len = ngx_strlen(name);
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

        if (zone[i].shm.name.len != len
            || ngx_strncmp(zone[i].shm.name.data, name, len) != 0)
        {
            continue;
        }

        z = zone[i].data;

        if (z == NULL || z->magic != NGX_HSMKEYS_MZONE_MAGIC
            || z->size != sizeof(ngx_hsmkeys_mzone_t))
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "hsmkeys_metrics: shared zone \"%s\" has another "
                          "layout (http and stream modules of different "
                          "builds?): it is not read", name);
            return NULL;
        }

        return &zone[i];
    }
}


void
ngx_hsmkeys_publisher_start(ngx_hsmkeys_publisher_t *p, ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf, const char *name)
{
    p->zone = ngx_hsmkeys_mzone_find(cycle, name);
    p->mcf = mcf;
    p->have_base = 0;

    if (p->zone == NULL || mcf == NULL || mcf->opened.nelts == 0
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {   /* cache manager / loader: they serve nothing and share a row */
        p->zone = NULL;
        return;
    }

    if (ngx_worker >= NGX_HSMKEYS_MAX_WORKERS) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "hsmkeys_metrics: worker %ui is not counted: at most "
                      "%d workers are summed", ngx_worker,
                      NGX_HSMKEYS_MAX_WORKERS);
        p->zone = NULL;
        return;
    }

    p->ev.handler = ngx_hsmkeys_publish_handler;
    p->ev.data = p;
    p->ev.log = cycle->log;
    p->ev.cancelable = 1;

    ngx_hsmkeys_publish(p);
    ngx_add_timer(&p->ev, NGX_HSMKEYS_PUBLISH_MS);
}


static void
ngx_hsmkeys_publish_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_hsmkeys_publish(ev->data);
    ngx_add_timer(ev, NGX_HSMKEYS_PUBLISH_MS);
}


/* This worker's row: its snapshots minus what it inherited at fork. */
void
ngx_hsmkeys_publish(ngx_hsmkeys_publisher_t *p)
{
    ngx_uint_t             i, n;
    hsmkeys_metrics        m;
    ngx_hsmkeys_mzone_t   *z;
    ngx_hsmkeys_slot_t    *s;
    ngx_hsmkeys_opened_t  *op;

    if (p->zone == NULL || ngx_worker >= NGX_HSMKEYS_MAX_WORKERS) {
        return;
    }

    z = p->zone->data;
    op = p->mcf->opened.elts;
    n = ngx_min(p->mcf->opened.nelts, NGX_HSMKEYS_MAX_CTX);

    for (i = 0; i < n; i++) {
        if (hsmkeys_get_metrics(op[i].hk, &m, sizeof(m)) != HSMKEYS_OK) {
            continue;
        }

        if (!p->have_base) {
            p->base[i] = m;
        }

        ngx_hsmkeys_metrics_sub(&m, &p->base[i]);

        s = &z->slot[ngx_worker][i];
        (void) ngx_atomic_fetch_add(&s->seq, 1);
        ngx_memory_barrier();
        s->m = m;
        s->used = 1;
        ngx_memory_barrier();
        (void) ngx_atomic_fetch_add(&s->seq, 1);
    }

    p->have_base = 1;
}


static void
ngx_hsmkeys_metrics_sub(hsmkeys_metrics *m, const hsmkeys_metrics *base)
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


/* A consistent copy of a slot another worker may be writing. */
static ngx_int_t
ngx_hsmkeys_slot_read(ngx_hsmkeys_slot_t *s, hsmkeys_metrics *m)
{
    ngx_uint_t         tries;
    ngx_atomic_uint_t  seq;

    for (tries = 0; tries < 100; tries++) {
        seq = s->seq;
        ngx_memory_barrier();
        if (seq & 1) {
            continue;
        }
        *m = s->m;
        ngx_memory_barrier();
        if (s->seq == seq) {
            return s->used ? NGX_OK : NGX_DECLINED;
        }
    }

    return NGX_DECLINED;
}


void
ngx_hsmkeys_mzone_sum(ngx_shm_zone_t *zone, hsmkeys_metrics *sum,
    ngx_uint_t *n, ngx_uint_t max)
{
    ngx_uint_t            w, i, k, any;
    hsmkeys_metrics       col, m;
    ngx_hsmkeys_mzone_t  *z;

    if (zone == NULL) {
        return;
    }

    z = zone->data;

    for (i = 0; i < NGX_HSMKEYS_MAX_CTX; i++) {
        ngx_memzero(&col, sizeof(col));
        any = 0;

        for (w = 0; w < NGX_HSMKEYS_MAX_WORKERS; w++) {
            if (ngx_hsmkeys_slot_read(&z->slot[w][i], &m) == NGX_OK) {
                hsmkeys_metrics_add(&col, &m);
                any = 1;
            }
        }

        if (!any) {
            continue;
        }

        /* one series per domain: http and stream contexts of one fleet
         * domain add up */
        for (k = 0; k < *n; k++) {
            if (ngx_strcmp(sum[k].domain, col.domain) == 0) {
                break;
            }
        }

        if (k == *n) {
            if (*n == max) {
                continue;
            }
            ngx_memzero(&sum[k], sizeof(sum[k]));
            (*n)++;
        }

        hsmkeys_metrics_add(&sum[k], &col);
    }
}
