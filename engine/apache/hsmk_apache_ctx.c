/*
 * hsmk_apache_ctx.c - open and share hsmkeys contexts.  See hsmk_apache_ctx.h.
 *
 * Layout: an apr_hash_t (userdata of the configuration pool) from
 * hsmk_conf_key() to the open hsmkeys_ctx.  The SSL_CTXs take their own
 * references (hsmkeys_ssl_attach), so the hash holds exactly one.
 * The same hash lists the contexts to forget in the parent and to start in
 * each child (hsmk_ctx_forget_all, hsmk_ctx_start_all).
 */
#include "hsmk_apache_ctx.h" /* httpd.h first */
#include "hsmk_apache_user.h"

#include <pthread.h>
#include <signal.h>

#include "apr_hash.h"
#include "apr_strings.h"
#include "http_log.h"
#include "unixd.h"

#include <unistd.h>

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

#define HSMK_POOL_KEY "mod_hsmkeys:contexts"

void hsmk_log(void *arg, int level, const char *msg)
{
    server_rec *s = arg;

    if (level < APLOG_EMERG)
        level = APLOG_EMERG;
    if (level > APLOG_DEBUG)
        level = APLOG_DEBUG;
    ap_log_error(APLOG_MARK, level, 0, s, "hsmkeys: %s", msg);
}

static apr_status_t close_all(void *data)
{
    apr_hash_t *h = data;
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, h); hi != NULL; hi = apr_hash_next(hi)) {
        void *v;
        apr_hash_this(hi, NULL, NULL, &v);
        hsmkeys_close(v);
    }
    apr_hash_clear(h);
    return APR_SUCCESS;
}

static apr_hash_t *registry(apr_pool_t *p)
{
    void *h = NULL;

    apr_pool_userdata_get(&h, HSMK_POOL_KEY, p);
    if (h == NULL) {
        h = apr_hash_make(p);
        apr_pool_userdata_set(h, HSMK_POOL_KEY, apr_pool_cleanup_null, p);
        apr_pool_cleanup_register(p, h, close_all, apr_pool_cleanup_null);
    }
    return h;
}

typedef struct open_args {
    const hsmkeys_config *cfg;
    hsmkeys_ctx *ctx;
} open_args;

static int open_fn(void *arg)
{
    open_args *a = arg;
    return hsmkeys_open(a->cfg, &a->ctx);
}

static apr_status_t open_ctx(server_rec *s, const hsmk_srv_conf *c,
                             hsmkeys_ctx **out)
{
    hsmkeys_config *cfg = NULL;
    const char *opt = NULL;
    open_args a = { NULL, NULL };
    apr_status_t rv;
    int rc = HSMKEYS_E_STATE;

    *out = NULL;
    rc = hsmk_conf_build(c, hsmk_log, s, &cfg, &opt);
    if (rc != HSMKEYS_OK) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "mod_hsmkeys: server %s:%u (%s): %s refused: %s (%s)",
                     s->server_hostname, (unsigned)s->port, c->where, opt,
                     hsmkeys_last_error(), hsmkeys_result_name(rc));
        return APR_EGENERAL;
    }
    a.cfg = cfg;
    rv = hsmk_as_user(s, open_fn, &a, &rc);
    hsmkeys_config_free(cfg);
    if (rv != APR_SUCCESS) {
        if (a.ctx != NULL)
            hsmkeys_close(a.ctx);
        return rv;
    }
    if (rc != HSMKEYS_OK) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "mod_hsmkeys: server %s:%u (%s): cannot use the ticket "
                     "master named by HSMKeysURI as User %s: %s (%s); the "
                     "User's processes log in again after the fork, so the "
                     "User must be able to use the token and own the PIN file",
                     s->server_hostname, (unsigned)s->port, c->where,
                     ap_unixd_config.user_name ? ap_unixd_config.user_name : "?",
                     hsmkeys_last_error(), hsmkeys_result_name(rc));
        return APR_EGENERAL;
    }
    *out = a.ctx;
    return APR_SUCCESS;
}

