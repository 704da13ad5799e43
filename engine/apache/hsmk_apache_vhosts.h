/*
 * hsmk_apache_vhosts.h - name-based virtual hosts sharing an address: the
 * configuration check that keeps every one of them on the keys mod_ssl
 * selects for it.
 *
 * How the connection's context is chosen: OpenSSL runs the ticket callback
 * of the SSL_CTX a connection starts on (the first virtual host of its
 * address), and mod_ssl switches to the named virtual host's SSL_CTX in
 * its client_hello callback, before OpenSSL looks at the ticket.  The
 * callback then uses, for the whole connection, the context attached to
 * the virtual host mod_ssl selected (hsmkeys_ssl.h, "One context per
 * connection").  That works only when the first virtual host of the
 * address has the callback: otherwise OpenSSL encrypts every virtual host's
 * tickets with that first host's own random keys.
 *
 * Threat handled: a fleet whose virtual hosts silently issue tickets under
 * local random keys (no resumption across servers) or issue none.
 */
#ifndef HSMK_APACHE_VHOSTS_H
#define HSMK_APACHE_VHOSTS_H

#include "httpd.h"

/*
 * Group the virtual hosts by address (IP:port of <VirtualHost>, in
 * configuration order; the first is the address's default).  When a virtual
 * host has HSMKeysTickets On and the default of its address has not, log an
 * EMERG message that says what to change and return 0; a virtual host with
 * HSMKeysTickets Off under a default with it On gets a warning (it issues
 * no tickets).  Returns 1 when the configuration can work.
 */
int hsmk_vhosts_check(apr_pool_t *ptemp, server_rec *base);

#endif /* HSMK_APACHE_VHOSTS_H */
