/*
 * ngx_hsmkeys_common.c - settings, validation, token contexts and their
 * per-process key maintainers, shared by ngx_http_hsmkeys_module and
 * ngx_stream_hsmkeys_module.  See ngx_hsmkeys_common.h.
 *
 * Lifecycle: the master (and "nginx -t") opens one libhsmkeys context per
 * distinct (uri, domain, module args, epoch, lifetime) while merging the
 * configuration, attaches it to each enabled server's SSL_CTX (which takes
 * its own reference) and closes its reference when the cycle's pool is
 * destroyed (reload, exit).  Opening checks the token and derives the
 * current keys, so "nginx -t" and a reload fail on a token error; then
 * init_module (run in the master for every cycle: start, reload, binary
 * upgrade) calls hsmkeys_forget(), so the master, which serves nothing,
 * holds no key bytes.  Workers inherit the contexts across fork(); each
 * worker's init_process starts the context's key maintainer, a libhsmkeys
 * thread that owns every token call of that worker from then on (PKCS#11
 * re-initialised in the child, derivation ahead of need, the token's
 * master generations re-read, backoff, expiry).  The worker's event loop
 * never calls the token: a stalled or hung HSM cannot freeze it.  Cache
 * manager and loader processes serve no TLS and start nothing.
 *
 * Threads: the maintainer calls ngx_hsmkeys_log() from its own thread; it
 * only formats into ngx_log_error(), as nginx's own thread pools do.  The
 * maintainer is created with every signal blocked, so the signals nginx's
 * master sends (QUIT, TERM, USR1, HUP, WINCH) always reach the event loop.
 *
 * Threat handled: see the header.  Messages name the directive and say
 * what to fix; libhsmkeys' messages never carry PINs or key bytes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_hsmkeys_user.h"
#include "ngx_hsmkeys_sesscache.h"


#include <pthread.h>
#include <signal.h>


/* How long a starting worker waits for its maintainer's first keys: long
 * enough for a healthy token (a few ms), short enough that a stalled one
 * delays the worker's first accept by at most this. */
#define NGX_HSMKEYS_START_WAIT_MS    1000


static void ngx_hsmkeys_log(void *arg, int level, const char *msg);
static void ngx_hsmkeys_cleanup(void *data);
static char *ngx_hsmkeys_validate(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf,
    ngx_hsmkeys_ssl_view_t *ssl);
static hsmkeys_ctx *ngx_hsmkeys_get_ctx(ngx_conf_t *cf,
    ngx_hsmkeys_main_conf_t *mcf, ngx_hsmkeys_srv_conf_t *conf);
static hsmkeys_ctx *ngx_hsmkeys_open(ngx_conf_t *cf,
    ngx_hsmkeys_srv_conf_t *conf);
static ngx_int_t ngx_hsmkeys_config_str(ngx_conf_t *cf, hsmkeys_config *hc,
    const char *option, ngx_str_t *value, const char *directive,
    ngx_hsmkeys_srv_conf_t *conf);
static ngx_int_t ngx_hsmkeys_config_sec(ngx_conf_t *cf, hsmkeys_config *hc,
    const char *option, time_t value, const char *directive,
    ngx_hsmkeys_srv_conf_t *conf);


void *
ngx_hsmkeys_create_main_conf(ngx_conf_t *cf)
{
    ngx_hsmkeys_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_hsmkeys_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->opened, cf->pool, 2,
                       sizeof(ngx_hsmkeys_opened_t))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


void *
ngx_hsmkeys_create_srv_conf(ngx_conf_t *cf)
{
    ngx_hsmkeys_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_hsmkeys_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->uri = { 0, NULL };
     *     conf->domain = { 0, NULL };
     *     conf->module_args = { 0, NULL };
     *     conf->file = NULL;
     *     conf->line = 0;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->epoch = NGX_CONF_UNSET;
    conf->lifetime = NGX_CONF_UNSET;
    conf->forward_erasable = NGX_CONF_UNSET;
    conf->session_cache = NGX_CONF_UNSET_PTR;

    return conf;
}


char *
ngx_hsmkeys_set_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_hsmkeys_srv_conf_t  *hcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    hcf->file = cf->conf_file->file.name.data;
    hcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


