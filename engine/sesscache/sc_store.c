/*
 * sc_store.c - the Redis client of the session cache.  See sc_store.h for
 * the behaviour and the bound on waiting.
 *
 * Layout: sc_store (shared, refcounted) holds the settings and a pthread
 * key; each thread's sc_conn (created on its first call) holds its
 * hiredis context, the number of replies still to read (the first may be
 * AUTH's), and its breaker state.  The deadline is enforced by our own read
 * loop: before each read it waits (ppoll) at most what remains, so a server
 * that trickles replies cannot stretch the wait either.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "sc_store.h"

#define LOG_WARNING 4
#define LOG_NOTICE  5
#define SC_LOG_EVERY_MS 10000

typedef struct sc_conn {
    redisContext *rc;
    pid_t pid;
    unsigned pending;        /* replies not read yet */
    int auth_pending;        /* the first of them is AUTH's */
    unsigned gen;            /* the store's failure generation when connected */
    unsigned timeout_set;    /* socket timeout now set on rc (ms) */
} sc_conn;

struct sc_store {
    sc_conf conf;
    sc_log_fn log;
    void *log_arg;
    pthread_key_t key;
    int refs;
    /* The breaker, one per process and store: a failure seen by any thread
     * closes every thread's connection (they are re-made on next use, after
     * the backoff), so one dead or stopped Redis costs the process one
     * timeout per backoff interval, not one per thread. */
    pthread_mutex_t lock;
    unsigned gen;            /* bumped by each failure */
    int64_t down_until;      /* monotonic ms; 0: closed */
    unsigned backoff_ms;     /* 0: healthy */
    int64_t last_log;        /* monotonic ms of the last "down" line */
    uint64_t hits, misses, skipped, failures, writes, dropped, connects;
};

#define ADD(field) __atomic_add_fetch(&(field), 1, __ATOMIC_RELAXED)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void slog(sc_store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slog(sc_store *st, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (st->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->log(st->log_arg, level, msg);
}

static void conn_close(sc_conn *c)
{
    if (c->rc != NULL)
        redisFree(c->rc); /* in a child after fork: closes only our copy of the fd */
    c->rc = NULL;
    c->pending = 0;
    c->auth_pending = 0;
    c->timeout_set = 0;
}

static void conn_destroy(void *p)
{
    sc_conn *c = p;
    conn_close(c);
    free(c);
}

sc_store *sc_store_new(const sc_conf *conf, sc_log_fn log, void *log_arg)
{
    sc_store *st = calloc(1, sizeof *st);

    if (st == NULL)
        return NULL;
    if (sc_conf_copy(&st->conf, conf) != 0 ||
        pthread_key_create(&st->key, conn_destroy) != 0) {
        sc_conf_clear(&st->conf);
        free(st);
        return NULL;
    }
    pthread_mutex_init(&st->lock, NULL);
    st->log = log;
    st->log_arg = log_arg;
    st->refs = 1;
    return st;
}

void sc_store_up_ref(sc_store *st)
{
    __atomic_add_fetch(&st->refs, 1, __ATOMIC_RELAXED);
}

