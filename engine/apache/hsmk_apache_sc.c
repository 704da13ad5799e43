/*
 * hsmk_apache_sc.c - HSMKeysSessionCache.  See hsmk_apache_sc.h.
 *
 * Lifecycle: one sc_store per directive occurrence, freed with the
 * configuration pool (restart, exit); every SSL_CTX that uses it takes its
 * own reference.  Children inherit it without a connection; each thread
 * that handshakes makes its own on first use (event/worker: up to
 * ThreadsPerChild connections per child; prefork: one per child).
 */
#include "hsmk_apache_sc.h" /* httpd.h first */
#include "hsmk_apache_ctx.h"

#include "apr_strings.h"
#include "http_log.h"

#include "sc_conf.h"
#include "sc_glue.h"
#include "sc_store.h"

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

#define HSMK_SC_PROBE_MS 1000

static apr_status_t store_cleanup(void *data)
{
    sc_store_free(data);
    return APR_SUCCESS;
}

const char *hsmk_sc_set(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    hsmk_srv_conf *c = ap_get_module_config(cmd->server->module_config, &hsmkeys_module);
    char err[400], addr[160];
    sc_conf sc;
    sc_store *st;
    int i, rc;

    (void)dummy;
    if (argc < 1)
        return apr_psprintf(cmd->pool, "%s: needs redis://IP[:PORT], unix:/PATH or off",
                            cmd->cmd->name);
    c->sesscache_where = cmd->directive != NULL && cmd->directive->filename != NULL
        ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename, cmd->directive->line_num)
        : "(command line)";
    if (argc == 1 && strcasecmp(argv[0], "off") == 0) {
        c->sesscache = HSMK_SC_OFF;
        return NULL;
    }
    sc_conf_init(&sc);
    if (sc_conf_url(&sc, argv[0], err, sizeof err) != 0)
        return apr_psprintf(cmd->pool, "%s: invalid store address: %s", cmd->cmd->name, err);
    for (i = 1; i < argc; i++) {
        if (sc_conf_option(&sc, argv[i], err, sizeof err) != 0) {
            sc_conf_clear(&sc);
            return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
        }
    }
    sc_conf_addr(&sc, addr, sizeof addr);
    rc = sc_store_probe(&sc, HSMK_SC_PROBE_MS, err, sizeof err);
    if (rc == 2) {
        sc_conf_clear(&sc);
        return apr_psprintf(cmd->pool, "%s: the store %s %s", cmd->cmd->name, addr, err);
    }
    if (rc == 1)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     "mod_hsmkeys: %s (%s): the store %s is unreachable now (%s); "
                     "servers start, and session-ID clients resume across the "
                     "fleet once it answers", cmd->cmd->name, c->sesscache_where,
                     addr, err);
    st = sc_store_new(&sc, hsmk_log, cmd->server);
    sc_conf_clear(&sc);
    if (st == NULL)
        return apr_psprintf(cmd->pool, "%s: out of memory", cmd->cmd->name);
    apr_pool_cleanup_register(cmd->pool, st, store_cleanup, apr_pool_cleanup_null);
    c->sesscache = st;
    return NULL;
}

apr_status_t hsmk_sc_attach(server_rec *s, const hsmk_srv_conf *c,
                            SSL_CTX *ssl_ctx, hsmkeys_ctx *hk)
{
    char err[300];

    if (sc_attach(ssl_ctx, hk, c->domain, c->sesscache, hsmk_log, s, err, sizeof err) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "mod_hsmkeys: server %s:%u: HSMKeysSessionCache (%s): cannot "
                     "install the session cache callbacks: %s", s->server_hostname,
                     (unsigned)s->port, c->sesscache_where, err);
        return APR_EGENERAL;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "mod_hsmkeys: server %s:%u: TLS 1.2 session IDs resume through the "
                 "sealed session cache (%s)", s->server_hostname, (unsigned)s->port,
                 c->sesscache_where);
    return APR_SUCCESS;
}
