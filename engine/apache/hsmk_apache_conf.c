/*
 * hsmk_apache_conf.c - mod_hsmkeys directives, per-server create/merge, and
 * the hsmkeys_config built from them.  See hsmk_apache_conf.h.
 *
 * Every value directive is a (directive, libhsmkeys option) pair; the value
 * is stored as text and parsed by libhsmkeys at parse time (to fail early
 * with Apache's "Syntax error on line N") and again when the context opens.
 * Threat: PINs in the configuration.  A URI carrying pin-value= is refused;
 * the PIN comes from a file (pin-source= or HSMKeysPINFile) that libhsmkeys
 * reads only while logging in and refuses when group or others can read it.
 */
#include <stddef.h>
#include <string.h>

#include "hsmk_apache_conf.h" /* httpd.h first */
#include "hsmk_apache_sc.h"

#include "apr_strings.h"
#include "http_log.h"

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

typedef struct hsmk_opt {
    const char *option; /* libhsmkeys option name */
    size_t offset;      /* field of hsmk_srv_conf */
} hsmk_opt;

static const hsmk_opt opt_uri         = { "uri",         offsetof(hsmk_srv_conf, uri) };
static const hsmk_opt opt_domain      = { "domain",      offsetof(hsmk_srv_conf, domain) };
static const hsmk_opt opt_epoch       = { "epoch",       offsetof(hsmk_srv_conf, epoch) };
static const hsmk_opt opt_lifetime    = { "lifetime",    offsetof(hsmk_srv_conf, lifetime) };
static const hsmk_opt opt_module      = { "module",      offsetof(hsmk_srv_conf, module) };
static const hsmk_opt opt_module_args = { "module-args", offsetof(hsmk_srv_conf, module_args) };
static const hsmk_opt opt_pin_file    = { "pin-source",  offsetof(hsmk_srv_conf, pin_file) };
static const hsmk_opt opt_forward     = { "forward-erasable",
                                          offsetof(hsmk_srv_conf, forward_erasable) };

/* Order in which hsmk_conf_build applies options: the URI first, so that
 * explicit module / PIN file directives override its query attributes. */
static const struct {
    const hsmk_opt *opt;
    const char *directive;
} build_order[] = {
    { &opt_uri, "HSMKeysURI" },
    { &opt_module, "HSMKeysModule" },
    { &opt_module_args, "HSMKeysModuleArgs" },
    { &opt_pin_file, "HSMKeysPINFile" },
    { &opt_domain, "HSMKeysDomain" },
    { &opt_epoch, "HSMKeysEpoch" },
    { &opt_lifetime, "HSMKeysLifetime" },
    { &opt_forward, "HSMKeysForwardErasable" },
};

static const char **field(hsmk_srv_conf *c, const hsmk_opt *o)
{
    return (const char **)((char *)c + o->offset);
}

static const char *field_get(const hsmk_srv_conf *c, const hsmk_opt *o)
{
    return *(const char *const *)((const char *)c + o->offset);
}

static const char *where_of(cmd_parms *cmd)
{
    if (cmd->directive == NULL || cmd->directive->filename == NULL)
        return "(command line)";
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                        cmd->directive->line_num);
}

/* RFC 7512 allows the PIN itself in the URI; a configuration file is no
 * place for it. */
static int has_pin_value(const char *uri)
{
    const char *q = strchr(uri, '?');
    size_t n = strlen("pin-value=");

    for (; q != NULL; q = strchr(q + 1, '&')) {
        if (strncasecmp(q + 1, "pin-value=", n) == 0)
            return 1;
    }
    return 0;
}

static const char *set_option(cmd_parms *cmd, void *dummy, const char *value)
{
    const hsmk_opt *o = cmd->info;
    hsmk_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &hsmkeys_module);
    hsmkeys_config *scratch = NULL;
    const char *err = NULL;
    int rc;

    (void)dummy;
    if (o == &opt_uri && has_pin_value(value))
        return apr_psprintf(cmd->pool, "%s: the URI carries pin-value=, i.e. "
                            "the PIN in the configuration file; put the PIN in "
                            "a file readable only by the server and name it "
                            "with pin-source= or HSMKeysPINFile",
                            cmd->cmd->name);
    if (*value == '\0')
        return apr_psprintf(cmd->pool, "%s: empty value", cmd->cmd->name);

    rc = hsmkeys_config_new(&scratch);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(scratch, o->option, value);
    if (rc != HSMKEYS_OK)
        err = apr_psprintf(cmd->pool, "%s: %s (%s)", cmd->cmd->name,
                           hsmkeys_last_error(), hsmkeys_result_name(rc));
    hsmkeys_config_free(scratch);
    if (err != NULL)
        return err;

    *field(c, o) = value;
    if (c->where == NULL)
        c->where = where_of(cmd);
    return NULL;
}

static const char *set_enabled(cmd_parms *cmd, void *dummy, int flag)
{
    hsmk_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &hsmkeys_module);

    (void)dummy;
    c->enabled = flag ? 1 : 0;
    c->where = where_of(cmd);
    return NULL;
}

/* HSMKeysForwardErasable On|Off: the library's forward-erasable yes|no. */
static const char *set_forward(cmd_parms *cmd, void *dummy, int flag)
{
    hsmk_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &hsmkeys_module);

    (void)dummy;
    c->forward_erasable = flag ? "yes" : "no";
    return NULL;
}

