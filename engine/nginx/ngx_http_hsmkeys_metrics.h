/*
 * ngx_http_hsmkeys_metrics.h - the "hsmkeys_metrics" location handler of
 * the http module: Prometheus text of the http{} contexts, summed over the
 * workers through a shared zone.  See ngx_http_hsmkeys_metrics.c.
 */

#ifndef _NGX_HTTP_HSMKEYS_METRICS_H_INCLUDED_
#define _NGX_HTTP_HSMKEYS_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_common.h"


extern ngx_module_t  ngx_http_hsmkeys_module;

/* "hsmkeys_metrics;" (location): serve the metrics there */
char *ngx_http_hsmkeys_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* init process: publish this worker's snapshots every second */
ngx_int_t ngx_http_hsmkeys_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf);


#endif /* _NGX_HTTP_HSMKEYS_METRICS_H_INCLUDED_ */
