/*
 * mod_hsmkeys.c - Apache httpd module: TLS session tickets of mod_ssl servers
 * encrypted with the fleet's epoch keys, derived in a PKCS#11 token by
 * libhsmkeys, so that every server behind a load balancer resumes every
 * other server's tickets.
 *
 * Hooks:
 *   check_config     directives complete; name-based virtual hosts of an
 *                    address can share the ticket callback of its first one
 *                    (hsmk_apache_vhosts.c); under `apache2 -t` also opens
 *                    the token, so token, PIN and master errors fail the test;
 *   ssl_init_server  mod_ssl's optional hook (declared here: Debian ships no
 *                    mod_ssl_openssl.h), run in the parent after every
 *                    SSL_CTX is set up: opens the context and attaches the
 *                    ticket-key callback (hsmkeys_ssl_attach);
 *   post_config      warns when HSMKeysTickets is On but no SSL server got it,
 *                    then wipes the keys the parent derived while opening
 *                    (hsmkeys_forget): the parent serves nothing;
 *   child_init       in each child (event, worker, prefork), after it took
 *                    the User's identity: starts the key maintainer of each
 *                    context (hsmkeys_start), a thread that re-initialises
 *                    PKCS#11 in the child and does all its token work:
 *                    derivation ahead of need, the token's generations
 *                    re-read (rotation and retirement take effect with no
 *                    restart), backoff, expiry.  Handshakes, also those of
 *                    a prefork child's only thread, never call the token.
 *   post_config      also makes the metrics segment (hsmk_apache_metrics.c);
 *   child_init, handler  "SetHandler hsmkeys-metrics": Prometheus metrics
 *                    summed over the children.
 *
 * Threat handled: a server that silently issues tickets under its own random
 * key (the fleet then stops resuming and nobody notices).  Any failure to
 * reach the master fails startup; the callback issues no ticket rather than
 * fall back to a local key.
 */
#include <openssl/ssl.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "apr_optional_hooks.h"
#include "mod_ssl.h"

#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>

#include "hsmk_apache_conf.h"
#include "hsmk_apache_ctx.h"
#include "hsmk_apache_metrics.h"
#include "hsmk_apache_sc.h"
#include "hsmk_apache_vhosts.h"

/* mod_ssl's hook, as in httpd's modules/ssl/mod_ssl_openssl.h. */
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, init_server,
                          (server_rec *s, apr_pool_t *p, int is_proxy,
                           SSL_CTX *ctx))

module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

/* Pool userdata set once an SSL_CTX got the callback in this configuration. */
#define HSMK_ATTACHED_KEY "mod_hsmkeys:attached"

static int any_enabled(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        if (hsmk_srv_conf_get(s)->enabled == 1)
            return 1;
    }
    return 0;
}

static int hsmk_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *base)
{
    int testing = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
    apr_hash_t *probed = apr_hash_make(ptemp);
    server_rec *s;
    int rc = OK;

    (void)pconf;
    (void)plog;
    if (!any_enabled(base))
        return OK;
    if (ap_find_linked_module("mod_ssl.c") == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, base,
                     "mod_hsmkeys: HSMKeysTickets On needs mod_ssl "
                     "(a2enmod ssl, or LoadModule ssl_module)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!hsmk_vhosts_check(ptemp, base))
        rc = HTTP_INTERNAL_SERVER_ERROR;
    for (s = base; s != NULL; s = s->next) {
        const hsmk_srv_conf *c = hsmk_srv_conf_get(s);
        const char *err, *key;

        if (c->enabled != 1)
            continue;
        err = hsmk_conf_check(ptemp, c);
        if (err != NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "mod_hsmkeys: server %s:%u: %s", s->server_hostname,
                         (unsigned)s->port, err);
            rc = HTTP_INTERNAL_SERVER_ERROR;
            continue;
        }
        if (!testing)
            continue; /* ssl_init_server opens it for real */
        key = hsmk_conf_key(ptemp, c);
        if (apr_hash_get(probed, key, APR_HASH_KEY_STRING) != NULL)
            continue;
        apr_hash_set(probed, key, APR_HASH_KEY_STRING, "");
        if (hsmk_ctx_probe(s, ptemp, c) != APR_SUCCESS)
            rc = HTTP_INTERNAL_SERVER_ERROR;
    }
    return rc;
}

