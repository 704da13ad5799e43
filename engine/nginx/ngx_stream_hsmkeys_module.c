/*
 * ngx_stream_hsmkeys_module.c - hsmkeys session-ticket keys for stream
 * (TLS over TCP) servers.
 *
 * Owns: the hsmkeys_* directive table of the stream{} and server{} blocks and
 * the glue that hands each server's ngx_stream_ssl_module SSL_CTX to the
 * shared code (ngx_hsmkeys_common.c), which validates, opens the token and
 * installs the ticket key callback.
 *
 * Threat handled: the fleet's servers encrypting tickets under keys their
 * peers cannot read.  Every server with "hsmkeys_tickets on" either gets the
 * token-derived keys or nginx refuses the configuration; there is no silent
 * fallback to nginx's random per-process keys.
 *
 *     load_module modules/ngx_stream_module.so;
 *     load_module modules/ngx_stream_hsmkeys_module.so;
 *     stream { server {
 *         listen 443 ssl;
 *         hsmkeys_tickets  on;
 *         hsmkeys_uri      "pkcs11:token=web;object=hsmkeys-master?...";
 *         hsmkeys_domain   www.example.com;
 *     } }
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_hsmkeys_mzone.h"
#include "ngx_hsmkeys_sesscache.h"


static char *ngx_stream_hsmkeys_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_hsmkeys_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_stream_hsmkeys_init_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_stream_hsmkeys_postconfiguration(ngx_conf_t *cf);



static ngx_command_t  ngx_stream_hsmkeys_commands[] = {

    { ngx_string("hsmkeys_tickets"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_hsmkeys_set_enable,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, enable),
      NULL },

    { ngx_string("hsmkeys_uri"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, uri),
      NULL },

    { ngx_string("hsmkeys_domain"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, domain),
      NULL },

    { ngx_string("hsmkeys_module_args"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, module_args),
      NULL },

    { ngx_string("hsmkeys_epoch"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, epoch),
      NULL },

    { ngx_string("hsmkeys_lifetime"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, lifetime),
      NULL },

    { ngx_string("hsmkeys_forward_erasable"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_hsmkeys_srv_conf_t, forward_erasable),
      NULL },

    { ngx_string("hsmkeys_session_cache"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_hsmkeys_set_session_cache,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_hsmkeys_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_stream_hsmkeys_postconfiguration,  /* postconfiguration */

    ngx_hsmkeys_create_main_conf,          /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_hsmkeys_create_srv_conf,           /* create server configuration */
    ngx_stream_hsmkeys_merge_srv_conf      /* merge server configuration */
};


ngx_module_t  ngx_stream_hsmkeys_module = {
    NGX_MODULE_V1,
    &ngx_stream_hsmkeys_module_ctx,        /* module context */
    ngx_stream_hsmkeys_commands,           /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    ngx_stream_hsmkeys_init_module,        /* init module */
    ngx_stream_hsmkeys_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Runs after ngx_stream_ssl_module's merge of the same server: this module
 * needs ngx_stream_ssl_module's symbol, so it can only be loaded after
 * ngx_stream_module.so, and modules merge in load order.  sscf->ssl.ctx
 * exists when the server has TLS.
 */
static char *
ngx_stream_hsmkeys_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_hsmkeys_srv_conf_t   *prev = parent;
    ngx_hsmkeys_srv_conf_t   *conf = child;

    ngx_stream_ssl_conf_t    *sscf;
    ngx_hsmkeys_ssl_view_t    view;
    ngx_hsmkeys_main_conf_t  *mcf;

    sscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_ssl_module);
    mcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_hsmkeys_module);

    view.ctx = sscf->ssl.ctx;
    view.session_tickets = sscf->session_tickets;
    view.session_ticket_keys = sscf->session_ticket_keys;
    view.certificates = NULL;   /* load order guarantees the merge order */

    return ngx_hsmkeys_merge_and_attach(cf, mcf, prev, conf, &view,
                                        "ngx_stream_hsmkeys_module");
}


/* After every server was merged (and its context opened): the metrics zone
 * the http module's hsmkeys_metrics location reads, when there is anything
 * to publish. */
static ngx_int_t
ngx_stream_hsmkeys_postconfiguration(ngx_conf_t *cf)
{
    ngx_hsmkeys_main_conf_t  *mcf;

    mcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_hsmkeys_module);

    if (mcf->opened.nelts > 0
        && ngx_hsmkeys_mzone_add(cf, NGX_HSMKEYS_MZONE_STREAM,
                                 &ngx_stream_hsmkeys_module) == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_hsmkeys_init_process(ngx_cycle_t *cycle)
{
    static ngx_hsmkeys_publisher_t   publisher;
    ngx_hsmkeys_main_conf_t         *mcf;
    ngx_int_t                        rc;

    mcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                ngx_stream_hsmkeys_module);
    rc = ngx_hsmkeys_init_worker(cycle, mcf);

    if (rc == NGX_OK && (ngx_process == NGX_PROCESS_WORKER
                         || ngx_process == NGX_PROCESS_SINGLE))
    {
        ngx_hsmkeys_publisher_start(&publisher, cycle, mcf,
                                    NGX_HSMKEYS_MZONE_STREAM);
    }

    return rc;
}


static ngx_int_t
ngx_stream_hsmkeys_init_module(ngx_cycle_t *cycle)
{
    return ngx_hsmkeys_init_module(cycle,
               ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_hsmkeys_module));
}