char *
ngx_hsmkeys_merge_and_attach(ngx_conf_t *cf, ngx_hsmkeys_main_conf_t *mcf,
    ngx_hsmkeys_srv_conf_t *prev, ngx_hsmkeys_srv_conf_t *conf,
    ngx_hsmkeys_ssl_view_t *ssl, const char *module_name)
{
    int           rc;
    char         *rv;
    hsmkeys_ctx  *hk;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->uri, prev->uri, "");
    ngx_conf_merge_str_value(conf->domain, prev->domain, "");
    ngx_conf_merge_str_value(conf->module_args, prev->module_args, "");
    ngx_conf_merge_sec_value(conf->epoch, prev->epoch,
                             HSMKEYS_DEFAULT_EPOCH_SECONDS);
    ngx_conf_merge_sec_value(conf->lifetime, prev->lifetime,
                             HSMKEYS_DEFAULT_LIFETIME_SECONDS);
    ngx_conf_merge_value(conf->forward_erasable, prev->forward_erasable, 0);

    if (conf->file == NULL) {
        conf->file = prev->file;
        conf->line = prev->line;
    }

    if (conf->session_cache == NGX_CONF_UNSET_PTR) {
        conf->session_cache = prev->session_cache;
        conf->session_cache_file = prev->session_cache_file;
        conf->session_cache_line = prev->session_cache_line;
    }
    if (conf->session_cache == NGX_CONF_UNSET_PTR) {
        conf->session_cache = NULL;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (ssl->ctx == NULL) {

        if (ssl->certificates != NULL) {
            /* the TLS module has not merged this server yet */
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"hsmkeys_tickets\" in %s:%ui: the server's "
                          "SSL context does not exist yet; load %s after "
                          "the module providing TLS (load_module order)",
                          conf->file, conf->line, module_name);
            return NGX_CONF_ERROR;
        }

        /* a server without TLS: nothing to attach to, like ssl_* */
        return NGX_CONF_OK;
    }

    rv = ngx_hsmkeys_validate(cf, conf, ssl);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    hk = ngx_hsmkeys_get_ctx(cf, mcf, conf);
    if (hk == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = hsmkeys_ssl_attach(ssl->ctx, hk);
    if (rc != HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_tickets\" in %s:%ui: cannot install the "
                      "ticket key callback: %s (%s)",
                      conf->file, conf->line, hsmkeys_last_error(),
                      hsmkeys_result_name(rc));
        return NGX_CONF_ERROR;
    }

    if (conf->session_cache != NULL
        && ngx_hsmkeys_sesscache_attach(cf, conf, ssl->ctx, hk) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }
    /* for the virtual-host selection (ngx_http_hsmkeys_vhosts.c) */
    conf->hk = hk;

    return NGX_CONF_OK;
}


