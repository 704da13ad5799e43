/*
 * ngx_hsmkeys_user.c - can nginx's worker user use the token?  See
 * ngx_hsmkeys_user.h.
 *
 * Data: the child reports one ngx_hsmkeys_user_report_t through a pipe
 * (smaller than PIPE_BUF, so written at once).  The worker-side account
 * keeps the last reason it logged in a static buffer, so a token that
 * stays unreachable is explained once, not at every refresh.
 *
 * Threat: see the header.  The child's identity switch is irreversible
 * (setuid), so nothing it does can leak root into the workers or back into
 * the master; it exits with _exit() so that none of nginx's or OpenSSL's
 * exit handlers run twice.  A child that hangs (a stalled token) is killed
 * after NGX_HSMKEYS_USER_TIMEOUT_MS, and the check fails with that reason.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <dirent.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ngx_hsmkeys_user.h"

#include <pthread.h>


/* hsmkeys_refresh waits at most 30 s for the token */
#define NGX_HSMKEYS_USER_TIMEOUT_MS  40000
#define NGX_HSMKEYS_DIAG_LEN         640


typedef struct {
    int      done;                             /* the child got that far */
    int      rc;                               /* hsmkeys_refresh() */
    char     error[512];                       /* hsmkeys_last_error() */
    char     diag[NGX_HSMKEYS_DIAG_LEN];       /* "" or the first path */
} ngx_hsmkeys_user_report_t;


typedef struct {
    uid_t         uid;
    gid_t         gid;
    const char   *name;
} ngx_hsmkeys_user_id_t;


/* set in the check child: its failures are reported through the pipe */
static int  ngx_hsmkeys_user_in_check;

static ngx_int_t ngx_hsmkeys_user_identity(ngx_conf_t *cf,
    ngx_hsmkeys_user_id_t *id);
static void ngx_hsmkeys_user_child(int fd, ngx_hsmkeys_user_id_t *id,
    hsmkeys_ctx *hk, ngx_str_t *uri);
static int ngx_hsmkeys_user_derive(hsmkeys_ctx *hk);
static ngx_int_t ngx_hsmkeys_user_wait(ngx_conf_t *cf, ngx_pid_t pid, int fd,
    ngx_hsmkeys_user_report_t *rep);
static void ngx_hsmkeys_diagnose(ngx_str_t *uri, int rc, char *out,
    size_t len);
static int ngx_hsmkeys_check_path(const char *path, int need, int dir,
    const char *what, const char *own, char *out, size_t len);
static int ngx_hsmkeys_check_tree(const char *dir, char *out, size_t len);
static int ngx_hsmkeys_uri_attr(ngx_str_t *uri, const char *name, char *out,
    size_t len);
static int ngx_hsmkeys_softhsm_tokendir(const char *conf, char *out,
    size_t len);
