/*
 * conn.c - one probe connection: TCP connect, TLS handshake offering the
 * client's newest session ticket, one HTTP GET, and what it tells.
 *
 * Ticket bookkeeping, as a careful browser does it: each client keeps a small
 * pool of sessions and offers the newest.  TLS 1.3 tickets arrive after the
 * handshake, one or more per connection (session callback), and each is
 * used once (RFC 8446 C.4): a server that stops issuing tickets on
 * resumption shows up as full handshakes.  A TLS 1.2 session is reused until
 * a renewed ticket replaces it; OpenSSL does not call the callback on a
 * resumed TLS 1.2 connection, so it is taken with SSL_get1_session().
 *
 * Threat: the server is untrusted.  Reads are bounded (PROBE_RESP_MAX kept,
 * PROBE_READ_MAX read), every socket operation has a timeout, and the
 * backend name taken from the response is reduced to safe printable bytes
 * before it reaches a table, CSV or JSON.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>

#define PROBE_RESP_MAX 16384
#define PROBE_READ_MAX (1 << 20)

/* Per-connection state reachable from the session callback. */
#define PROBE_TICKETS_PER_CONN 4
typedef struct conn_state {
    SSL_SESSION *got[PROBE_TICKETS_PER_CONN]; /* TLS 1.3 tickets, oldest first */
    int n;
} conn_state;

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    conn_state *st = SSL_get_app_data(ssl);
    if (!st)
        return 0;
    if (st->n == PROBE_TICKETS_PER_CONN) {
        SSL_SESSION_free(st->got[0]);
        memmove(st->got, st->got + 1, sizeof st->got[0] * (PROBE_TICKETS_PER_CONN - 1));
        st->n--;
    }
    st->got[st->n++] = sess;
    return 1; /* we keep the reference */
}

static int is_tls13(const SSL_SESSION *s)
{
    return SSL_SESSION_get_protocol_version(s) >= TLS1_3_VERSION;
}

/* Take the session to offer (caller frees): the newest.  A TLS 1.3 ticket
 * is removed from the pool (single use, RFC 8446 C.4); a TLS 1.2 session
 * stays and the connection gets a private copy, because OpenSSL marks an
 * offered TLS 1.2 session not-resumable once a renewed ticket replaces it,
 * and parallel connections must not see that mark first. */