void sc_store_free(sc_store *st)
{
    sc_conn *c;

    if (st == NULL || __atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    c = pthread_getspecific(st->key);
    if (c != NULL) {
        pthread_setspecific(st->key, NULL);
        conn_destroy(c);
    }
    pthread_key_delete(st->key);
    pthread_mutex_destroy(&st->lock);
    sc_conf_clear(&st->conf);
    free(st);
}

const sc_conf *sc_store_conf(const sc_store *st)
{
    return &st->conf;
}

void sc_store_get_stats(const sc_store *st, sc_store_stats *o)
{
    o->hits = __atomic_load_n(&st->hits, __ATOMIC_RELAXED);
    o->misses = __atomic_load_n(&st->misses, __ATOMIC_RELAXED);
    o->skipped = __atomic_load_n(&st->skipped, __ATOMIC_RELAXED);
    o->failures = __atomic_load_n(&st->failures, __ATOMIC_RELAXED);
    o->writes = __atomic_load_n(&st->writes, __ATOMIC_RELAXED);
    o->dropped = __atomic_load_n(&st->dropped, __ATOMIC_RELAXED);
    o->connects = __atomic_load_n(&st->connects, __ATOMIC_RELAXED);
}

/* Close the connection; if nobody reported a failure since it was made,
 * open (or extend) the breaker for every thread.  One log line per
 * SC_LOG_EVERY_MS and store. */
static void conn_fail(sc_store *st, sc_conn *c, const char *what)
{
    char addr[160];
    int64_t t = now_ms();
    unsigned backoff = 0;
    int say = 0;

    pthread_mutex_lock(&st->lock);
    if (c->gen == st->gen) {
        st->gen++;
        st->backoff_ms = st->backoff_ms == 0 ? SC_STORE_BACKOFF_MIN_MS
                         : st->backoff_ms * 2 > SC_STORE_BACKOFF_MAX_MS ? SC_STORE_BACKOFF_MAX_MS
                         : st->backoff_ms * 2;
        st->down_until = t + st->backoff_ms;
        backoff = st->backoff_ms;
        if (st->last_log == 0 || t - st->last_log >= SC_LOG_EVERY_MS) {
            st->last_log = t;
            say = 1;
        }
    }
    pthread_mutex_unlock(&st->lock);
    conn_close(c);
    ADD(st->failures);
    if (say)
        slog(st, LOG_WARNING, "session cache store %s: %s; session-ID clients "
             "get full handshakes until it answers (retry in %u ms; this "
             "message at most every %d s)", sc_conf_addr(&st->conf, addr, sizeof addr),
             what, backoff, SC_LOG_EVERY_MS / 1000);
}

static void conn_good(sc_store *st, sc_conn *c)
{
    char addr[160];
    int was = 0;

    (void)c;
    if (__atomic_load_n(&st->backoff_ms, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&st->lock);
    if (st->backoff_ms != 0) {
        st->backoff_ms = 0;
        st->down_until = 0;
        was = 1;
    }
    pthread_mutex_unlock(&st->lock);
    if (was)
        slog(st, LOG_NOTICE, "session cache store %s answers again",
             sc_conf_addr(&st->conf, addr, sizeof addr));
}

static int set_timeout(sc_conn *c, unsigned ms)
{
    struct timeval tv;

    if (ms == c->timeout_set)
        return 0;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (redisSetTimeout(c->rc, tv) != REDIS_OK)
        return -1;
    c->timeout_set = ms;
    return 0;
}

static redisContext *connect_to(const sc_conf *conf, unsigned ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    return conf->unix_socket ? redisConnectUnixWithTimeout(conf->path, tv)
                             : redisConnectWithTimeout(conf->host, conf->port, tv);
}

/* Append the AUTH command (if any) to a fresh context. */
static int append_auth(redisContext *rc, const sc_conf *conf)
{
    const char *argv[2] = { "AUTH", conf->password };
    size_t lens[2] = { 4, conf->password_len };

    if (conf->password == NULL)
        return 0;
    return redisAppendCommandArgv(rc, 2, argv, lens) == REDIS_OK ? 1 : -1;
}

/* Whether an idle connection is still open at the other end: a store that
 * restarted closed it, and using it would cost this lookup (or lose this
 * write).  Readable with nothing pending is a close (or garbage) too. */
static int conn_alive(sc_conn *c)
{
    struct pollfd p = { c->rc->fd, POLLIN | POLLRDHUP, 0 };

    if (poll(&p, 1, 0) <= 0)
        return 1;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return 0;
    return c->pending > 0;
}

/* The calling thread's connection, connected; NULL while the breaker is
 * open or when connecting fails (the breaker is then open). */
static sc_conn *conn_get(sc_store *st)
{
    sc_conn *c = pthread_getspecific(st->key);
    char what[200];
    int64_t down_until;
    unsigned gen;
    int a;

    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL || pthread_setspecific(st->key, c) != 0) {
            free(c);
            return NULL;
        }
        c->pid = getpid();
    }
    if (c->pid != getpid()) { /* inherited across fork(): not ours to use */
        conn_close(c);
        c->pid = getpid();
    }
    pthread_mutex_lock(&st->lock);
    gen = st->gen;
    down_until = st->down_until;
    pthread_mutex_unlock(&st->lock);
    if (c->rc != NULL && c->gen == gen && conn_alive(c))
        return c;
    /* closed by the store (e.g. it restarted), or another thread saw it
     * fail since we connected: make a new one (unless the breaker is open) */
    conn_close(c);
    if (down_until != 0 && now_ms() < down_until) {
        ADD(st->skipped);
        return NULL;
    }
    c->gen = gen;
    c->rc = connect_to(&st->conf, st->conf.connect_timeout_ms);
    if (c->rc == NULL || c->rc->err) {
        snprintf(what, sizeof what, "cannot connect: %s",
                 c->rc != NULL ? c->rc->errstr : "out of memory");
        conn_fail(st, c, what);
        return NULL;
    }
    ADD(st->connects);
    a = append_auth(c->rc, &st->conf);
    if (a < 0 || set_timeout(c, st->conf.timeout_ms) != 0) {
        conn_fail(st, c, "cannot send AUTH");
        return NULL;
    }
    c->pending = (unsigned)a;
    c->auth_pending = a;
    return c;
}