static void ngx_hsmkeys_say(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


ngx_int_t
ngx_hsmkeys_user_check(ngx_conf_t *cf, ngx_hsmkeys_srv_conf_t *conf,
    hsmkeys_ctx *hk)
{
    int                         fds[2];
    ngx_pid_t                   pid;
    ngx_hsmkeys_user_id_t       id;
    ngx_hsmkeys_user_report_t   rep;

    if (geteuid() != 0) {
        /* the workers run as the master's user, which just opened it */
        return NGX_OK;
    }

    if (ngx_hsmkeys_user_identity(cf, &id) != NGX_OK || id.uid == 0) {
        return NGX_OK;
    }

    if (pipe(fds) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "hsmkeys: pipe() failed for the worker user check");
        return NGX_ERROR;
    }

    pid = fork();

    if (pid == -1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "hsmkeys: fork() failed for the worker user check");
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }

    if (pid == 0) {
        close(fds[0]);
        ngx_hsmkeys_user_child(fds[1], &id, hk, &conf->uri);
        _exit(0);
    }

    close(fds[1]);
    ngx_memzero(&rep, sizeof(rep));

    if (ngx_hsmkeys_user_wait(cf, pid, fds[0], &rep) != NGX_OK) {
        close(fds[0]);
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_uri\" for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui: checking that the "
                      "worker user \"%s\" can use the token did not finish "
                      "within %d s (the token is stalled or the check "
                      "process died)",
                      conf->file, conf->line, id.name,
                      NGX_HSMKEYS_USER_TIMEOUT_MS / 1000);
        return NGX_ERROR;
    }

    close(fds[0]);
    rep.error[sizeof(rep.error) - 1] = '\0';
    rep.diag[sizeof(rep.diag) - 1] = '\0';

    if (rep.done && rep.rc == HSMKEYS_OK) {
        ngx_log_error(NGX_LOG_INFO, cf->log, 0,
                      "hsmkeys: the worker user \"%s\" can use the token "
                      "(checked by deriving as that user)", id.name);
        return NGX_OK;
    }

    if (!rep.done) {
        /* the child could not take the identity: rep.error says why */
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"hsmkeys_uri\" for the server with "
                      "\"hsmkeys_tickets on\" in %s:%ui: cannot check the "
                      "token as the worker user \"%s\": %s",
                      conf->file, conf->line, id.name, rep.error);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "\"hsmkeys_uri\" for the server with "
                  "\"hsmkeys_tickets on\" in %s:%ui: the worker processes "
                  "(user \"%s\") cannot use the token: %s; they "
                  "re-initialise PKCS#11 after fork as that user and would "
                  "stop issuing tickets once the keys derived at start "
                  "expire: %s (%s)",
                  conf->file, conf->line, id.name,
                  rep.diag[0] ? rep.diag
                              : "no file of the module, its configuration "
                                "or the token is closed to that user; "
                                "check the module's own requirements",
                  rep.error, hsmkeys_result_name(rep.rc));

    return NGX_ERROR;
}


/* The identity nginx's workers will take: the "user" directive, or nginx's
 * compiled-in default, as ngx_core_module_init_conf() sets it for root.  A
 * "user" directive after http{} (or stream{}) is not seen yet here: then
 * the default is checked (docs/NGINX.md: put "user" first). */
static ngx_int_t
ngx_hsmkeys_user_identity(ngx_conf_t *cf, ngx_hsmkeys_user_id_t *id)
{
    struct group     *gr;
    struct passwd    *pw;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf != NULL && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        id->uid = ccf->user;
        id->gid = ccf->group;
        id->name = ccf->username;
        return NGX_OK;
    }

    pw = getpwnam(NGX_USER);
    gr = getgrnam(NGX_GROUP);

    if (pw == NULL || gr == NULL) {
        /* nginx itself fails with its own message at the end of parsing */
        return NGX_DECLINED;
    }

    id->uid = pw->pw_uid;
    id->gid = gr->gr_gid;
    id->name = NGX_USER;

    return NGX_OK;
}


static void
ngx_hsmkeys_user_child(int fd, ngx_hsmkeys_user_id_t *id, hsmkeys_ctx *hk,
    ngx_str_t *uri)
{
    ngx_hsmkeys_user_report_t  rep;

    ngx_memzero(&rep, sizeof(rep));
    ngx_hsmkeys_user_in_check = 1;

    /* as ngx_worker_process_init() does */
    if (setgid(id->gid) != 0 || initgroups(id->name, id->gid) != 0
        || setuid(id->uid) != 0)
    {
        ngx_hsmkeys_say(rep.error, sizeof(rep.error),
                 "cannot take its identity (uid %d, gid %d): %s",
                 (int) id->uid, (int) id->gid, strerror(errno));

    } else {
        rep.rc = ngx_hsmkeys_user_derive(hk);
        rep.done = 1;

        if (rep.rc != HSMKEYS_OK) {
            ngx_cpystrn((u_char *) rep.error,
                        (u_char *) hsmkeys_last_error(), sizeof(rep.error));
            ngx_hsmkeys_diagnose(uri, rep.rc, rep.diag, sizeof(rep.diag));
        }
    }

    if (write(fd, &rep, sizeof(rep)) != (ssize_t) sizeof(rep)) {
        /* the master then reports that the check did not finish */
    }

    close(fd);
}


/* What a worker does with the token, made to reach the token: the keys the
 * master derived at open are cached (and inherited), so asking for them
 * proves nothing.  Forgetting them makes this process's key maintainer
 * re-initialise PKCS#11 and derive the window in the token, as a worker's
 * does after fork; hsmkeys_refresh() waits for that cycle and returns its
 * result. */
