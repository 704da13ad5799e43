/*
 * hsmk_apache_ctx.h - open the hsmkeys contexts of mod_hsmkeys' servers.
 *
 * Servers whose settings are equal share one context (one token session,
 * one key cache) for the lifetime of a configuration pool; the pool's
 * cleanup closes them on restart and exit, which wipes the cached keys.
 * The parent forgets the keys once the configuration is attached; each
 * child starts the contexts' key maintainers (libhsmkeys threads that own
 * all token work, so no thread serving a connection waits for the token).
 * Threat: a token that cannot be used must stop the server from starting
 * (or `apache2 -t` from passing) with a message that says why; a server
 * never runs with tickets under a local random key instead.
 */
#ifndef HSMK_APACHE_CTX_H
#define HSMK_APACHE_CTX_H

#include "httpd.h"

#include <hsmkeys/hsmkeys.h>

#include "hsmk_apache_conf.h"

/* libhsmkeys log sink: arg is the server_rec to log for. */
void hsmk_log(void *arg, int level, const char *msg);

/*
 * The context for server s with settings c, opened on first use and kept
 * until pool p is cleared.  No reference is added for the caller.  On
 * failure logs an EMERG message (server, directive, libhsmkeys' reason and
 * result name) and returns APR_EGENERAL.
 */
apr_status_t hsmk_ctx_get(server_rec *s, apr_pool_t *p, const hsmk_srv_conf *c,
                          hsmkeys_ctx **out);

/* How long a starting child waits for its first keys (hsmkeys_start). */
#define HSMK_START_WAIT_MS 1000

/* Parent, after post_config: wipe the keys every context of this
 * configuration derived at open (hsmkeys_forget); the parent serves
 * nothing and so holds no key bytes between restarts. */
void hsmk_ctx_forget_all(apr_pool_t *pconf);

/* Child, in child_init: start each context's key maintainer thread, which
 * does every token call of this child from then on, and wait at most
 * HSMK_START_WAIT_MS for the first keys (a warning when they are late). */
void hsmk_ctx_start_all(apr_pool_t *pconf, server_rec *s);

/* Open and close at once, to report token errors from `apache2 -t`. */
apr_status_t hsmk_ctx_probe(server_rec *s, apr_pool_t *ptemp,
                            const hsmk_srv_conf *c);

/* The contexts opened in pool p (at most max), in an order the children
 * share with the parent.  Returns their number. */
int hsmk_ctx_list(apr_pool_t *p, hsmkeys_ctx **out, int max);

#endif /* HSMK_APACHE_CTX_H */
