/*
 * ngx_http_hsmkeys_module.c - hsmkeys session-ticket keys for http servers.
 *
 * Owns: the hsmkeys_* directive table of the http{} and server{} blocks and
 * the glue that hands each server's ngx_http_ssl_module SSL_CTX to the
 * shared code (ngx_hsmkeys_common.c), which validates, opens the token and
 * installs the ticket key callback; and, once every server is merged,
 * the per-connection choice among the name-based virtual servers of each
 * listen address (ngx_http_hsmkeys_vhosts.c).
 *
 * Threat handled: the fleet's servers encrypting tickets under keys their
 * peers cannot read.  Every server with "hsmkeys_tickets on" either gets the
 * token-derived keys or nginx refuses the configuration; there is no silent
 * fallback to nginx's random per-process keys.
 *
 * Also "hsmkeys_metrics;" in a location: Prometheus metrics of the http{}
 * contexts summed over the workers (ngx_http_hsmkeys_metrics.c).
 *
 *     load_module modules/ngx_http_hsmkeys_module.so;
 *     server {
 *         listen 443 ssl;
 *         hsmkeys_tickets  on;
 *         hsmkeys_uri      "pkcs11:token=web;object=hsmkeys-master?...";
 *         hsmkeys_domain   www.example.com;
 *     }
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_http_hsmkeys_metrics.h"
#include "ngx_hsmkeys_sesscache.h"
#include "ngx_http_hsmkeys_vhosts.h"


static char *ngx_http_hsmkeys_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_hsmkeys_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_hsmkeys_init_process(ngx_cycle_t *cycle);



static ngx_command_t  ngx_http_hsmkeys_commands[] = {

    { ngx_string("hsmkeys_tickets"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_hsmkeys_set_enable,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, enable),
      NULL },

    { ngx_string("hsmkeys_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, uri),
      NULL },

    { ngx_string("hsmkeys_domain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, domain),
      NULL },

    { ngx_string("hsmkeys_module_args"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, module_args),
      NULL },

    { ngx_string("hsmkeys_epoch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, epoch),
      NULL },

    { ngx_string("hsmkeys_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, lifetime),
      NULL },

    { ngx_string("hsmkeys_forward_erasable"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, forward_erasable),
      NULL },

    { ngx_string("hsmkeys_session_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_hsmkeys_set_session_cache,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hsmkeys_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hsmkeys_metrics_directive,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_hsmkeys_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_hsmkeys_vhosts_init,          /* postconfiguration */

    ngx_hsmkeys_create_main_conf,          /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_hsmkeys_create_srv_conf,           /* create server configuration */
    ngx_http_hsmkeys_merge_srv_conf,       /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_hsmkeys_module = {
    NGX_MODULE_V1,
    &ngx_http_hsmkeys_module_ctx,          /* module context */
    ngx_http_hsmkeys_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_hsmkeys_init_module,          /* init module */
    ngx_http_hsmkeys_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Runs after ngx_http_ssl_module's merge of the same server (modules merge
 * in module order, and the static SSL module precedes any dynamic one), so
 * sscf->ssl.ctx exists when the server has TLS.
 */
static char *
ngx_http_hsmkeys_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_hsmkeys_srv_conf_t   *prev = parent;
    ngx_hsmkeys_srv_conf_t   *conf = child;

    ngx_http_ssl_srv_conf_t  *sscf;
    ngx_hsmkeys_ssl_view_t    view;
    ngx_hsmkeys_main_conf_t  *mcf;

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hsmkeys_module);

    view.ctx = sscf->ssl.ctx;
    view.session_tickets = sscf->session_tickets;
    view.session_ticket_keys = sscf->session_ticket_keys;
    view.certificates = sscf->certificates;

    return ngx_hsmkeys_merge_and_attach(cf, mcf, prev, conf, &view,
                                        "ngx_http_hsmkeys_module");
}


static ngx_int_t
ngx_http_hsmkeys_init_process(ngx_cycle_t *cycle)
{
    ngx_hsmkeys_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_hsmkeys_module);

    if (ngx_hsmkeys_init_worker(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hsmkeys_metrics_init_worker(cycle, mcf);
}


static ngx_int_t
ngx_http_hsmkeys_init_module(ngx_cycle_t *cycle)
{
    return ngx_hsmkeys_init_module(cycle,
               ngx_http_cycle_get_module_main_conf(cycle,
                                                   ngx_http_hsmkeys_module));
}
