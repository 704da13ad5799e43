/*
 * main.c - hsmkeys-demo-server: options, listening socket, accept loop (one
 * detached thread per connection, at most --max-conns live), and a clean
 * stop on SIGTERM/SIGINT that waits for live connections and frees the
 * SSL_CTX, which drops its libhsmkeys reference and wipes cached keys.
 *
 * Threat: connection floods (capped live connections: extra ones are closed
 * at once) and stuck clients (per-socket timeouts, session.c).
 */
#include "server.h"
#include "hkm_http.h"
#include <hsmkeys/hsmkeys_ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void usage(FILE *f)
{
    fputs(
"usage: hsmkeys-demo-server --name NAME --listen ADDR:PORT\n"
"                           (--baseline | -o uri=URI -o domain=D [-o epoch=4s ...])\n"
"  --name NAME        what the server calls itself (X-Server header, log)\n"
"  --listen ADDR:PORT address to listen on (e.g. 127.0.0.11:8443)\n"
"  --baseline         OpenSSL's own random ticket keys (no hsmkeys)\n"
"  -o NAME=VALUE      an hsmkeys configuration option (see hsmkeys.h:\n"
"                     uri, domain, epoch, lifetime, module, pin-source,\n"
"                     forward-erasable=yes ...)\n"
"  --log FILE         per-connection lines (default stdout)\n"
"  --cert F --key F   PEM certificate and key (default: ephemeral, in memory)\n"
"  --cn NAME          CN of the ephemeral certificate (default example.com)\n"
"  --sid-ctx S        session id context, same on the fleet (default hsmkeys-demo)\n"
"  --max-conns N      live connections at most (default 256)\n"
"  --timeout SEC      per-connection I/O timeout (default 5)\n"
"  --metrics A:P      serve Prometheus metrics (GET /metrics) on a loopback address\n", f);
}

