/*
 * ngx_hsmkeys_mzone.h - the shared memory that sums hsmkeys metrics over
 * nginx's worker processes, for both modules: http{} contexts publish into
 * zone "hsmkeys_metrics", stream{} contexts into "hsmkeys_stream_metrics",
 * and the http module's hsmkeys_metrics location renders both.
 *
 * Layout: NGX_HSMKEYS_MAX_WORKERS x NGX_HSMKEYS_MAX_CTX slots.  Each worker
 * publishes, every second and before it answers a scrape, one snapshot per
 * context into its row, under a per-slot sequence counter (odd while it
 * writes), minus the counters it inherited from the master at fork (the
 * master's own token calls at open would otherwise count once per worker).
 * The zone is zeroed at each (re)configuration: counters restart at a
 * reload, which Prometheus treats as a counter reset.  The two modules are
 * separate .so files: a zone is found by its name, and a header (magic and
 * size) guards against a module of another build.
 *
 * Threat: the page is public to whoever reaches the location; it holds
 * counts, epochs, the generation and its public tag, never key bytes.
 * Publishing and summing never call the token.
 */
#ifndef NGX_HSMKEYS_MZONE_H
#define NGX_HSMKEYS_MZONE_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_common.h"


#define NGX_HSMKEYS_MAX_WORKERS   64
#define NGX_HSMKEYS_MAX_CTX       8
#define NGX_HSMKEYS_PUBLISH_MS    1000

#define NGX_HSMKEYS_MZONE_HTTP    "hsmkeys_metrics"
#define NGX_HSMKEYS_MZONE_STREAM  "hsmkeys_stream_metrics"


/* One module's publishing state in a worker. */
typedef struct {
    ngx_shm_zone_t           *zone;
    ngx_hsmkeys_main_conf_t  *mcf;
    ngx_event_t               ev;
    hsmkeys_metrics           base[NGX_HSMKEYS_MAX_CTX];
    ngx_uint_t                have_base;
} ngx_hsmkeys_publisher_t;


/* Declare the zone `name` at configuration time (tag: the module). */
ngx_shm_zone_t *ngx_hsmkeys_mzone_add(ngx_conf_t *cf, const char *name,
    void *tag);

/* The cycle's zone `name` with this build's layout, or NULL. */
ngx_shm_zone_t *ngx_hsmkeys_mzone_find(ngx_cycle_t *cycle, const char *name);

/* In a worker: publish mcf's contexts into zone `name` now and every
 * second.  Nothing happens without that zone or contexts. */
void ngx_hsmkeys_publisher_start(ngx_hsmkeys_publisher_t *p, ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf, const char *name);

/* Publish this worker's row now. */
void ngx_hsmkeys_publish(ngx_hsmkeys_publisher_t *p);

/* Add every worker's snapshots in zone to sum[0 .. *n): a context whose
 * domain is there already is added to it, another takes the next entry
 * (at most max). */
void ngx_hsmkeys_mzone_sum(ngx_shm_zone_t *zone, hsmkeys_metrics *sum,
    ngx_uint_t *n, ngx_uint_t max);


#endif /* NGX_HSMKEYS_MZONE_H */