static int
ngx_hsmkeys_user_derive(hsmkeys_ctx *hk)
{
    hsmkeys_forget(hk);

    return hsmkeys_refresh(hk);
}


/* Read the child's report (or time out and kill it), then reap it.  The
 * report decides; the exit status does not (at start nginx's SIGCHLD
 * handler may reap the child first). */
static ngx_int_t
ngx_hsmkeys_user_wait(ngx_conf_t *cf, ngx_pid_t pid, int fd,
    ngx_hsmkeys_user_report_t *rep)
{
    int            n, status;
    size_t         got;
    ssize_t        r;
    ngx_msec_t     left;
    struct pollfd  pfd;

    got = 0;
    left = NGX_HSMKEYS_USER_TIMEOUT_MS;

    while (got < sizeof(*rep) && left > 0) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;

        n = poll(&pfd, 1, 1000);

        if (n < 0 && ngx_errno != NGX_EINTR) {
            break;
        }

        if (n <= 0) {
            left = left > 1000 ? left - 1000 : 0;
            continue;
        }

        r = read(fd, (u_char *) rep + got, sizeof(*rep) - got);

        if (r < 0 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (r <= 0) {
            break;
        }

        got += r;
    }

    if (got < sizeof(*rep)) {
        (void) kill(pid, SIGKILL);
    }

    while (waitpid(pid, &status, 0) == -1 && ngx_errno == NGX_EINTR) {
        /* retry */
    }

    (void) cf;

    return got == sizeof(*rep) ? NGX_OK : NGX_ERROR;
}


void
ngx_hsmkeys_user_explain(ngx_log_t *log, ngx_str_t *uri)
{
    int                     same;
    char                    diag[NGX_HSMKEYS_DIAG_LEN], name[64];
    struct passwd          *pw;
    static char             last[NGX_HSMKEYS_DIAG_LEN];
    static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;

    if (ngx_hsmkeys_user_in_check || geteuid() == 0) {
        /* the check child reports itself; root can open anything */
        return;
    }

    ngx_hsmkeys_diagnose(uri, HSMKEYS_E_TOKEN, diag, sizeof(diag));

    /* one maintainer thread per context may call this at once */
    pthread_mutex_lock(&lock);
    same = ngx_strcmp(diag, last) == 0;
    ngx_cpystrn((u_char *) last, (u_char *) diag, sizeof(last));
    pthread_mutex_unlock(&lock);

    if (same || diag[0] == '\0') {
        return;
    }

    pw = getpwuid(geteuid());
    ngx_cpystrn((u_char *) name, (u_char *) (pw ? pw->pw_name : "?"),
                sizeof(name));

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "hsmkeys: this worker (user \"%s\") can no longer use "
                  "the token: %s; no new ticket keys can be derived, and "
                  "tickets stop once the cached epochs pass", name, diag);
}


/* First file on the worker's path to the token that this process cannot
 * open, with the fix; "" when none is found. */
static void
ngx_hsmkeys_diagnose(ngx_str_t *uri, int rc, char *out, size_t len)
{
    char         module[512], conf[512], tokendir[512], pin[512];
    const char  *c;

    out[0] = '\0';

    if (ngx_hsmkeys_uri_attr(uri, "module-path", module, sizeof(module))
        && ngx_hsmkeys_check_path(module, R_OK, 0, "the PKCS#11 module",
                                  NULL, out, len))
    {
        return;
    }

    if (ngx_strstr(module, "softhsm") != NULL) {
        c = getenv("SOFTHSM2_CONF");
        ngx_cpystrn((u_char *) conf,
                    (u_char *) (c && *c ? c : "/etc/softhsm/softhsm2.conf"),
                    sizeof(conf));

        if (ngx_hsmkeys_check_path(conf, R_OK, 0,
                                   "SoftHSM2's configuration", NULL, out, len))
        {
            return;
        }

        if (ngx_hsmkeys_softhsm_tokendir(conf, tokendir, sizeof(tokendir))
            && (ngx_hsmkeys_check_path(tokendir, R_OK|X_OK, 1,
                                       "SoftHSM2's token directory", NULL,
                                       out, len)
                || ngx_hsmkeys_check_tree(tokendir, out, len)))
        {
            return;
        }
    }

    if (rc == HSMKEYS_E_PIN
        && ngx_hsmkeys_uri_attr(uri, "pin-source", pin, sizeof(pin)))
    {
        (void) ngx_hsmkeys_check_path(ngx_strncmp(pin, "file:", 5) == 0
                                      ? pin + 5 : pin,
                                      R_OK, 0, "the PIN file", NULL, out,
                                      len);
    }
}


