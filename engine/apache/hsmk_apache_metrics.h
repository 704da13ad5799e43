/*
 * hsmk_apache_metrics.h - "SetHandler hsmkeys-metrics": the Prometheus text
 * of mod_hsmkeys' contexts, summed over Apache's child processes.
 *
 * Owns: a shared memory segment made by the parent after each
 * configuration (one row per possible child, ServerLimit), each child's
 * claim of a row and its publisher thread (every second, and before it
 * answers a scrape), and the handler that adds the rows up and renders them
 * with hsmkeys_metrics_render(), as every integration does.  Threat: the
 * page is public to whoever may request it (restrict it with Require); it
 * holds counts, epochs and the public tag, never key bytes; publishing and
 * scraping never call the token.
 */
#ifndef HSMK_APACHE_METRICS_H
#define HSMK_APACHE_METRICS_H

#include "httpd.h"

/* post_config (parent): the segment for this configuration. */
void hsmk_metrics_post_config(apr_pool_t *pconf, server_rec *s);
/* child_init: claim a row, start publishing. */
void hsmk_metrics_child_init(apr_pool_t *pchild, server_rec *s);
/* handler: serves r when r->handler is "hsmkeys-metrics". */
int hsmk_metrics_handler(request_rec *r);

#endif /* HSMK_APACHE_METRICS_H */
