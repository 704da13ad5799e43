/*
 * ngx_http_hsmkeys_vhosts.h - one hsmkeys context per connection across
 * the name-based virtual servers of a listen address.
 *
 * Owns: the check, after every server is merged, that each TLS listen
 * address whose servers use hsmkeys has it on in its default server, and
 * the selector installed on that default server's SSL_CTX, which picks a
 * connection's context by the server name the client sent, with nginx's own
 * server_name rules (exact, wildcards, regular expressions, default).
 *
 * Threat handled: tickets decrypted under one virtual server's domain and
 * encrypted under another's (OpenSSL 3.0 decrypts before nginx's
 * servername callback switches servers), and a ticket of one virtual
 * server's domain resumed on another: each connection uses the context of
 * the server nginx selects for its name, for every ticket it decrypts or
 * issues.
 */

#ifndef _NGX_HTTP_HSMKEYS_VHOSTS_H_INCLUDED_
#define _NGX_HTTP_HSMKEYS_VHOSTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* postconfiguration: validate each TLS listen address and install the
 * selector on its default server's SSL_CTX.  NGX_ERROR (with an EMERG
 * message saying what to change) fails the configuration. */
ngx_int_t ngx_http_hsmkeys_vhosts_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_HSMKEYS_VHOSTS_H_INCLUDED_ */
