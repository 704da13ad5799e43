/*
 * instance.c - keep one HAProxy's ticket-key ring at [e-1, e, e+1] through
 * its runtime API (ring semantics in feeder.h).
 *
 * A process is identified by the Pid and Start_time_sec of `show info`; a new
 * process (restart, reload) gets the whole ring again, the same process only
 * the key of the new epoch.  Keys come from the library's cache, which its
 * key maintainer thread fills ahead of need (with the generation active in
 * each epoch, re-read from the token, so a rotation reaches HAProxy with no
 * restart); a key that is late leaves HAProxy's ring as it is and is asked
 * for again on the loop's next turn.  Threat: key lines in memory and logs; the
 * command is built in the feeder's locked buffer, wiped after each send, and
 * only names, epochs and HAProxy's own reply line are logged (HAProxy never
 * echoes the key).  A socket open to group or others is reported, since
 * `show tls-keys` prints every key to whoever can connect at level admin.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "feeder.h"
#include "flog.h"
#include "haproxy_cli.h"

#define OK_TEXT "TLS ticket key updated!"

static void check_socket_mode(fd_instance *in)
{
    struct stat st;
    if (in->mode_checked || stat(in->socket, &st) != 0)
        return;
    in->mode_checked = 1;
    if (st.st_mode & 077)
        flog(LOG_WARNING, "%s is mode %04o: whoever can connect to it at level admin can read "
             "every ticket key with `show tls-keys`; use `stats socket ... mode 600 level admin`",
             in->socket, (unsigned)(st.st_mode & 07777));
}

static void fail(fd_instance *in, long long now_ms, long long max_backoff_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(fd_instance *in, long long now_ms, long long max_backoff_ms, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!in->down)
        flog(LOG_ERR, "%s: %s%s", in->socket, msg, max_backoff_ms > 0 ? " (retrying with backoff)" : "");
    else
        flog(LOG_DEBUG, "%s: %s", in->socket, msg);
    in->down = 1;
    in->proc[0] = '\0';
    if (in->backoff_ms <= 0)
        in->backoff_ms = 200;
    in->next_try_ms = now_ms + in->backoff_ms;
    in->backoff_ms *= 2;
    if (in->backoff_ms > max_backoff_ms)
        in->backoff_ms = max_backoff_ms;
}

/*
 * The library's key maintainer (a thread of this process) has not got an
 * epoch's key: the token is failing or slow.  HAProxy itself is fine and
 * keeps its ring, so neither its state nor its backoff changes; the token's
 * backoff is the maintainer's.  hsmkeys_epoch_key has already waited for a
 * maintenance cycle, so retrying on the loop's next turn is no busy loop.
 */
static void keys_late(fd_instance *in, long long now_ms, long long max_backoff_ms,
                      uint64_t epoch, int rc)
{
    if (!in->keys_late)
        flog(LOG_WARNING, "%s: the key of epoch %llu is not available yet: %s (%s); HAProxy keeps "
             "its ring%s", in->socket, (unsigned long long)epoch, hsmkeys_last_error(),
             hsmkeys_result_name(rc), max_backoff_ms > 0 ? ", retrying" : "");
    in->keys_late = 1;
    in->next_try_ms = now_ms + FD_KEYS_RETRY_MS;
}

/* First line of an HAProxy reply, for messages. */
static const char *first_line(const char *reply, char *out, size_t out_len)
{
    size_t n = strcspn(reply, "\n");
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, reply, n);
    out[n] = '\0';
    return n ? out : "(empty reply)";
}

static int count_ok(const char *reply)
{
    int n = 0;
    for (const char *p = reply; (p = strstr(p, OK_TEXT)) != NULL; p += sizeof OK_TEXT - 1)
        n++;
    return n;
}

/* Append s to buf[*off..cap); 0, or -1 if it does not fit (one byte kept
 * for the final newline). */
static int append(char *buf, size_t *off, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n + 1 >= cap - *off)
        return -1;
    memcpy(buf + *off, s, n);
    *off += n;
    return 0;
}

/*
 * Build "set ssl tls-key ID LINE; ..." for epochs first..first+count-1 in the
 * locked buffer.  Returns the command length, or 0 (a key could not be made:
 * rc holds the hsmkeys code).  name_hex gets the name of the last epoch.
 */
