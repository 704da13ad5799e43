/*
 * haproxy_cli.c - request/reply over HAProxy's runtime API unix socket (see
 * haproxy_cli.h).  Threat: a stalled peer (deadlines on connect, write and
 * read) and copies of key lines (none are made here).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "haproxy_cli.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = { .fd = fd, .events = events };
        int r;
        if (left <= 0)
            return 0;
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : (r > 0);
    }
}

int hf_cli_request(const char *path, const char *req, size_t req_len,
                   char *reply, size_t reply_cap, int timeout_ms,
                   char *err, size_t err_len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    long long deadline = now_ms() + timeout_ms;
    size_t off = 0, got = 0;
    int fd, rc = -1;

    reply[0] = '\0';
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, err_len, "socket path is longer than %zu bytes", sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* AF_UNIX connects at once or fails; EAGAIN means a full backlog. */
        snprintf(err, err_len, "cannot connect: %s", strerror(errno));
        goto out;
    }
    while (off < req_len) {
        ssize_t n;
        if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            snprintf(err, err_len, "timed out sending the command");
            goto out;
        }
        n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            snprintf(err, err_len, "send: %s", strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    for (;;) {
        ssize_t n;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(err, err_len, w == 0 ? "timed out waiting for the reply" : "poll: %s",
                     strerror(errno));
            goto out;
        }
        if (got + 1 >= reply_cap) {
            snprintf(err, err_len, "reply longer than %zu bytes", reply_cap - 1);
            goto out;
        }
        n = recv(fd, reply + got, reply_cap - 1 - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            snprintf(err, err_len, "recv: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    reply[got] = '\0';
    rc = 0;
out:
    close(fd);
    return rc;
}

int hf_info_field(const char *reply, const char *key, char *out, size_t out_len)
{
    size_t klen = strlen(key);
    const char *p = reply;

    while (p && *p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            const char *v = p + klen + 1, *e;
            size_t n;
            while (*v == ' ')
                v++;
            e = strchr(v, '\n');
            n = e ? (size_t)(e - v) : strlen(v);
            if (n >= out_len)
                return -1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}
