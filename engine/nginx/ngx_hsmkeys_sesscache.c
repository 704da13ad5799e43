/*
 * ngx_hsmkeys_sesscache.c - the hsmkeys_session_cache directive.  See
 * ngx_hsmkeys_sesscache.h.
 *
 * Lifecycle: the directive handler (master, or "nginx -t") parses and
 * checks the store and creates one sc_store per directive occurrence,
 * freed with the cycle's pool; every server inheriting it shares it.  The
 * SSL_CTX attachment takes its own reference.  Workers inherit the store
 * across fork() without a connection: each worker connects on its first
 * lookup or write, and re-makes the connection itself after a failure.
 * What a lookup costs a worker: see docs/NGINX.md ("Session-ID clients").
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_sesscache.h"

#include "sc_conf.h"
#include "sc_glue.h"
#include "sc_store.h"

#define NGX_HSMKEYS_SC_PROBE_MS  1000


static void ngx_hsmkeys_sc_log(void *arg, int level, const char *msg);
static void ngx_hsmkeys_sc_cleanup(void *data);


char *
ngx_hsmkeys_set_session_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_hsmkeys_srv_conf_t  *hcf = conf;

    int                  rc;
    char                 err[400], addr[160];
    u_char              *opt;
    sc_conf              sc;
    sc_store            *st;
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    if (hcf->session_cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        hcf->session_cache = NULL;
        return NGX_CONF_OK;
    }

    sc_conf_init(&sc);

    if (sc_conf_url(&sc, (const char *) value[1].data, err, sizeof err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid store address: %s",
                           &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        opt = value[i].data;
        if (sc_conf_option(&sc, (const char *) opt, err, sizeof err) != 0) {
            sc_conf_clear(&sc);
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": %s", &cmd->name, err);
            return NGX_CONF_ERROR;
        }
    }

    sc_conf_addr(&sc, addr, sizeof addr);
    rc = sc_store_probe(&sc, NGX_HSMKEYS_SC_PROBE_MS, err, sizeof err);

    if (rc == 2) {
        sc_conf_clear(&sc);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the store %s %s", &cmd->name, addr, err);
        return NGX_CONF_ERROR;
    }

    if (rc == 1) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\": the store %s is unreachable now (%s); "
                           "servers start, and session-ID clients resume "
                           "across the fleet once it answers",
                           &cmd->name, addr, err);
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        sc_conf_clear(&sc);
        return NGX_CONF_ERROR;
    }

    st = sc_store_new(&sc, ngx_hsmkeys_sc_log, NULL);
    sc_conf_clear(&sc);
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_hsmkeys_sc_cleanup;
    cln->data = st;

    hcf->session_cache = st;
    hcf->session_cache_file = cf->conf_file->file.name.data;
    hcf->session_cache_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_hsmkeys_sesscache_attach(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf,
    SSL_CTX *ssl_ctx, hsmkeys_ctx *hk)
{
    char      err[300];
    u_char   *domain;

    if (SSL_CTX_sess_get_new_cb(ssl_ctx) != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_session_cache\" in %s:%ui conflicts with "
                      "\"ssl_session_cache shared:...\" of the same server: "
                      "one external session cache per server; remove one",
                      conf->session_cache_file, conf->session_cache_line);
        return NGX_ERROR;
    }

    domain = ngx_pnalloc(cf->temp_pool, conf->domain.len + 1);
    if (domain == NULL) {
        return NGX_ERROR;
    }
    ngx_cpystrn(domain, conf->domain.data, conf->domain.len + 1);

    if (sc_attach(ssl_ctx, hk, (const char *) domain, conf->session_cache,
                  ngx_hsmkeys_sc_log, NULL, err, sizeof err) != 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_session_cache\" in %s:%ui: cannot install "
                      "the session cache callbacks: %s",
                      conf->session_cache_file, conf->session_cache_line, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_hsmkeys_sc_cleanup(void *data)
{
    sc_store_free(data);
}


/* syslog levels to nginx's (NGX_LOG_ERR == LOG_ERR + 1); ngx_cycle follows
 * reloads, a log captured at configuration time would not. */
static void
ngx_hsmkeys_sc_log(void *arg, int level, const char *msg)
{
    ngx_uint_t  l;

    (void) arg;

    l = level < 3 ? NGX_LOG_ERR : level >= 7 ? NGX_LOG_DEBUG
                                             : (ngx_uint_t) level + 1;

    ngx_log_error(l, ngx_cycle->log, 0, "hsmkeys: %s", msg);
}
