/*
 * hsmk_apache_vhosts.c - the per-address check of name-based virtual hosts.
 * See hsmk_apache_vhosts.h.
 *
 * Layout: an apr_hash_t (temporary pool) from "IP:port" of each
 * <VirtualHost> address to the server_rec that names it first in the
 * configuration.  A
 * connection to an address starts on the first virtual host listed for
 * that exact address (Apache's IP-based lookup before SNI); addresses
 * written differently ("*:443" and "192.0.2.1:443") are separate groups,
 * as Apache matches the more specific one first.
 */
#include "hsmk_apache_vhosts.h" /* httpd.h first */
#include "hsmk_apache_conf.h"

#include "apr_hash.h"
#include "apr_strings.h"
#include "http_log.h"

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

static const char *addr_key(apr_pool_t *p, const server_addr_rec *a)
{
    char *ip = NULL;

    if (a->host_addr == NULL || apr_sockaddr_ip_get(&ip, a->host_addr) != APR_SUCCESS)
        ip = (char *)"?";
    return apr_psprintf(p, "%s:%u", ip, (unsigned)a->host_port);
}

static const char *vhost_name(const server_rec *s)
{
    return s->server_hostname != NULL ? s->server_hostname : "(no ServerName)";
}

static const char *vhost_where(apr_pool_t *p, const server_rec *s)
{
    return apr_psprintf(p, "%s:%u", s->defn_name != NULL ? s->defn_name : "?",
                        s->defn_line_number);
}

int hsmk_vhosts_check(apr_pool_t *ptemp, server_rec *base)
{
    apr_hash_t *first = apr_hash_make(ptemp);
    server_rec *s;
    const server_addr_rec *a;
    int ok = 1;

    /* base->next lists the virtual hosts in reverse configuration order:
     * the last one seen for an address is its first in the file. */
    for (s = base->next; s != NULL; s = s->next)
        for (a = s->addrs; a != NULL; a = a->next)
            apr_hash_set(first, addr_key(ptemp, a), APR_HASH_KEY_STRING, s);

    for (s = base->next; s != NULL; s = s->next) {
        for (a = s->addrs; a != NULL; a = a->next) {
            const char *key = addr_key(ptemp, a);
            server_rec *d = apr_hash_get(first, key, APR_HASH_KEY_STRING);
            int on = hsmk_srv_conf_get(s)->enabled == 1;
            int d_on = hsmk_srv_conf_get(d)->enabled == 1;

            if (d == s)
                continue;
            if (on && !d_on) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                             "mod_hsmkeys: virtual host %s (%s) on %s has "
                             "HSMKeysTickets On (%s), but the first virtual "
                             "host of that address, %s (%s), has not: every "
                             "TLS connection to %s starts there and OpenSSL "
                             "uses its ticket keys for every name-based "
                             "virtual host; set HSMKeysTickets On (with its "
                             "own HSMKeysDomain) in %s too, or set the "
                             "HSMKeys* directives in the server config",
                             vhost_name(s), vhost_where(ptemp, s), key,
                             hsmk_srv_conf_get(s)->where != NULL
                                 ? hsmk_srv_conf_get(s)->where : "?",
                             vhost_name(d), vhost_where(ptemp, d), key,
                             vhost_name(d));
                ok = 0;
            } else if (!on && d_on) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "mod_hsmkeys: virtual host %s (%s) on %s has "
                             "HSMKeysTickets Off while the first virtual host "
                             "of that address, %s, has it On: it issues and "
                             "resumes no session tickets (OpenSSL asks the "
                             "first virtual host's ticket callback); set "
                             "HSMKeysTickets On with its own HSMKeysDomain to "
                             "give it tickets", vhost_name(s),
                             vhost_where(ptemp, s), key, vhost_name(d));
            }
        }
    }
    return ok;
}