static int parse(int argc, char **argv, ds_opts *o)
{
    static const struct option longs[] = {
        {"name", required_argument, 0, 'N'}, {"listen", required_argument, 0, 'l'},
        {"baseline", no_argument, 0, 'b'}, {"log", required_argument, 0, 'L'},
        {"cert", required_argument, 0, 'C'}, {"key", required_argument, 0, 'K'},
        {"cn", required_argument, 0, 'n'}, {"sid-ctx", required_argument, 0, 's'},
        {"max-conns", required_argument, 0, 'm'}, {"timeout", required_argument, 0, 't'},
        {"metrics", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}
    };
    memset(o, 0, sizeof *o);
    o->cn = "example.com";
    o->sid_ctx = "hsmkeys-demo";
    o->max_conns = 256;
    o->timeout_s = 5;
    int ch;
    while ((ch = getopt_long(argc, argv, "o:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'N': o->name = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'b': o->baseline = 1; break;
        case 'L': o->log_path = optarg; break;
        case 'C': o->cert = optarg; break;
        case 'K': o->key = optarg; break;
        case 'n': o->cn = optarg; break;
        case 's': o->sid_ctx = optarg; break;
        case 'm': o->max_conns = atoi(optarg); break;
        case 't': o->timeout_s = atoi(optarg); break;
        case 'M': o->metrics = optarg; break;
        case 'o':
            if (o->nopts == DS_MAX_OPTS || !strchr(optarg, '=')) {
                fprintf(stderr, "hsmkeys-demo-server: -o wants NAME=VALUE (at most %d)\n", DS_MAX_OPTS);
                return -1;
            }
            if (strcasestr(optarg, "pin-value")) {
                fprintf(stderr, "hsmkeys-demo-server: -o %.*s...: a PIN on the command line is "
                        "readable by every local user (process list) and stays in shell "
                        "history; use pin-source=FILE (mode 0600) in the URI\n",
                        (int)(strchr(optarg, '=') - optarg), optarg);
                return -1;
            }
            o->hk_opts[o->nopts++] = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc || !o->name || !o->listen) {
        fprintf(stderr, "hsmkeys-demo-server: --name and --listen are required\n");
        return -1;
    }
    if (o->baseline == (o->nopts > 0)) {
        fprintf(stderr, "hsmkeys-demo-server: give either --baseline or hsmkeys options (-o uri=... -o domain=...)\n");
        return -1;
    }
    if (!o->cert != !o->key || o->max_conns < 1 || o->timeout_s < 1 ||
        strlen(o->name) > 32 || strpbrk(o->name, " \r\n:")) {
        fprintf(stderr, "hsmkeys-demo-server: bad --cert/--key, --max-conns, --timeout or --name\n");
        return -1;
    }
    return 0;
}

static int listen_on(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "hsmkeys-demo-server: --listen %s is not ADDR:PORT\n", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai)) {
        fprintf(stderr, "hsmkeys-demo-server: --listen %s: not a numeric address and port\n", spec);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
        fprintf(stderr, "hsmkeys-demo-server: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

typedef struct job { ds_server *s; int fd; } job;

static void *conn_thread(void *arg)
{
    job *j = arg;
    ds_server *s = j->s;
    ds_serve(s, j->fd);
    free(j);
    pthread_mutex_lock(&s->lock);
    if (--s->live == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int main(int argc, char **argv)
{
    ds_opts o;
    if (parse(argc, argv, &o))
        return 2;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ds_server s = { .o = &o, .log = stdout };
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.idle, NULL);
    if (o.log_path && !(s.log = fopen(o.log_path, "a"))) {
        fprintf(stderr, "hsmkeys-demo-server: cannot open --log %s: %s\n", o.log_path, strerror(errno));
        return 2;
    }
    s.ctx = ds_tls_ctx(&o);
    if (!s.ctx)
        return 2;
    int lfd = listen_on(o.listen);
    if (lfd < 0)
        return 2;
    hkm_http *metrics = NULL;
    if (o.metrics) {
        char err[300];
        hsmkeys_ctx *hk = o.baseline ? NULL : hsmkeys_ssl_get(s.ctx);
        if (hk == NULL) {
            fprintf(stderr, "hsmkeys-demo-server: --metrics needs hsmkeys (not --baseline)\n");
            return 2;
        }
        if (!(metrics = hkm_http_start(o.metrics, hk, err, sizeof err))) {
            fprintf(stderr, "hsmkeys-demo-server: --metrics: %s\n", err);
            return 2;
        }
    }
    fprintf(stderr, "%s: listening on %s\n", o.name, o.listen);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (!stop) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s.lock);
        int full = s.live >= o.max_conns;
        if (!full)
            s.live++;
        pthread_mutex_unlock(&s.lock);
        job *j = full ? NULL : malloc(sizeof *j);
        pthread_t th;
        if (j) {
            *j = (job){ &s, fd };
            if (pthread_create(&th, &attr, conn_thread, j) == 0)
                continue;
            free(j);
        }
        if (!full) {
            pthread_mutex_lock(&s.lock);
            s.live--;
            pthread_mutex_unlock(&s.lock);
        }
        close(fd);
    }
    close(lfd);
    hkm_http_stop(metrics);
    /* Let live connections finish (bounded by their I/O timeouts). */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += o.timeout_s + 1;
    pthread_mutex_lock(&s.lock);
    while (s.live > 0 && pthread_cond_timedwait(&s.idle, &s.lock, &until) == 0)
        ;
    int live = s.live;
    pthread_mutex_unlock(&s.lock);
    fprintf(stderr, "%s: stopping: %lu connections served, %lu resumed\n", o.name, s.served, s.resumed);
    ds_tls_report(&o, s.ctx);
    if (live == 0) {
        SSL_CTX_free(s.ctx); /* drops the hsmkeys reference: cached keys wiped */
        if (s.log != stdout)
            fclose(s.log);
    }
    return 0;
}