/* Write everything appended so far (socket timeout = the store timeout). */
static int flush(sc_conn *c)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c->rc, &done) != REDIS_OK)
            return -1;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One reply before the deadline (ns, monotonic); NULL on error/timeout.
 * ppoll waits on a high-resolution timer: the socket's SO_RCVTIMEO is
 * rounded up to scheduler ticks (10 ms at HZ=100) and only a backstop. */
static redisReply *read_reply(sc_conn *c, int64_t deadline)
{
    void *r = NULL;

    for (;;) {
        struct pollfd p = { c->rc->fd, POLLIN, 0 };
        struct timespec ts;
        int64_t left;
        int n;

        if (redisGetReplyFromReader(c->rc, &r) != REDIS_OK)
            return NULL;
        if (r != NULL)
            return r;
        left = deadline - now_ns();
        if (left <= 0)
            return NULL;
        ts.tv_sec = (time_t)(left / 1000000000);
        ts.tv_nsec = (long)(left % 1000000000);
        n = ppoll(&p, 1, &ts, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        if (redisBufferRead(c->rc) != REDIS_OK)
            return NULL;
    }
}

/* Check one reply to an earlier write (or AUTH).  -1: the connection must
 * go (AUTH refused); 0 otherwise (a refused SET is logged, not fatal). */
static int check_pending(sc_store *st, sc_conn *c, redisReply *r, char *what, size_t wl)
{
    int auth = c->auth_pending;

    c->auth_pending = 0;
    c->pending--;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(what, wl, "%s refused: %.*s", auth ? "AUTH" : "write",
                 (int)(r->len > 120 ? 120 : r->len), r->str);
        if (auth)
            return -1;
        slog(st, LOG_WARNING, "session cache store: %s", what);
    }
    return 0;
}