static int hsmk_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                            SSL_CTX *ssl_ctx)
{
    const hsmk_srv_conf *c = hsmk_srv_conf_get(s);
    hsmkeys_ctx *hk = NULL;
    int rc;

    if (is_proxy || c->enabled != 1)
        return OK;
    if (hsmk_conf_check(p, c) != NULL)
        return HTTP_INTERNAL_SERVER_ERROR; /* reported by check_config */
    if (SSL_CTX_get_options(ssl_ctx) & SSL_OP_NO_TICKET)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_hsmkeys: server %s:%u: SSLSessionTickets off: "
                     "HSMKeysTickets On (%s) has no effect (OpenSSL issues "
                     "no stateless tickets)",
                     s->server_hostname, (unsigned)s->port, c->where);
    if (hsmk_ctx_get(s, p, c, &hk) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    rc = hsmkeys_ssl_attach(ssl_ctx, hk);
    if (rc != HSMKEYS_OK) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "mod_hsmkeys: server %s:%u: cannot install the ticket key "
                     "callback: %s (%s)", s->server_hostname, (unsigned)s->port,
                     hsmkeys_last_error(), hsmkeys_result_name(rc));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (HSMK_SC_STORE(c) != NULL && hsmk_sc_attach(s, c, ssl_ctx, hk) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "mod_hsmkeys: server %s:%u: session tickets under the token's "
                 "epoch keys (domain \"%s\", epoch %" APR_INT64_T_FMT "s, lifetime %"
                 APR_INT64_T_FMT "s, current epoch %" APR_UINT64_T_FMT ")",
                 s->server_hostname, (unsigned)s->port, c->domain,
                 (apr_int64_t)hsmkeys_epoch_seconds(hk),
                 (apr_int64_t)hsmkeys_lifetime_seconds(hk),
                 (apr_uint64_t)hsmkeys_current_epoch(hk));
    apr_pool_userdata_setn("yes", HSMK_ATTACHED_KEY, apr_pool_cleanup_null, p);
    return OK;
}

static int hsmk_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *base)
{
    void *n = NULL;

    (void)plog;
    (void)ptemp;
    apr_pool_userdata_get(&n, HSMK_ATTACHED_KEY, pconf);
    if (any_enabled(base) && n == NULL)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, base,
                     "mod_hsmkeys: HSMKeysTickets On, but no server with "
                     "SSLEngine on uses it: tickets are not shared");
    hsmk_metrics_post_config(pconf, base);
    hsmk_ctx_forget_all(pconf);
    return OK;
}

static void hsmk_child_init(apr_pool_t *pchild, server_rec *s)
{
    hsmk_ctx_start_all(s->process->pconf, s);
    hsmk_metrics_child_init(pchild, s);
}

static void hsmk_register_hooks(apr_pool_t *p)
{
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    (void)p;
    ap_hook_check_config(hsmk_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hsmk_post_config, after_ssl, NULL, APR_HOOK_LAST);
    ap_hook_child_init(hsmk_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, init_server, hsmk_init_server, NULL, NULL,
                      APR_HOOK_MIDDLE);
    ap_hook_handler(hsmk_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA hsmkeys_module = {
    STANDARD20_MODULE_STUFF,
    NULL,                  /* per-directory config creator */
    NULL,                  /* dir config merger */
    hsmk_create_srv_conf,  /* server config creator */
    hsmk_merge_srv_conf,   /* server config merger */
    hsmk_cmds,             /* command table */
    hsmk_register_hooks,   /* set up other request processing hooks */
    AP_MODULE_FLAG_NONE,   /* flags */
};