static char *
ngx_hsmkeys_validate(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf,
    ngx_hsmkeys_ssl_view_t *ssl)
{
    if (conf->uri.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_uri\" is not set for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui",
                      conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (conf->domain.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_domain\" is not set for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui; servers that "
                      "resume each other's tickets share one domain",
                      conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (conf->epoch < 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_epoch\" must be at least 1s for the server "
                      "with \"hsmkeys_tickets on\" in %s:%ui",
                      conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (conf->lifetime < 1 || conf->lifetime > HSMKEYS_MAX_LIFETIME_SECONDS) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_lifetime\" must lie between 1s and 7d "
                      "(RFC 8446) for the server with \"hsmkeys_tickets on\" "
                      "in %s:%ui", conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (!ssl->session_tickets) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_tickets on\" in %s:%ui conflicts with "
                      "\"ssl_session_tickets off\"",
                      conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (ssl->session_ticket_keys != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_tickets on\" in %s:%ui conflicts with "
                      "\"ssl_session_ticket_key\": the ticket keys come from "
                      "the token; remove the key files",
                      conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static hsmkeys_ctx *
ngx_hsmkeys_get_ctx(ngx_conf_t *cf, ngx_hsmkeys_main_conf_t *mcf,
    ngx_hsmkeys_srv_conf_t *conf)
{
    ngx_uint_t             i;
    hsmkeys_ctx           *hk;
    ngx_pool_cleanup_t    *cln;
    ngx_hsmkeys_opened_t  *op;

    op = mcf->opened.elts;

    for (i = 0; i < mcf->opened.nelts; i++) {
        if (op[i].epoch == conf->epoch
            && op[i].lifetime == conf->lifetime
            && op[i].session_cache == (conf->session_cache != NULL)
            && op[i].forward_erasable == conf->forward_erasable
            && op[i].uri.len == conf->uri.len
            && op[i].domain.len == conf->domain.len
            && op[i].module_args.len == conf->module_args.len
            && ngx_memcmp(op[i].uri.data, conf->uri.data, conf->uri.len) == 0
            && ngx_memcmp(op[i].domain.data, conf->domain.data,
                          conf->domain.len) == 0
            && ngx_memcmp(op[i].module_args.data, conf->module_args.data,
                          conf->module_args.len) == 0)
        {
            return op[i].hk;
        }
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    op = ngx_array_push(&mcf->opened);
    if (op == NULL) {
        return NULL;
    }

    hk = ngx_hsmkeys_open(cf, conf);
    if (hk == NULL) {
        mcf->opened.nelts--;
        return NULL;
    }

    cln->handler = ngx_hsmkeys_cleanup;
    cln->data = hk;

    op->uri = conf->uri;
    op->domain = conf->domain;
    op->module_args = conf->module_args;
    op->epoch = conf->epoch;
    op->lifetime = conf->lifetime;
    op->session_cache = (conf->session_cache != NULL);
    op->forward_erasable = conf->forward_erasable;
    op->hk = hk;

    return hk;
}


static hsmkeys_ctx *
ngx_hsmkeys_open(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf)
{
    int              rc;
    hsmkeys_ctx     *hk;
    hsmkeys_config  *hc;

    if (hsmkeys_config_new(&hc) != HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "hsmkeys: out of memory");
        return NULL;
    }

    /* the URI: a worker's failures are explained (ngx_hsmkeys_user.c) */
    hsmkeys_config_set_log(hc, ngx_hsmkeys_log, &conf->uri);

    if (ngx_hsmkeys_config_str(cf, hc, "uri", &conf->uri,
                               "hsmkeys_uri", conf) != NGX_OK
        || ngx_hsmkeys_config_str(cf, hc, "domain", &conf->domain,
                                  "hsmkeys_domain", conf) != NGX_OK
        || ngx_hsmkeys_config_sec(cf, hc, "epoch", conf->epoch,
                                  "hsmkeys_epoch", conf) != NGX_OK
        || ngx_hsmkeys_config_sec(cf, hc, "lifetime", conf->lifetime,
                                  "hsmkeys_lifetime", conf) != NGX_OK
        || (conf->module_args.len
            && ngx_hsmkeys_config_str(cf, hc, "module-args",
                                      &conf->module_args,
                                      "hsmkeys_module_args", conf) != NGX_OK)
        || (conf->session_cache != NULL
            && hsmkeys_config_set(hc, "session-cache", "yes") != HSMKEYS_OK)
        || (conf->forward_erasable
            && hsmkeys_config_set(hc, "forward-erasable", "yes") != HSMKEYS_OK))
    {
        hsmkeys_config_free(hc);
        return NULL;
    }

    hk = NULL;
    rc = hsmkeys_open(hc, &hk);
    hsmkeys_config_free(hc);

    if (rc != HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_uri\" for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui: cannot open the "
                      "ticket master: %s (%s)",
                      conf->file, conf->line, hsmkeys_last_error(),
                      hsmkeys_result_name(rc));
        return NULL;
    }

    if (ngx_hsmkeys_user_check(cf, conf, hk) != NGX_OK) {
        hsmkeys_close(hk);
        return NULL;
    }

    ngx_log_error(NGX_LOG_INFO, cf->log, 0,
                  "hsmkeys %s: domain \"%V\", epoch %T s, lifetime %T s, "
                  "current epoch %uL",
                  hsmkeys_version(), &conf->domain,
                  (time_t) hsmkeys_epoch_seconds(hk),
                  (time_t) hsmkeys_lifetime_seconds(hk),
                  (uint64_t) hsmkeys_current_epoch(hk));

    return hk;
}


static ngx_int_t
ngx_hsmkeys_config_str(ngx_conf_t *cf, hsmkeys_config *hc, const char *option,
    ngx_str_t *value, const char *directive, ngx_hsmkeys_srv_conf_t *conf)
{
    int      rc;
    u_char  *s;

    s = ngx_pnalloc(cf->temp_pool, value->len + 1);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s, value->data, value->len);
    s[value->len] = '\0';

    rc = hsmkeys_config_set(hc, option, (const char *) s);

    /* the URI may carry a pin-value: do not leave a copy behind */
    ngx_explicit_memzero(s, value->len);

    if (rc != HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid \"%s\" for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui: %s (%s)",
                      directive, conf->file, conf->line,
                      hsmkeys_last_error(), hsmkeys_result_name(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_hsmkeys_config_sec(ngx_conf_t *cf, hsmkeys_config *hc, const char *option,
    time_t value, const char *directive, ngx_hsmkeys_srv_conf_t *conf)
{
    u_char     buf[NGX_TIME_T_LEN + 1];
    ngx_str_t  s;

    s.data = buf;
    s.len = ngx_sprintf(buf, "%T", value) - buf;

    return ngx_hsmkeys_config_str(cf, hc, option, &s, directive, conf);
}


ngx_int_t
ngx_hsmkeys_init_module(ngx_cycle_t *cycle, ngx_hsmkeys_main_conf_t *mcf)
{
    ngx_uint_t             i;
    ngx_hsmkeys_opened_t  *op;

    if (mcf == NULL) {
        return NGX_OK;
    }

    op = mcf->opened.elts;

    for (i = 0; i < mcf->opened.nelts; i++) {
        hsmkeys_forget(op[i].hk);
    }

    if (mcf->opened.nelts) {
        ngx_log_debug1(NGX_LOG_DEBUG_CORE, cycle->log, 0,
                       "hsmkeys: master wiped the keys of %ui context(s)",
                       mcf->opened.nelts);
    }

    return NGX_OK;
}


ngx_int_t
ngx_hsmkeys_init_worker(ngx_cycle_t *cycle, ngx_hsmkeys_main_conf_t *mcf)
{
    int                    rc;
    ngx_uint_t             i;
    ngx_hsmkeys_opened_t  *op;

    if (mcf == NULL || mcf->opened.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;   /* cache manager / loader: no TLS served */
    }

    op = mcf->opened.elts;

    for (i = 0; i < mcf->opened.nelts; i++) {

        /* the maintainer thread blocks every signal itself: nginx's
         * signals stay with the event loop */
        rc = hsmkeys_start(op[i].hk, NGX_HSMKEYS_START_WAIT_MS);

        if (rc == HSMKEYS_E_UNAVAILABLE) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "hsmkeys: no ticket key for domain \"%V\" after "
                          "%ui ms (token failing or slow): this worker "
                          "issues no ticket and makes full handshakes until "
                          "its key maintainer derives the keys: %s (%s)",
                          &op[i].domain, (ngx_uint_t) NGX_HSMKEYS_START_WAIT_MS,
                          hsmkeys_last_error(), hsmkeys_result_name(rc));

        } else if (rc != HSMKEYS_OK) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "hsmkeys: cannot start the key maintainer for "
                          "domain \"%V\": %s (%s)",
                          &op[i].domain, hsmkeys_last_error(),
                          hsmkeys_result_name(rc));
        }
    }

    return NGX_OK;
}


static void
ngx_hsmkeys_cleanup(void *data)
{
    hsmkeys_close(data);
}


/* libhsmkeys' syslog levels to nginx's (NGX_LOG_ERR == LOG_ERR + 1). */
static void
ngx_hsmkeys_log(void *arg, int level, const char *msg)
{
    ngx_uint_t  l;

    if (level < HSMKEYS_LOG_ERR) {
        l = NGX_LOG_ERR;

    } else if (level >= HSMKEYS_LOG_DEBUG) {
        l = NGX_LOG_DEBUG;

    } else {
        l = (ngx_uint_t) level + 1;
    }

    /* ngx_cycle follows reloads; a pointer captured at open would not */
    ngx_log_error(l, ngx_cycle->log, 0, "hsmkeys: %s", msg);

    if (level <= HSMKEYS_LOG_ERR && arg != NULL) {
        ngx_hsmkeys_user_explain(ngx_cycle->log, arg);
    }
}
