/*
 * ngx_http_hsmkeys_vhosts.c - per-connection hsmkeys context for name-based
 * virtual servers.  See ngx_http_hsmkeys_vhosts.h.
 *
 * Why a selector: OpenSSL runs the ticket key callback of the SSL_CTX a
 * connection started on (the default server of the listen address), and
 * in OpenSSL 3.0 it decrypts a TLS 1.2 or 1.3 ticket before it parses the
 * server_name extension and runs ngx_http_ssl_servername().  libhsmkeys
 * therefore asks this selector once per connection, with the name read from
 * the ClientHello, and keeps the answer for every ticket of the connection.
 *
 * Layout: no state of its own.  At configuration time the listen addresses
 * are read from ngx_http_core_main_conf_t.ports (ngx_http_conf_addr_t:
 * default_server, servers); at run time the connection's
 * ngx_http_addr_conf_t (virtual_names, default_server) gives the same
 * answer as nginx's own lookup: the host is validated and lower-cased as
 * nginx does, then looked up in the exact and wildcard hash, then in the
 * regular expressions in order, else the default server.  The chosen
 * server's ngx_hsmkeys_srv_conf_t.hk is the context (NULL: no tickets).
 *
 * Threat handled: see the header.  The server name is hostile input: it is
 * length-checked, copied to a bounded buffer and validated before lookup.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_hsmkeys_common.h"
#include "ngx_http_hsmkeys_vhosts.h"


extern ngx_module_t  ngx_http_hsmkeys_module;

#define NGX_HSMKEYS_HOST_MAX  255   /* longest SNI host name OpenSSL takes */


static hsmkeys_ctx *ngx_http_hsmkeys_select(SSL *ssl, const char *name,
    void *arg);
static ngx_int_t ngx_http_hsmkeys_host(const char *name, u_char *buf,
    ngx_str_t *host);
static ngx_int_t ngx_http_hsmkeys_check_addr(ngx_conf_t *cf,
    ngx_http_conf_addr_t *addr);


static ngx_hsmkeys_srv_conf_t *
ngx_http_hsmkeys_conf_of(ngx_http_core_srv_conf_t *cscf)
{
    return cscf->ctx->srv_conf[ngx_http_hsmkeys_module.ctx_index];
}


static ngx_http_ssl_srv_conf_t *
ngx_http_hsmkeys_ssl_of(ngx_http_core_srv_conf_t *cscf)
{
    return cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];
}