/* Can this process reach path (every parent searchable) with access
 * `need`?  If not, write "user cannot open WHAT PATH (owner:group mode):
 * error; fix: ..." and return 1.  The fix: the group when the file's group
 * bits would do (SoftHSM2's "softhsm" group on /etc/softhsm and
 * /var/lib/softhsm); else, with `own` (a token's directory), owning that
 * token, since SoftHSM2 keeps a token's files private to their creator
 * (mode 0600 whatever the umask); else access through a group. */
static int
ngx_hsmkeys_check_path(const char *path, int need, int dir, const char *what,
    const char *own, char *out, size_t len)
{
    int             err, mode, grp_ok;
    char            prefix[512], where[1200], user[64], owner[64];
    size_t          i, n;
    const char     *fail, *gname;
    struct stat     st;
    struct group   *gr;
    struct passwd  *pw, *me;

    n = ngx_strlen(path);

    if (n == 0 || n >= sizeof(prefix)) {
        return 0;
    }

    fail = NULL;
    err = 0;

    for (i = 1; i < n; i++) {
        if (path[i] != '/') {
            continue;
        }

        ngx_memcpy(prefix, path, i);
        prefix[i] = '\0';

        if (access(prefix, X_OK) != 0) {
            err = errno;
            fail = prefix;
            need = X_OK;
            dir = 1;
            break;
        }
    }

    if (fail == NULL) {
        if (access(path, need) == 0) {
            return 0;
        }

        err = errno;
        fail = path;
    }

    /* getpw*() share one static buffer: copy each name at once */
    me = getpwuid(geteuid());
    ngx_cpystrn((u_char *) user, (u_char *) (me ? me->pw_name : "the user"),
                sizeof(user));

    if (fail == path) {
        ngx_hsmkeys_say(where, sizeof(where), "%s %s", what, path);
    } else {
        ngx_hsmkeys_say(where, sizeof(where), "%s, on the way to %s %s",
                 fail, what, path);
    }

    if (stat(fail, &st) != 0) {
        ngx_hsmkeys_say(out, len, "%s cannot open %s: %s", user, where,
                        strerror(err));
        return 1;
    }

    pw = getpwuid(st.st_uid);
    ngx_cpystrn((u_char *) owner, (u_char *) (pw ? pw->pw_name : "?"),
                sizeof(owner));
    gr = getgrgid(st.st_gid);
    gname = gr ? gr->gr_name : "?";
    mode = st.st_mode & 07777;

    /* would the file's group bits give what is missing? */
    grp_ok = ((need & R_OK) == 0 || (mode & S_IRGRP))
             && ((need & W_OK) == 0 || (mode & S_IWGRP))
             && ((need & X_OK) == 0 || (mode & S_IXGRP));

    if (grp_ok && gr != NULL && st.st_gid != 0) {
        ngx_hsmkeys_say(out, len,
                 "%s cannot open %s (%s:%s, mode %04o): %s; fix: add the "
                 "user to the group \"%s\" (adduser %s %s), then restart "
                 "or reload nginx",
                 user, where, owner, gname, mode, strerror(err),
                 gname, user, gname);

    } else if (own != NULL && fail != prefix) {
        ngx_hsmkeys_say(out, len,
                 "%s cannot open %s (%s:%s, mode %04o): %s; fix: SoftHSM2 "
                 "keeps a token's files private to the user that created "
                 "them, so let the workers' user own this token: chown -R "
                 "%s %s (and make later changes to it as that user: "
                 "runuser -u %s -- hsmkeys-tool ...)",
                 user, where, owner, gname, mode, strerror(err),
                 user, own, user);

    } else {
        ngx_hsmkeys_say(out, len,
                 "%s cannot open %s (%s:%s, mode %04o): %s; fix: give the "
                 "user %s access with a group it is in (chmod g+%s %s; for "
                 "SoftHSM2 the group \"softhsm\": chgrp softhsm %s, "
                 "adduser %s softhsm), or set \"user\" to one that has it",
                 user, where, owner, gname, mode, strerror(err),
                 dir ? "read and search" : "read and write",
                 dir ? "rx" : "rw", fail, fail, user);
    }

    return 1;
}


