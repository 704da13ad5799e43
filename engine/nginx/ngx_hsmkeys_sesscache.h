/*
 * ngx_hsmkeys_sesscache.h - the hsmkeys_session_cache directive (http and
 * stream): a sealed session cache on Redis shared by the fleet, for TLS 1.2
 * clients that resume by session ID only (engine/sesscache).
 *
 *     hsmkeys_session_cache redis://127.0.0.1:6379
 *                           password_file=/etc/nginx/redis.pw
 *                           timeout=5ms connect_timeout=5ms;
 *     hsmkeys_session_cache unix:/run/redis/redis.sock ...;
 *     hsmkeys_session_cache off;
 *
 * Owns: parsing the directive (the password file is read by the master at
 * configuration time, as root, and must be 0600), the configuration-time
 * check of the store (a bad URL or a refused AUTH fails "nginx -t" and
 * start with an EMERG naming the directive and file:line; an unreachable
 * store is a warning: servers start, session IDs resume once it answers),
 * and attaching the cache callbacks to a server's SSL_CTX.
 * Threat handled: see engine/sesscache/sc_seal.h and sc_store.h.
 */
#ifndef _NGX_HSMKEYS_SESSCACHE_H_INCLUDED_
#define _NGX_HSMKEYS_SESSCACHE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_common.h"

char *ngx_hsmkeys_set_session_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Attach conf->session_cache (an sc_store) to ssl_ctx with context hk. */
ngx_int_t ngx_hsmkeys_sesscache_attach(ngx_conf_t *cf,
    ngx_hsmkeys_srv_conf_t *conf, SSL_CTX *ssl_ctx, hsmkeys_ctx *hk);

#endif /* _NGX_HSMKEYS_SESSCACHE_H_INCLUDED_ */