ngx_int_t
ngx_http_hsmkeys_vhosts_init(ngx_conf_t *cf)
{
    ngx_uint_t                  p, a;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->ports == NULL) {
        return NGX_OK;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {
        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {
            if (ngx_http_hsmkeys_check_addr(cf, &addr[a]) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hsmkeys_check_addr(ngx_conf_t *cf, ngx_http_conf_addr_t *addr)
{
    int                        rc;
    ngx_uint_t                 i;
    ngx_hsmkeys_srv_conf_t    *hcf, *dcf, *on;
    ngx_http_ssl_srv_conf_t   *sscf;
    ngx_http_core_srv_conf_t  **cscfp, *dflt;

    if (!addr->opt.ssl) {
        return NGX_OK;
    }

    cscfp = addr->servers.elts;
    on = NULL;

    for (i = 0; i < addr->servers.nelts; i++) {
        hcf = ngx_http_hsmkeys_conf_of(cscfp[i]);
        if (hcf->hk != NULL) {
            on = hcf;
            break;
        }
    }

    if (on == NULL) {
        return NGX_OK;
    }

    dflt = addr->default_server;
    dcf = ngx_http_hsmkeys_conf_of(dflt);
    sscf = ngx_http_hsmkeys_ssl_of(dflt);

    if (dcf->hk == NULL || sscf->ssl.ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_tickets on\" in %s:%ui is set for a server "
                      "on %V, but not for that address's default server "
                      "(%s:%ui): OpenSSL uses the default server's ticket "
                      "callback for every connection to an address, and "
                      "decrypts tickets before the server name is known; "
                      "set \"hsmkeys_tickets on\" (with its own "
                      "\"hsmkeys_domain\") in the default server too, or "
                      "set the hsmkeys_* directives at http{} level",
                      on->file, on->line, &addr->opt.addr_text,
                      dflt->file_name, dflt->line);
        return NGX_ERROR;
    }

    rc = hsmkeys_ssl_set_selector(sscf->ssl.ctx, ngx_http_hsmkeys_select,
                                  NULL);
    if (rc != HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_tickets\" in %s:%ui: cannot install the "
                      "virtual server selection on %V: %s (%s)",
                      dcf->file, dcf->line, &addr->opt.addr_text,
                      hsmkeys_last_error(), hsmkeys_result_name(rc));
        return NGX_ERROR;
    }

    for (i = 0; i < addr->servers.nelts; i++) {
        hcf = ngx_http_hsmkeys_conf_of(cscfp[i]);
        sscf = ngx_http_hsmkeys_ssl_of(cscfp[i]);

        if (hcf->hk == NULL && sscf->ssl.ctx != NULL
            && sscf->session_tickets)
        {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "the server \"%V\" in %s:%ui on %V has "
                          "\"hsmkeys_tickets\" off while the address's "
                          "default server has it on: it issues and resumes "
                          "no session tickets (OpenSSL asks the default "
                          "server's ticket callback); set \"hsmkeys_tickets "
                          "on\" with its own \"hsmkeys_domain\" to give it "
                          "tickets", &cscfp[i]->server_name,
                          cscfp[i]->file_name, cscfp[i]->line,
                          &addr->opt.addr_text);
        }
    }

    return NGX_OK;
}


/*
 * Runs on the handshake path, once per connection: no allocation, no
 * blocking.  The connection is an http one (the selector is only installed
 * on http servers' SSL_CTXs); before the request exists, c->data is its
 * ngx_http_connection_t.
 */
static hsmkeys_ctx *
ngx_http_hsmkeys_select(SSL *ssl, const char *name, void *arg)
{
    u_char                     buf[NGX_HSMKEYS_HOST_MAX];
    ngx_str_t                  host;
    ngx_connection_t          *c;
    ngx_http_connection_t     *hc;
    ngx_http_virtual_names_t  *vn;
    ngx_http_core_srv_conf_t  *cscf, *found;

    (void) arg;

    c = ngx_ssl_get_connection(ssl);
    if (c == NULL || c->data == NULL) {
        return NULL;
    }

    hc = c->data;
    cscf = hc->addr_conf->default_server;
    vn = hc->addr_conf->virtual_names;

    if (name == NULL || vn == NULL
        || ngx_http_hsmkeys_host(name, buf, &host) != NGX_OK)
    {
        return ngx_http_hsmkeys_conf_of(cscf)->hk;
    }

    found = ngx_hash_find_combined(&vn->names,
                                   ngx_hash_key(host.data, host.len),
                                   host.data, host.len);

#if (NGX_PCRE)
    if (found == NULL && vn->nregex) {
        ngx_int_t                n;
        ngx_uint_t               i;
        ngx_http_server_name_t  *sn = vn->regex;

        for (i = 0; i < vn->nregex; i++) {
            n = ngx_regex_exec(sn[i].regex->regex, &host, NULL, 0);

            if (n >= 0) {
                found = sn[i].server;
                break;
            }

            if (n != NGX_REGEX_NO_MATCHED) {
                /* nginx fails this handshake itself; issue nothing */
                return NULL;
            }
        }
    }
#endif

    if (found != NULL) {
        cscf = found;
    }

    return ngx_http_hsmkeys_conf_of(cscf)->hk;
}


/*
 * The server name as nginx's host validation leaves it: a name holding
 * "..", a path separator, a control character, space or DEL is not looked
 * up (nginx keeps the default server); a ":port" or the end of an "[...]"
 * literal ends the host; one trailing dot is dropped; letters are
 * lower-cased.  NGX_DECLINED: use the default server.
 */
static ngx_int_t
ngx_http_hsmkeys_host(const char *name, u_char *buf, ngx_str_t *host)
{
    u_char      ch;
    size_t      i, len, end, last_dot;
    ngx_uint_t  literal, rest;

    len = ngx_strnlen((u_char *) name, NGX_HSMKEYS_HOST_MAX + 1);
    if (len == 0 || len > NGX_HSMKEYS_HOST_MAX) {
        return NGX_DECLINED;
    }

    end = len;
    last_dot = (size_t) -1;
    literal = 0;
    rest = 0;

    for (i = 0; i < len; i++) {
        ch = (u_char) name[i];

        if (ch == '.') {
            if (i > 0 && last_dot == i - 1) {
                return NGX_DECLINED;
            }
            last_dot = i;

        } else if (ch == ':') {
            if (!literal && !rest) {
                end = i;
                rest = 1;
            }

        } else if (ch == '[') {
            if (i == 0) {
                literal = 1;
            }

        } else if (ch == ']') {
            if (literal && !rest) {
                end = i + 1;
                rest = 1;
            }

        } else if (ngx_path_separator(ch) || ch <= 0x20 || ch == 0x7f) {
            return NGX_DECLINED;
        }
    }

    if (end > 0 && last_dot == end - 1) {
        end--;
    }

    if (end == 0) {
        return NGX_DECLINED;
    }

    ngx_strlow(buf, (u_char *) name, end);
    host->data = buf;
    host->len = end;

    return NGX_OK;
}