apr_status_t hsmk_ctx_get(server_rec *s, apr_pool_t *p, const hsmk_srv_conf *c,
                          hsmkeys_ctx **out)
{
    apr_hash_t *h = registry(p);
    const char *key = hsmk_conf_key(p, c);
    hsmkeys_ctx *ctx = apr_hash_get(h, key, APR_HASH_KEY_STRING);
    apr_status_t rv;

    if (ctx == NULL) {
        rv = open_ctx(s, c, &ctx);
        if (rv != APR_SUCCESS)
            return rv;
        apr_hash_set(h, key, APR_HASH_KEY_STRING, ctx);
    }
    *out = ctx;
    return APR_SUCCESS;
}

apr_status_t hsmk_ctx_probe(server_rec *s, apr_pool_t *ptemp,
                            const hsmk_srv_conf *c)
{
    hsmkeys_ctx *ctx = NULL;
    apr_status_t rv;

    (void)ptemp;
    rv = open_ctx(s, c, &ctx);
    if (rv == APR_SUCCESS)
        hsmkeys_close(ctx);
    return rv;
}

int hsmk_ctx_list(apr_pool_t *p, hsmkeys_ctx **out, int max)
{
    void *h = NULL;
    apr_hash_index_t *hi;
    int n = 0;

    apr_pool_userdata_get(&h, HSMK_POOL_KEY, p);
    if (h == NULL)
        return 0;
    /* the same hash in the parent and every child (inherited): one order */
    for (hi = apr_hash_first(NULL, h); hi != NULL && n < max; hi = apr_hash_next(hi)) {
        void *v;
        apr_hash_this(hi, NULL, NULL, &v);
        out[n++] = v;
    }
    return n;
}

/* Each context once, whatever number of servers share it. */
static void each_ctx(apr_pool_t *pconf, void (*fn)(hsmkeys_ctx *, server_rec *),
                     server_rec *s)
{
    void *h = NULL;
    apr_hash_index_t *hi;

    apr_pool_userdata_get(&h, HSMK_POOL_KEY, pconf);
    if (h == NULL)
        return;
    for (hi = apr_hash_first(NULL, h); hi != NULL; hi = apr_hash_next(hi)) {
        void *v;
        apr_hash_this(hi, NULL, NULL, &v);
        fn(v, s);
    }
}

static void forget_one(hsmkeys_ctx *ctx, server_rec *s)
{
    (void)s;
    hsmkeys_forget(ctx);
}

void hsmk_ctx_forget_all(apr_pool_t *pconf)
{
    each_ctx(pconf, forget_one, NULL);
}

static void start_one(hsmkeys_ctx *ctx, server_rec *s)
{
    int rc;

    /* The maintainer thread blocks every signal itself: the MPM's signals
     * (graceful stop, restart) stay with the threads that handle them. */
    rc = hsmkeys_start(ctx, HSMK_START_WAIT_MS);
    if (rc == HSMKEYS_E_UNAVAILABLE)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_hsmkeys: child %" APR_PID_T_FMT ": no ticket key after "
                     "%u ms (token failing or slow): full handshakes and no "
                     "tickets until the key maintainer has derived them: %s (%s)",
                     getpid(), (unsigned)HSMK_START_WAIT_MS, hsmkeys_last_error(),
                     hsmkeys_result_name(rc));
    else if (rc != HSMKEYS_OK)
        ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s,
                     "mod_hsmkeys: child %" APR_PID_T_FMT ": cannot start the key "
                     "maintainer: %s (%s)", getpid(), hsmkeys_last_error(),
                     hsmkeys_result_name(rc));
}

void hsmk_ctx_start_all(apr_pool_t *pconf, server_rec *s)
{
    each_ctx(pconf, start_one, s);
}