const command_rec hsmk_cmds[] = {
    AP_INIT_FLAG("HSMKeysTickets", set_enabled, NULL, RSRC_CONF,
                 "On: encrypt and decrypt TLS session tickets with the "
                 "fleet's epoch keys derived in the PKCS#11 token"),
    AP_INIT_TAKE1("HSMKeysURI", set_option, (void *)&opt_uri, RSRC_CONF,
                  "pkcs11: URI of the master: token=...;object=...?"
                  "module-path=...&pin-source=..."),
    AP_INIT_TAKE1("HSMKeysDomain", set_option, (void *)&opt_domain, RSRC_CONF,
                  "ticket domain: equal on every server that resumes the "
                  "others' tickets, different for any other service"),
    AP_INIT_TAKE1("HSMKeysEpoch", set_option, (void *)&opt_epoch, RSRC_CONF,
                  "epoch length (key rotation period), e.g. 1h [1h]"),
    AP_INIT_TAKE1("HSMKeysLifetime", set_option, (void *)&opt_lifetime, RSRC_CONF,
                  "ticket lifetime, at most 7d [2h]"),
    AP_INIT_FLAG("HSMKeysForwardErasable", set_forward, NULL, RSRC_CONF,
                 "On: epoch keys also depend on a per-epoch state the tokens "
                 "erase after the window (every server of the fleet) [Off]"),
    AP_INIT_TAKE1("HSMKeysModule", set_option, (void *)&opt_module, RSRC_CONF,
                  "PKCS#11 module path (overrides the URI's module-path)"),
    AP_INIT_TAKE1("HSMKeysModuleArgs", set_option, (void *)&opt_module_args,
                  RSRC_CONF, "string passed to the module's C_Initialize "
                  "(pReserved), e.g. for NSS softokn"),
    AP_INIT_TAKE1("HSMKeysPINFile", set_option, (void *)&opt_pin_file, RSRC_CONF,
                  "file holding the token user PIN (overrides pin-source=); "
                  "must be readable by its owner only"),
    AP_INIT_TAKE_ARGV("HSMKeysSessionCache", hsmk_sc_set, NULL, RSRC_CONF,
                      "redis://IP[:PORT] | unix:/PATH [password-file=PATH] "
                      "[timeout=5ms] [connect-timeout=5ms] | off: sealed session "
                      "cache shared by the fleet for session-ID clients"),
    { NULL }
};

void *hsmk_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    hsmk_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->enabled = HSMK_UNSET;
    return c;
}

void *hsmk_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const hsmk_srv_conf *base = basev, *add = addv;
    hsmk_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    size_t i;

    c->enabled = add->enabled != HSMK_UNSET ? add->enabled : base->enabled;
    for (i = 0; i < sizeof(build_order) / sizeof(build_order[0]); i++) {
        const hsmk_opt *o = build_order[i].opt;
        const char *v = field_get(add, o);
        *field(c, o) = v != NULL ? v : field_get(base, o);
    }
    c->where = add->where != NULL ? add->where : base->where;
    c->sesscache = add->sesscache != NULL ? add->sesscache : base->sesscache;
    c->sesscache_where = add->sesscache != NULL ? add->sesscache_where : base->sesscache_where;
    return c;
}

const hsmk_srv_conf *hsmk_srv_conf_get(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &hsmkeys_module);
}

const char *hsmk_conf_check(apr_pool_t *p, const hsmk_srv_conf *c)
{
    const char *where = c->where != NULL ? c->where : "?";

    if (c->uri == NULL)
        return apr_psprintf(p, "HSMKeysTickets On (%s) needs HSMKeysURI "
                            "\"pkcs11:token=...;object=...\" naming the master",
                            where);
    if (c->domain == NULL)
        return apr_psprintf(p, "HSMKeysTickets On (%s) needs HSMKeysDomain: "
                            "a name shared by the servers that resume each "
                            "other's tickets", where);
    return NULL;
}

const char *hsmk_conf_key(apr_pool_t *p, const hsmk_srv_conf *c)
{
    const char *k = "";
    size_t i;

    for (i = 0; i < sizeof(build_order) / sizeof(build_order[0]); i++) {
        const char *v = field_get(c, build_order[i].opt);
        /* "\n" cannot occur in a directive argument. */
        k = apr_pstrcat(p, k, v != NULL ? "=" : "-", v != NULL ? v : "", "\n",
                        NULL);
    }
    return HSMK_SC_STORE(c) != NULL ? apr_pstrcat(p, k, "session-cache\n", NULL) : k;
}

int hsmk_conf_build(const hsmk_srv_conf *c, hsmkeys_log_fn fn, void *arg,
                    hsmkeys_config **out, const char **opt)
{
    hsmkeys_config *cfg = NULL;
    size_t i;
    int rc;

    *out = NULL;
    *opt = "HSMKeysTickets";
    rc = hsmkeys_config_new(&cfg);
    if (rc != HSMKEYS_OK)
        return rc;
    hsmkeys_config_set_log(cfg, fn, arg);
    for (i = 0; i < sizeof(build_order) / sizeof(build_order[0]); i++) {
        const char *v = field_get(c, build_order[i].opt);
        if (v == NULL)
            continue;
        rc = hsmkeys_config_set(cfg, build_order[i].opt->option, v);
        if (rc != HSMKEYS_OK) {
            *opt = build_order[i].directive;
            hsmkeys_config_free(cfg);
            return rc;
        }
    }
    if (HSMK_SC_STORE(c) != NULL &&
        (rc = hsmkeys_config_set(cfg, "session-cache", "yes")) != HSMKEYS_OK) {
        *opt = "HSMKeysSessionCache";
        hsmkeys_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return HSMKEYS_OK;
}
