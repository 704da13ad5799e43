/*
 * hsmk_apache_user.h - run a token operation under the Apache User.
 *
 * Apache's parent runs as root and opens the token at startup; its children
 * run as the User (www-data) and must log in again after the fork (PKCS#11
 * sessions do not survive it), reading the PIN file and the token as that
 * user.  Threat: a configuration that works for root and fails only in the
 * children, where it means "no tickets" and no startup error.  So the parent
 * opens the token with the User's effective uid, gid and groups: what
 * `apache2 -t` and startup accept, the children can use.
 */
#ifndef HSMK_APACHE_USER_H
#define HSMK_APACHE_USER_H

#include "httpd.h"

/*
 * Call fn(arg) with the effective identity of the configured User/Group
 * (and the User's supplementary groups) when the process runs as root and
 * the User is not root; else call it as is.  *result is fn's result.
 * Returns APR_SUCCESS, or an error (logged) when the identity cannot be
 * taken or given back; fn has not run, or the process must not go on.
 */
apr_status_t hsmk_as_user(server_rec *s, int (*fn)(void *), void *arg,
                          int *result);

#endif /* HSMK_APACHE_USER_H */
