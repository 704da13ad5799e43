/*
 * hsmk_apache_conf.h - mod_hsmkeys per-server configuration: the directive
 * table, create/merge, and the translation into an hsmkeys_config.
 *
 * Threat handled here: a configuration that would put a PIN into the
 * configuration file (pkcs11: URI with pin-value) is refused at parse time;
 * values are checked by libhsmkeys' own parser so that a typo fails
 * `apache2 -t` with the file and line, not the first handshake.
 */
#ifndef HSMK_APACHE_CONF_H
#define HSMK_APACHE_CONF_H

#include "httpd.h"
#include "http_config.h"

#include <hsmkeys/hsmkeys.h>

/* One server's settings; NULL / HSMK_UNSET means "inherit". */
#define HSMK_UNSET (-1)

typedef struct hsmk_srv_conf {
    int enabled;              /* HSMKeysTickets On|Off */
    const char *uri;          /* HSMKeysURI */
    const char *domain;       /* HSMKeysDomain */
    const char *epoch;        /* HSMKeysEpoch */
    const char *lifetime;     /* HSMKeysLifetime */
    const char *module;       /* HSMKeysModule */
    const char *module_args;  /* HSMKeysModuleArgs */
    const char *pin_file;     /* HSMKeysPINFile */
    const char *forward_erasable; /* HSMKeysForwardErasable: "yes"/"no" */
    const char *where;        /* "file:line" of HSMKeysTickets On, for messages */
    void *sesscache;          /* HSMKeysSessionCache: an sc_store, HSMK_SC_OFF,
                                 or NULL (inherit) (hsmk_apache_sc.c) */
    const char *sesscache_where;
} hsmk_srv_conf;

/* HSMKeysSessionCache off (overrides an inherited cache). */
#define HSMK_SC_OFF ((void *)&hsmk_cmds)
/* The server's session cache store, or NULL. */
#define HSMK_SC_STORE(c) ((c)->sesscache == HSMK_SC_OFF ? NULL : (c)->sesscache)

extern const command_rec hsmk_cmds[];

void *hsmk_create_srv_conf(apr_pool_t *p, server_rec *s);
void *hsmk_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

/* The effective configuration of server s. */
const hsmk_srv_conf *hsmk_srv_conf_get(const server_rec *s);

/* NULL when the server configuration is complete, else a message naming the
 * missing directive (allocated from p). */
const char *hsmk_conf_check(apr_pool_t *p, const hsmk_srv_conf *c);

/* A string that is equal for two servers exactly when they may share one
 * hsmkeys context (same master, domain, schedule and module). */
const char *hsmk_conf_key(apr_pool_t *p, const hsmk_srv_conf *c);

/*
 * Build the hsmkeys_config of c, with log sink fn(arg).  Returns HSMKEYS_OK
 * or the hsmkeys_config_set / hsmkeys_config_new error; *opt names the
 * directive that was refused.
 */
int hsmk_conf_build(const hsmk_srv_conf *c, hsmkeys_log_fn fn, void *arg,
                    hsmkeys_config **out, const char **opt);

#endif /* HSMK_APACHE_CONF_H */
