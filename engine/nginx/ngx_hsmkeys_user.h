/*
 * ngx_hsmkeys_user.h - can nginx's worker user use the token?
 *
 * Owns: the check, at "nginx -t", start and reload, that the worker
 * processes (the "user" directive; nginx's default "nobody" when unset)
 * can use the token the master just opened as root, and the plain-words
 * account of what a worker cannot open when its token work fails later.
 *
 * Threat handled: a configuration that works for root and fails only in
 * the workers.  The master opens the token and logs in as root; each
 * worker re-initialises PKCS#11 after fork as the worker user, and with
 * SoftHSM2's default layout (/etc/softhsm and /var/lib/softhsm owned
 * root:softhsm, mode 0640 / 2770) that fails with an opaque
 * CKR_GENERAL_ERROR; the workers then use the keys the master derived
 * before forking and stop issuing tickets when those epochs pass.
 *
 * How: a child of the master takes the worker's identity the way nginx's
 * workers do (initgroups, setgid, setuid), repeats what a worker does
 * first (hsmkeys_refresh: re-initialise the module, open a session, derive
 * the current and next epoch) and, on failure, looks for the first file
 * the user cannot open: the module, SoftHSM2's configuration, its token
 * directory and files, the PIN file.  The child reports through a pipe and
 * exits; the master never changes identity.  Nothing secret is reported:
 * paths, owners, modes and libhsmkeys' one-line error.
 */

#ifndef _NGX_HSMKEYS_USER_H_INCLUDED_
#define _NGX_HSMKEYS_USER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_hsmkeys_common.h"


/*
 * After the master opened hk for conf: when nginx runs as root and the
 * worker user is not root, check that the worker user can use the token.
 * Returns NGX_OK, or NGX_ERROR after an EMERG message naming the user, the
 * path it cannot open and the fix (the configuration is refused).
 */
ngx_int_t ngx_hsmkeys_user_check(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf,
    hsmkeys_ctx *hk);

/*
 * In a worker whose token work failed (called from libhsmkeys' log function
 * on errors, in the key maintainer's thread): log once, until the reason
 * changes, which file this process's user cannot open and the fix, in
 * plain words.  Touches the file system: never on the handshake path.
 * Does nothing as root and in the check's child.
 */
void ngx_hsmkeys_user_explain(ngx_log_t *log, ngx_str_t *uri);


#endif /* _NGX_HSMKEYS_USER_H_INCLUDED_ */
