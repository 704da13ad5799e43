/*
 * hkm_http.c - the loopback /metrics endpoint (see hkm_http.h).
 *
 * Data: the listening fd and a stop pipe polled by the serving thread; per
 * client a 4 KB request buffer and a response rendered into a heap buffer
 * sized by a first hsmkeys_metrics_render() pass.
 */
#include "hkm_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HKM_REQ_MAX 4096
#define HKM_CLIENT_MS 2000

struct hkm_http {
    int fd, stop_pipe[2];
    hsmkeys_ctx *ctx;
    pthread_t thread;
};

int hkm_request_kind(const char *buf, size_t len)
{
    const char *eol = memchr(buf, '\n', len), *p;
    size_t n;

    if (eol == NULL)
        return -1;
    n = (size_t)(eol - buf);
    if (n >= 4 && memcmp(buf, "GET ", 4) == 0)
        p = buf + 4;
    else if (n >= 5 && memcmp(buf, "HEAD ", 5) == 0)
        p = buf + 5;
    else
        return 0;
    n -= (size_t)(p - buf);
    if (n < 8 || memcmp(p, "/metrics", 8) != 0)
        return 0;
    return n == 8 || p[8] == ' ' || p[8] == '?' || p[8] == '\r';
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_loopback,
                      sizeof in6addr_loopback) == 0;
    return 0;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void answer(hkm_http *h, int fd)
{
    char req[HKM_REQ_MAX], head[200];
    size_t got = 0;
    int kind = -1;
    struct pollfd p = { .fd = fd, .events = POLLIN };

    while (kind < 0 && got < sizeof req && poll(&p, 1, HKM_CLIENT_MS) == 1) {
        ssize_t r = recv(fd, req + got, sizeof req - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        kind = hkm_request_kind(req, got);
    }
    if (kind != 1) {
        const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 24\r\nConnection: close\r\n\r\nonly /metrics is here.\r\n";
        if (kind == 0)
            send_all(fd, nf, strlen(nf));
        return;
    }
    hsmkeys_metrics m;
    if (hsmkeys_get_metrics(h->ctx, &m, sizeof m) != HSMKEYS_OK)
        return;
    size_t need = hsmkeys_metrics_render(&m, 1, NULL, 0);
    char *body = malloc(need + 1);
    if (body == NULL)
        return;
    hsmkeys_metrics_render(&m, 1, body, need + 1);
    int hn = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
                      "version=0.0.4\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", need);
    send_all(fd, head, (size_t)hn);
    if (req[0] == 'G')
        send_all(fd, body, need);
    free(body);
}

static void *serve(void *arg)
{
    hkm_http *h = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = h->fd, .events = POLLIN },
                               { .fd = h->stop_pipe[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        answer(h, fd);
        close(fd);
    }
    return NULL;
}

hkm_http *hkm_http_start(const char *spec, hsmkeys_ctx *ctx, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    size_t hl;
    int one = 1;

    if (colon == NULL || (hl = (size_t)(colon - spec)) == 0 || hl >= sizeof host) {
        snprintf(err, errlen, "metrics address %s is not ADDR:PORT (e.g. 127.0.0.1:9464)", spec);
        return NULL;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        snprintf(err, errlen, "metrics address %s: not a numeric address and port", spec);
        return NULL;
    }
    if (!is_loopback(ai->ai_addr)) {
        snprintf(err, errlen, "metrics address %s is not a loopback address: listen on "
                 "127.0.0.1 or [::1] and let a reverse proxy expose it", spec);
        freeaddrinfo(ai);
        return NULL;
    }
    hkm_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        freeaddrinfo(ai);
        return NULL;
    }
    h->ctx = ctx;
    h->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd >= 0)
        setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (h->fd < 0 || bind(h->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(h->fd, 16) != 0 ||
        pipe2(h->stop_pipe, O_CLOEXEC) != 0 || pthread_create(&h->thread, NULL, serve, h) != 0) {
        snprintf(err, errlen, "cannot serve metrics on %s: %s", spec, strerror(errno));
        if (h->fd >= 0)
            close(h->fd);
        free(h);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    return h;
}

void hkm_http_stop(hkm_http *h)
{
    if (h == NULL)
        return;
    if (write(h->stop_pipe[1], "x", 1) == 1)
        pthread_join(h->thread, NULL);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
    close(h->fd);
    free(h);
}