static size_t build_command(fd_feeder *f, uint64_t first, int count, char *name_hex, int *rc)
{
    unsigned char *scratch = f->buf.p;
    char *line = (char *)scratch + FD_KEY_RECORD_LEN;
    char *cmd = line + FD_KEYLINE_LEN + 1;
    size_t cap = f->buf.len - FD_KEY_RECORD_LEN - FD_KEYLINE_LEN - 1, off = 0;

    for (int i = 0; i < count; i++) {
        int bad;
        *rc = fd_keyline(f->ctx, first + (uint64_t)i, scratch, line, name_hex);
        if (*rc != HSMKEYS_OK)
            return 0;
        bad = append(cmd, &off, cap, i ? "; set ssl tls-key " : "set ssl tls-key ") ||
              append(cmd, &off, cap, f->keys_id) || append(cmd, &off, cap, " ") ||
              append(cmd, &off, cap, line);
        hsmkeys_wipe(line, FD_KEYLINE_LEN + 1);
        if (bad) {
            *rc = HSMKEYS_E_INVALID;
            return 0;
        }
    }
    cmd[off++] = '\n';
    return off;
}

int fd_instance_sync(fd_feeder *f, fd_instance *in, long long now_ms, long long max_backoff_ms)
{
    char reply[8192], err[256], pid[24], start[32], proc[64], line[200];
    char name_hex[FD_NAME_HEX_LEN + 1];
    char *cmd = (char *)f->buf.p + FD_KEY_RECORD_LEN + FD_KEYLINE_LEN + 1;
    uint64_t e, first;
    size_t len;
    int count, rc, sent;

    if (hx_cli_request(in->socket, "show info\n", 10, reply, sizeof reply, f->timeout_ms,
                       err, sizeof err) != 0) {
        fail(in, now_ms, max_backoff_ms, "HAProxy runtime API unreachable: %s", err);
        return -1;
    }
    check_socket_mode(in);
    if (hx_info_field(reply, "Pid", pid, sizeof pid) != 0 ||
        hx_info_field(reply, "Start_time_sec", start, sizeof start) != 0) {
        fail(in, now_ms, max_backoff_ms, "`show info` answered without Pid/Start_time_sec: %s",
             first_line(reply, line, sizeof line));
        return -1;
    }
    snprintf(proc, sizeof proc, "%s@%s", pid, start);

    e = hsmkeys_current_epoch(f->ctx);
    if (strcmp(proc, in->proc) == 0 && in->epoch == e) {
        in->next_try_ms = 0;
        return 0;
    }
    if (strcmp(proc, in->proc) == 0 && in->epoch + 1 == e) {
        first = e + 1; /* the ring slides by one: e becomes the encryption key */
        count = 1;
    } else {
        first = e - 1; /* new process, or fell behind: the whole ring, oldest first */
        count = FD_RING;
    }
    len = build_command(f, first, count, name_hex, &rc);
    if (len == 0 && rc == HSMKEYS_E_EXPIRED) { /* the epoch turned meanwhile */
        e = hsmkeys_current_epoch(f->ctx);
        first = e - 1;
        count = FD_RING;
        len = build_command(f, first, count, name_hex, &rc);
    }
    if (len == 0) {
        hsmkeys_wipe(f->buf.p, f->buf.len);
        keys_late(in, now_ms, max_backoff_ms, first + (uint64_t)count - 1, rc);
        return -1;
    }
    rc = hx_cli_request(in->socket, cmd, len, reply, sizeof reply, f->timeout_ms, err, sizeof err);
    hsmkeys_wipe(f->buf.p, f->buf.len);
    if (rc != 0) {
        fail(in, now_ms, max_backoff_ms, "sending the keys failed: %s", err);
        return -1;
    }
    sent = count_ok(reply);
    if (sent != count) {
        fail(in, now_ms, max_backoff_ms,
             "HAProxy refused the key: \"%s\" (is --ticket-keys-id \"%s\" listed by `show tls-keys`, "
             "and is the socket at level admin?)", first_line(reply, line, sizeof line), f->keys_id);
        return -1;
    }
    if (in->down)
        flog(LOG_NOTICE, "%s: HAProxy reachable again", in->socket);
    if (in->keys_late)
        flog(LOG_NOTICE, "%s: epoch keys available again", in->socket);
    in->down = 0;
    in->keys_late = 0;
    in->backoff_ms = 0;
    in->next_try_ms = 0;
    memcpy(in->proc, proc, sizeof proc);
    in->epoch = e;
    if (count == 1)
        flog(LOG_NOTICE, "%s: pushed epoch %llu (name %s); HAProxy pid %s now encrypts with epoch %llu",
             in->socket, (unsigned long long)first, name_hex, pid, (unsigned long long)e);
    else
        flog(LOG_NOTICE, "%s: loaded epochs %llu..%llu (newest name %s) into HAProxy pid %s; "
             "it encrypts with epoch %llu", in->socket, (unsigned long long)first,
             (unsigned long long)(first + FD_RING - 1), name_hex, pid, (unsigned long long)e);
    return 0;
}
