/*
 * hsmk_apache_user.c - run a token operation under the Apache User.  See
 * hsmk_apache_user.h.  Only effective ids change (seteuid/setegid), so root
 * is taken back right after; the parent is still in its configuration phase,
 * where nothing else runs.
 */
#include "hsmk_apache_user.h" /* httpd.h first */

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "http_log.h"
#include "unixd.h"

extern module AP_MODULE_DECLARE_DATA hsmkeys_module;
APLOG_USE_MODULE(hsmkeys);

#define HSMK_MAX_GROUPS 256

/* Back to root.  On failure the caller fails startup, so the parent never
 * serves half-switched. */
static apr_status_t restore(server_rec *s, gid_t egid, const gid_t *groups,
                            int ngroups)
{
    if (seteuid(0) != 0 || setegid(egid) != 0 ||
        setgroups((size_t)ngroups, groups) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s,
                     "mod_hsmkeys: cannot return to root after opening the "
                     "token as the User");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t hsmk_as_user(server_rec *s, int (*fn)(void *), void *arg,
                          int *result)
{
    gid_t saved[HSMK_MAX_GROUPS], groups[HSMK_MAX_GROUPS];
    int nsaved, ngroups = HSMK_MAX_GROUPS;
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;
    gid_t saved_egid = getegid();
    const char *user = ap_unixd_config.user_name;

    if (geteuid() != 0 || uid == 0 || uid == (uid_t)-1 || user == NULL) {
        *result = fn(arg);
        return APR_SUCCESS;
    }
    nsaved = getgroups(HSMK_MAX_GROUPS, saved);
    if (user[0] == '#') { /* "User #33": no name, so no supplementary groups */
        groups[0] = gid;
        ngroups = 1;
    }
    else if (getgrouplist(user, gid, groups, &ngroups) < 0) {
        ngroups = -1;
    }
    if (nsaved < 0 || ngroups < 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s,
                     "mod_hsmkeys: cannot read the groups of User %s", user);
        return APR_EGENERAL;
    }
    if (setgroups((size_t)ngroups, groups) != 0 || setegid(gid) != 0 ||
        seteuid(uid) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s,
                     "mod_hsmkeys: cannot take the identity of User %s to "
                     "open the token", user);
        restore(s, saved_egid, saved, nsaved);
        return APR_EGENERAL;
    }
    *result = fn(arg);
    return restore(s, saved_egid, saved, nsaved);
}
