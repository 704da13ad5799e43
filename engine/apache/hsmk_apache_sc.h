/*
 * hsmk_apache_sc.h - HSMKeysSessionCache: the sealed shared session cache
 * on Redis (engine/sesscache) for mod_ssl servers, so that TLS 1.2 clients
 * that resume by session ID only resume on every server of the fleet.
 *
 *   HSMKeysSessionCache redis://127.0.0.1:6379 password-file=/etc/apache2/redis.pw \
 *                       timeout=5ms connect-timeout=5ms
 *   HSMKeysSessionCache unix:/run/redis/redis.sock password-file=...
 *   HSMKeysSessionCache off
 *
 * Owns: the directive (parsed by the parent as root: the password file is
 * read then and must be 0600), the parse-time check of the store (a bad
 * URL or a refused AUTH is a syntax error with file and line, so
 * `apache2 -t` and start fail; an unreachable store is a warning), and the
 * attachment to a server's SSL_CTX, which replaces mod_ssl's own session
 * cache callbacks on that server (SSLSessionCache is then unused there).
 * Threat handled: see engine/sesscache/sc_seal.h and sc_store.h.
 */
#ifndef HSMK_APACHE_SC_H
#define HSMK_APACHE_SC_H

#include <openssl/ssl.h>

#include "httpd.h"
#include "http_config.h"

#include <hsmkeys/hsmkeys.h>

#include "hsmk_apache_conf.h"

/* Directive handler (AP_INIT_TAKE_ARGV). */
const char *hsmk_sc_set(cmd_parms *cmd, void *dummy, int argc, char *const argv[]);

/* Attach c's session cache to ssl_ctx with context hk.  APR_SUCCESS, or
 * APR_EGENERAL after an EMERG message. */
apr_status_t hsmk_sc_attach(server_rec *s, const hsmk_srv_conf *c,
                            SSL_CTX *ssl_ctx, hsmkeys_ctx *hk);

#endif /* HSMK_APACHE_SC_H */