/* SoftHSM2 reads and locks the files of each token directory below
 * tokendir (one level of directories of files). */
static int
ngx_hsmkeys_check_tree(const char *tokendir, char *out, size_t len)
{
    int             found;
    DIR            *d, *t;
    char            sub[1024], file[1536];
    struct dirent  *e, *f;

    d = opendir(tokendir);
    if (d == NULL) {
        return 0;
    }

    found = 0;

    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }

        ngx_hsmkeys_say(sub, sizeof(sub), "%s/%s", tokendir, e->d_name);

        if (ngx_hsmkeys_check_path(sub, R_OK|W_OK|X_OK, 1,
                                   "a SoftHSM2 token directory", sub,
                                   out, len))
        {
            found = 1;
            break;
        }

        t = opendir(sub);
        if (t == NULL) {
            continue;
        }

        while ((f = readdir(t)) != NULL) {
            if (f->d_name[0] == '.') {
                continue;
            }

            ngx_hsmkeys_say(file, sizeof(file), "%s/%s", sub, f->d_name);

            if (ngx_hsmkeys_check_path(file, R_OK|W_OK, 0,
                                       "a SoftHSM2 token file", sub,
                                       out, len))
            {
                found = 1;
                break;
            }
        }

        closedir(t);
    }

    closedir(d);

    return found;
}


/* Value of a query attribute of the pkcs11: URI, percent-decoded. */
static int
ngx_hsmkeys_uri_attr(ngx_str_t *uri, const char *name, char *out, size_t len)
{
    size_t   nl, i, o;
    u_char  *p, *end, *q, c;

    out[0] = '\0';
    nl = ngx_strlen(name);
    end = uri->data + uri->len;
    p = ngx_strlchr(uri->data, end, '?');

    while (p != NULL && p < end) {
        p++;
        q = ngx_strlchr(p, end, '&');
        if (q == NULL) {
            q = end;
        }

        if ((size_t) (q - p) > nl && p[nl] == '='
            && ngx_strncmp(p, name, nl) == 0)
        {
            o = 0;
            for (i = nl + 1; p + i < q && o + 1 < len; i++) {
                c = p[i];
                if (c == '%' && p + i + 2 < q
                    && ngx_hextoi(&p[i + 1], 2) != NGX_ERROR)
                {
                    c = (u_char) ngx_hextoi(&p[i + 1], 2);
                    i += 2;
                }
                out[o++] = (char) c;
            }
            out[o] = '\0';
            return o > 0;
        }

        p = q;
    }

    return 0;
}


/* directories.tokendir of a SoftHSM2 configuration file. */
static int
ngx_hsmkeys_softhsm_tokendir(const char *conf, char *out, size_t len)
{
    char    line[1024], *p, *e;
    FILE   *f;
    int     found;

    f = fopen(conf, "re");
    if (f == NULL) {
        return 0;
    }

    found = 0;

    while (!found && fgets(line, sizeof(line), f) != NULL) {
        p = line;
        while (*p == ' ' || *p == '\t') {
            p++;
        }

        if (ngx_strncmp(p, "directories.tokendir", 20) != 0) {
            continue;
        }

        p += 20;
        while (*p == ' ' || *p == '\t' || *p == '=') {
            p++;
        }

        e = p + ngx_strlen(p);
        while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '
                         || e[-1] == '\t' || e[-1] == '/'))
        {
            e--;
        }

        if (e > p && (size_t) (e - p) < len) {
            ngx_memcpy(out, p, e - p);
            out[e - p] = '\0';
            found = 1;
        }
    }

    fclose(f);

    return found;
}


/* snprintf that may cut a long message short (paths are bounded anyway). */
static void
ngx_hsmkeys_say(char *out, size_t len, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    (void) vsnprintf(out, len, fmt, ap);
    va_end(ap);
}
