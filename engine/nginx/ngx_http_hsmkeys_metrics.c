/*
 * ngx_http_hsmkeys_metrics.c - "hsmkeys_metrics;" in a location: the
 * Prometheus text of every hsmkeys context of http{} and of stream{}, summed
 * over all worker processes through shared memory (ngx_hsmkeys_mzone.h:
 * zone "hsmkeys_metrics" for http{}, "hsmkeys_stream_metrics" published by
 * the stream module).  Contexts of one domain in http{} and stream{} are one
 * series.  The scraping worker publishes its http{} row first; every other
 * row, and stream{} rows, are at most 1 s old.
 *
 * Threat: the page is public to whoever reaches the location (restrict it
 * with allow/deny); it holds counts, epochs, the generation and its public
 * tag, never key bytes.  Publishing and scraping never call the token.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_hsmkeys_mzone.h"
#include "ngx_http_hsmkeys_metrics.h"


/* this worker's publisher and the stream module's zone, found in its cycle
 * at worker start (a static set while parsing could outlive a reload that
 * failed) */
static ngx_hsmkeys_publisher_t  ngx_http_hsmkeys_publisher;
static ngx_shm_zone_t          *ngx_http_hsmkeys_stream_zone;


static ngx_int_t ngx_http_hsmkeys_metrics_handler(ngx_http_request_t *r);


char *
ngx_http_hsmkeys_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (ngx_hsmkeys_mzone_add(cf, NGX_HSMKEYS_MZONE_HTTP,
                              &ngx_http_hsmkeys_module) == NULL)
    {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_hsmkeys_metrics_handler;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_hsmkeys_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf)
{
    ngx_http_hsmkeys_stream_zone = NULL;

    if (ngx_hsmkeys_mzone_find(cycle, NGX_HSMKEYS_MZONE_HTTP) == NULL) {
        ngx_http_hsmkeys_publisher.zone = NULL;
        return NGX_OK;   /* no location serves the metrics */
    }

    ngx_http_hsmkeys_stream_zone = ngx_hsmkeys_mzone_find(cycle,
                                                  NGX_HSMKEYS_MZONE_STREAM);
    ngx_hsmkeys_publisher_start(&ngx_http_hsmkeys_publisher, cycle, mcf,
                                NGX_HSMKEYS_MZONE_HTTP);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hsmkeys_metrics_handler(ngx_http_request_t *r)
{
    size_t           len;
    ngx_int_t        rc;
    ngx_buf_t       *b;
    ngx_uint_t       n;
    ngx_chain_t      out;
    hsmkeys_metrics  sum[2 * NGX_HSMKEYS_MAX_CTX];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_hsmkeys_publisher.zone == NULL
        && ngx_http_hsmkeys_stream_zone == NULL)
    {
        return NGX_HTTP_NOT_FOUND;
    }

    /* this worker's http{} row is current; the others are at most 1 s old */
    ngx_hsmkeys_publish(&ngx_http_hsmkeys_publisher);

    n = 0;
    ngx_hsmkeys_mzone_sum(ngx_http_hsmkeys_publisher.zone, sum, &n,
                          2 * NGX_HSMKEYS_MAX_CTX);
    ngx_hsmkeys_mzone_sum(ngx_http_hsmkeys_stream_zone, sum, &n,
                          2 * NGX_HSMKEYS_MAX_CTX);

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