/* Read the replies that have already arrived, without waiting. */
static int drain_ready(sc_store *st, sc_conn *c)
{
    struct pollfd p = { c->rc->fd, POLLIN, 0 };
    char what[200];
    void *r;

    while (c->pending > 0) {
        r = NULL;
        if (redisGetReplyFromReader(c->rc, &r) != REDIS_OK)
            goto fail;
        if (r == NULL) {
            if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
                return 0;
            if (redisBufferRead(c->rc) != REDIS_OK)
                goto fail;
            continue;
        }
        if (check_pending(st, c, r, what, sizeof what) != 0) {
            freeReplyObject(r);
            conn_fail(st, c, what);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
fail:
    snprintf(what, sizeof what, "connection lost: %s", c->rc->errstr);
    conn_fail(st, c, what);
    return -1;
}

int sc_store_get(sc_store *st, const char *key, unsigned char *buf, size_t cap,
                 size_t *len)
{
    int64_t deadline = now_ns() + (int64_t)st->conf.timeout_ms * 1000000;
    sc_conn *c = conn_get(st);
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, strlen(key) };
    redisReply *r;
    char what[200];
    int rc;

    if (c == NULL)
        return SC_STORE_DOWN;
    if (redisAppendCommandArgv(c->rc, 2, argv, lens) != REDIS_OK || flush(c) != 0)
        goto io;
    while (c->pending > 0) {
        if ((r = read_reply(c, deadline)) == NULL)
            goto io;
        if (check_pending(st, c, r, what, sizeof what) != 0) {
            freeReplyObject(r);
            conn_fail(st, c, what);
            return SC_STORE_DOWN;
        }
        freeReplyObject(r);
    }
    if ((r = read_reply(c, deadline)) == NULL)
        goto io;
    if (r->type == REDIS_REPLY_NIL) {
        rc = SC_STORE_MISS;
        ADD(st->misses);
    } else if (r->type == REDIS_REPLY_STRING) {
        if (r->len > cap) {
            rc = SC_STORE_BIG;
        } else {
            memcpy(buf, r->str, r->len);
            *len = r->len;
            rc = SC_STORE_HIT;
            ADD(st->hits);
        }
    } else {
        snprintf(what, sizeof what, "GET refused: %.*s", r->type == REDIS_REPLY_ERROR ?
                 (int)(r->len > 120 ? 120 : r->len) : 11,
                 r->type == REDIS_REPLY_ERROR ? r->str : "not a value");
        freeReplyObject(r);
        conn_fail(st, c, what);
        return SC_STORE_DOWN;
    }
    freeReplyObject(r);
    conn_good(st, c);
    return rc;
io:
    /* hiredis reports a socket timeout as EAGAIN's text */
    if (c->rc == NULL || c->rc->err == 0 || strstr(c->rc->errstr, "temporarily unavailable") != NULL)
        snprintf(what, sizeof what, "no reply within %u ms (timeout)", st->conf.timeout_ms);
    else
        snprintf(what, sizeof what, "%s", c->rc->errstr);
    conn_fail(st, c, what);
    return SC_STORE_DOWN;
}

static void send_write(sc_store *st, int argc, const char **argv, const size_t *lens)
{
    sc_conn *c = conn_get(st);
    char what[200];

    if (c == NULL)
        return;
    if (drain_ready(st, c) != 0)
        return;
    if (c->pending >= SC_STORE_PENDING_MAX) {
        ADD(st->dropped);
        return;
    }
    if (set_timeout(c, st->conf.timeout_ms) != 0 ||
        redisAppendCommandArgv(c->rc, argc, argv, lens) != REDIS_OK || flush(c) != 0) {
        snprintf(what, sizeof what, "write failed: %s",
                 c->rc != NULL && c->rc->err ? c->rc->errstr : "?");
        conn_fail(st, c, what);
        return;
    }
    c->pending++;
    ADD(st->writes);
}

void sc_store_put(sc_store *st, const char *key, const unsigned char *val,
                  size_t len, unsigned ttl_s)
{
    char ttl[16];
    const char *argv[5] = { "SET", key, (const char *)val, "EX", ttl };
    size_t lens[5] = { 3, strlen(key), len, 2, 0 };

    if (ttl_s == 0)
        return;
    lens[4] = (size_t)snprintf(ttl, sizeof ttl, "%u", ttl_s);
    send_write(st, 5, argv, lens);
}

void sc_store_del(sc_store *st, const char *key)
{
    const char *argv[2] = { "DEL", key };
    size_t lens[2] = { 3, strlen(key) };

    send_write(st, 2, argv, lens);
}

int sc_store_probe(const sc_conf *conf, unsigned timeout_ms, char *msg, size_t msglen)
{
    redisContext *rc = connect_to(conf, timeout_ms);
    struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000) };
    redisReply *r;
    int ret = 0, a;
    const char *argv[1] = { "PING" };
    size_t lens[1] = { 4 };

    if (rc == NULL || rc->err) {
        snprintf(msg, msglen, "cannot connect: %s", rc != NULL ? rc->errstr : "out of memory");
        if (rc != NULL)
            redisFree(rc);
        return 1;
    }
    a = append_auth(rc, conf);
    if (a < 0 || redisSetTimeout(rc, tv) != REDIS_OK ||
        redisAppendCommandArgv(rc, 1, argv, lens) != REDIS_OK) {
        snprintf(msg, msglen, "cannot send: %s", rc->errstr);
        redisFree(rc);
        return 1;
    }
    for (int i = 0; i < a + 1; i++) {
        void *v = NULL;
        if (redisGetReply(rc, &v) != REDIS_OK || v == NULL) {
            snprintf(msg, msglen, "no reply within %u ms: %s", timeout_ms, rc->errstr);
            ret = 1;
            break;
        }
        r = v;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(msg, msglen, "%s refused: %.*s%s", i < a ? "AUTH" : "PING",
                     (int)(r->len > 120 ? 120 : r->len), r->str,
                     i < a || strstr(r->str, "NOAUTH") != NULL
                     ? " (check password-file= and the server's requirepass / ACL)" : "");
            freeReplyObject(r);
            ret = 2;
            break;
        }
        if (i == a && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0)) {
            snprintf(msg, msglen, "PING: unexpected reply (is this a Redis server?)");
            ret = 2;
        }
        freeReplyObject(r);
    }
    if (ret == 0)
        snprintf(msg, msglen, "answers%s", conf->password != NULL ? " (AUTH accepted)" : "");
    redisFree(rc);
    return ret;
}