static SSL_SESSION *take_offer(probe_client *c, int *reconnect)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&c->lock);
    *reconnect = c->had_session;
    while (c->npool > 0 && !s) {
        SSL_SESSION *top = c->pool[c->npool - 1];
        if (!SSL_SESSION_is_resumable(top)) {
            SSL_SESSION_free(top);
            c->npool--;
        } else if (is_tls13(top)) {
            s = top;
            c->npool--;
        } else {
            s = SSL_SESSION_dup(top);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Add a received session (takes it).  A TLS 1.2 session replaces the pool:
 * the newest wins. */
static void put_session(probe_client *c, SSL_SESSION *s)
{
    pthread_mutex_lock(&c->lock);
    if (!is_tls13(s))
        while (c->npool > 0)
            SSL_SESSION_free(c->pool[--c->npool]);
    if (c->npool == PROBE_POOL) {
        SSL_SESSION_free(c->pool[0]);
        memmove(c->pool, c->pool + 1, sizeof c->pool[0] * (PROBE_POOL - 1));
        c->npool--;
    }
    c->pool[c->npool++] = s;
    c->had_session = 1;
    pthread_mutex_unlock(&c->lock);
}

SSL_CTX *probe_ssl_ctx(const probe_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "hsmkeys-probe: cannot create an OpenSSL client context\n");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, o->tls_version ? o->tls_version : TLS1_2_VERSION);
    if (o->tls_version)
        SSL_CTX_set_max_proto_version(ctx, o->tls_version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    if (o->cafile) {
        if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
            fprintf(stderr, "hsmkeys-probe: --cafile %s: cannot load certificates\n", o->cafile);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void set_err(probe_conn *rec, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[120] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(rec->err, sizeof rec->err, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

static int tcp_connect(const probe_opts *o, probe_conn *rec)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc) {
        snprintf(rec->err, sizeof rec->err, "cannot resolve %s: %s", o->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    struct timeval tv = { .tv_sec = o->timeout_s };
    int one = 1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        /* As browsers do: without it the request written right after the
         * client's Finished waits for the server's delayed ACK (40 ms on
         * Linux) whenever the server has nothing to send first (a TLS 1.2
         * resumption; a TLS 1.3 handshake with no ticket issued), and the
         * probe would time TCP rather than the server. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(rec->err, sizeof rec->err, "cannot connect to %s:%s", o->host, o->port);
    return fd;
}

/* Copy a header value / body word into dst, keeping only safe characters. */
static void copy_name(char *dst, size_t dstlen, const char *src, size_t n)
{
    while (n && (*src == ' ' || *src == '\t')) { src++; n--; }
    while (n && isspace((unsigned char)src[n - 1])) n--;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[j++] = (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/' || ch == ':')
                   ? (char)ch : '_';
    }
    dst[j] = '\0';
}

/* The line of resp that starts with "key:" (case-insensitive), value in *v. */
static int find_line(const char *resp, size_t len, const char *key, const char **v, size_t *vlen)
{
    size_t kl = strlen(key);
    const char *p = resp, *end = resp + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > kl && p[kl] == ':' && strncasecmp(p, key, kl) == 0) {
            *v = p + kl + 1;
            *vlen = (size_t)(eol - p) - kl - 1;
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

static void parse_backend(const probe_opts *o, const char *resp, size_t len, probe_conn *rec)
{
    const char *hdr_end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (!memcmp(resp + i, "\r\n\r\n", 4)) { hdr_end = resp + i + 2; break; }
    size_t hlen = hdr_end ? (size_t)(hdr_end - resp) : len;
    const char *v;
    size_t vl;
    if (find_line(resp, hlen, o->backend_header, &v, &vl)) {
        copy_name(rec->backend, sizeof rec->backend, v, vl);
        return;
    }
    if (hdr_end && find_line(hdr_end + 2, len - hlen - 2, "server", &v, &vl))
        copy_name(rec->backend, sizeof rec->backend, v, vl);
}

/* Content-Length as the server sent it, digits only; a value beyond what
 * the probe reads anyway is clamped to PROBE_READ_MAX (no overflow when it
 * is added to the header length).  -1 if it is not a number. */
static long content_length(const char *v, size_t vl)
{
    long n = 0;
    size_t i = 0;
    while (i < vl && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == vl)
        return -1;
    for (; i < vl && v[i] != '\r' && v[i] != ' ' && v[i] != '\t'; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (n <= PROBE_READ_MAX)
            n = n * 10 + (v[i] - '0');
    }
    return n > PROBE_READ_MAX ? PROBE_READ_MAX : n;
}

/* Read the whole response (up to Content-Length or EOF). 0 ok, -1 error. */
static int read_response(SSL *ssl, char *buf, size_t *len, probe_conn *rec)
{
    size_t have = 0, total = 0;
    long want = -1; /* total bytes expected once headers are in */
    char scratch[4096];
    for (;;) {
        char *dst = have < PROBE_RESP_MAX - 1 ? buf + have : scratch;
        size_t room = have < PROBE_RESP_MAX - 1 ? PROBE_RESP_MAX - 1 - have : sizeof scratch;
        int n = SSL_read(ssl, dst, (int)room);
        if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && total > 0))
                break;
            set_err(rec, "reading the response failed");
            return -1;
        }
        if (dst == buf + have)
            have += (size_t)n;
        total += (size_t)n;
        buf[have] = '\0';
        if (want < 0) {
            char *he = strstr(buf, "\r\n\r\n");
            const char *v;
            size_t vl;
            if (he && find_line(buf, (size_t)(he - buf), "content-length", &v, &vl)) {
                long cl = content_length(v, vl);
                if (cl < 0) {
                    set_err(rec, "the server sent a Content-Length that is not a number");
                    return -1;
                }
                want = (long)(he - buf) + 4 + cl;
            }
        }
        if ((want >= 0 && (long)total >= want) || total > PROBE_READ_MAX)
            break;
    }
    *len = have;
    if (have < 12 || strncmp(buf, "HTTP/", 5)) {
        snprintf(rec->err, sizeof rec->err, "the server did not answer with HTTP");
        return -1;
    }
    return 0;
}

static int session_name(SSL_SESSION *s, unsigned char name[PROBE_NAME_LEN])
{
    const unsigned char *t = NULL;
    size_t tl = 0;
    if (!s)
        return 0;
    SSL_SESSION_get0_ticket(s, &t, &tl);
    if (!t || tl < PROBE_NAME_LEN)
        return 0;
    memcpy(name, t, PROBE_NAME_LEN);
    return 1;
}

void probe_connect_once(const probe_opts *o, SSL_CTX *ctx, probe_client *c, probe_conn *rec)
{
    SSL *ssl = NULL;
    SSL_SESSION *offer = NULL, *got = NULL;
    conn_state st = { .n = 0 };
    char *resp = NULL;
    rec->version = "-";
    int fd = tcp_connect(o, rec);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    resp = malloc(PROBE_RESP_MAX);
    if (!ssl || !resp) {
        snprintf(rec->err, sizeof rec->err, "out of memory");
        goto out;
    }
    SSL_set_app_data(ssl, &st);
    SSL_set_fd(ssl, fd);
    const char *host = o->sni;
    if (host)
        SSL_set_tlsext_host_name(ssl, host);
    else
        host = o->host;
    offer = take_offer(c, &rec->reconnect);
    if (offer) {
        SSL_set_session(ssl, offer);
        rec->offered = 1;
        rec->offered_has_name = session_name(offer, rec->offered_name);
    }
    double t0 = now_ms();
    if (SSL_connect(ssl) != 1) {
        set_err(rec, "TLS handshake failed");
        goto out;
    }
    rec->handshake_ms = now_ms() - t0;
    rec->resumed = SSL_session_reused(ssl);
    rec->version = SSL_get_version(ssl);

    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hsmkeys-probe\r\n"
                      "X-Probe-Id: %s\r\nConnection: close\r\n\r\n", o->path, host, rec->id);
    if (rl < 0 || (size_t)rl >= sizeof req || SSL_write(ssl, req, rl) != rl) {
        set_err(rec, "sending the request failed");
        goto out;
    }
    size_t len = 0;
    if (read_response(ssl, resp, &len, rec))
        goto out;
    parse_backend(o, resp, len, rec);
    rec->ok = 1;
    SSL_shutdown(ssl);

out:
    /* New sessions: TLS 1.3 from the callback, TLS 1.2 from the SSL. */
    if (ssl && SSL_version(ssl) < TLS1_3_VERSION) {
        while (st.n > 0) /* the callback's copy of a full handshake's session */
            SSL_SESSION_free(st.got[--st.n]);
        got = SSL_get1_session(ssl);
        if (got && got == offer) { SSL_SESSION_free(got); got = NULL; }
        if (got)
            st.got[st.n++] = got;
    }
    if (st.n > 0 && rec->ok) {
        SSL_SESSION *last = st.got[st.n - 1];
        rec->new_has_name = session_name(last, rec->new_name);
        rec->lifetime_hint = (uint32_t)SSL_SESSION_get_ticket_lifetime_hint(last);
        rec->renewed = rec->resumed && rec->offered_has_name && rec->new_has_name &&
                       memcmp(rec->offered_name, rec->new_name, PROBE_NAME_LEN) != 0;
    }
    for (int i = 0; i < st.n; i++) {
        if (SSL_SESSION_is_resumable(st.got[i]))
            put_session(c, st.got[i]);
        else
            SSL_SESSION_free(st.got[i]);
    }
    if (offer)
        SSL_SESSION_free(offer);
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    free(resp);
    ERR_clear_error();
}
