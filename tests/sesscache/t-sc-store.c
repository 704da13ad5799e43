/*
 * t-sc-store.c - engine/sesscache/sc_store.c against a real Redis (started
 * and stopped by test_sesscache_store.sh): the configuration probe, writes
 * then reads on one connection, misses and oversized values, the unix
 * socket, and the failure behaviour with the store stopped (SIGSTOP): a
 * lookup waits for its deadline and no longer, writes never wait and stop
 * at the pending cap, the breaker skips the store for every thread of the
 * process, retries after the backoff, and recovers when the store answers.
 *
 *   t-sc-store PORT PWFILE UNIX_SOCKET REDIS_PID TIMEOUT_MS
 * Prints TAP lines.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "test.h"
#include "sc_conf.h"
#include "sc_store.h"

static char last_log[600];
static int logs;

static void log_fn(void *arg, int level, const char *msg)
{
    (void)arg; (void)level;
    snprintf(last_log, sizeof last_log, "%s", msg);
    logs++;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void conf_for(sc_conf *c, const char *url, const char *pwfile, unsigned timeout_ms)
{
    char err[300], opt[400];
    sc_conf_init(c);
    if (sc_conf_url(c, url, err, sizeof err) != 0)
        abort();
    if (pwfile != NULL) {
        snprintf(opt, sizeof opt, "password-file=%s", pwfile);
        if (sc_conf_option(c, opt, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
    }
    snprintf(opt, sizeof opt, "timeout=%ums", timeout_ms);
    if (sc_conf_option(c, opt, err, sizeof err) != 0)
        abort();
    snprintf(opt, sizeof opt, "connect-timeout=%ums", timeout_ms);
    if (sc_conf_option(c, opt, err, sizeof err) != 0)
        abort();
}

typedef struct th_arg { sc_store *st; int rc; double ms; } th_arg;

static void *th_get(void *p)
{
    th_arg *a = p;
    unsigned char buf[64];
    size_t n;
    double t0 = now_ms();
    a->rc = sc_store_get(a->st, "hk1:absent", buf, sizeof buf, &n);
    a->ms = now_ms() - t0;
    return NULL;
}

int main(int argc, char **argv)
{
    char url[100], sock_url[200], msg[300], wrongpw[] = "/tmp/t-sc-store-pw.XXXXXX";
    unsigned char buf[256], val[200];
    sc_conf c, cw, cu, cc;
    sc_store *st, *su;
    sc_store_stats ss;
    size_t n = 0;
    unsigned tmo;
    pid_t rpid;
    int fd;

    if (argc != 6)
        return 2;
    snprintf(url, sizeof url, "redis://127.0.0.1:%s", argv[1]);
    snprintf(sock_url, sizeof sock_url, "unix:%s", argv[3]);
    rpid = (pid_t)atoi(argv[4]);
    tmo = (unsigned)atoi(argv[5]);
    conf_for(&c, url, argv[2], tmo);
    fd = mkstemp(wrongpw);
    if (fd < 0 || write(fd, "not-the-password\n", 17) != 17)
        return 2;
    close(fd);

    T_CASE("probe: answers with the password; a wrong or missing one is refused; a closed port is unreachable") {
        T_EQ_INT(sc_store_probe(&c, 1000, msg, sizeof msg), 0);
        T_CONTAINS(msg, "AUTH accepted");
        conf_for(&cw, url, wrongpw, tmo);
        T_EQ_INT(sc_store_probe(&cw, 1000, msg, sizeof msg), 2);
        T_CONTAINS(msg, "AUTH refused: WRONGPASS");
        conf_for(&cw, url, NULL, tmo);
        T_EQ_INT(sc_store_probe(&cw, 1000, msg, sizeof msg), 2);
        T_CONTAINS(msg, "NOAUTH");
        conf_for(&cc, "redis://127.0.0.1:1", NULL, tmo);
        T_EQ_INT(sc_store_probe(&cc, 1000, msg, sizeof msg), 1);
        T_CONTAINS(msg, "cannot connect");
    }

    st = sc_store_new(&c, log_fn, NULL);
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (unsigned char)(i * 7 + 1);
    val[5] = 0; /* binary-safe */

    T_CASE("a write then a read on the same connection: the value comes back byte for byte") {
        sc_store_put(st, "hk1:t-a", val, sizeof val, 30);
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n), SC_STORE_HIT);
        T_EQ_INT(n, sizeof val);
        T_EQ_MEM(buf, val, sizeof val);
        T_EQ_INT(sc_store_get(st, "hk1:t-absent", buf, sizeof buf, &n), SC_STORE_MISS);
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, 10, &n), SC_STORE_BIG);
        sc_store_del(st, "hk1:t-a");
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n), SC_STORE_MISS);
        sc_store_get_stats(st, &ss);
        T_EQ_INT(ss.connects, 1);
        T_EQ_INT(ss.writes, 2);
        T_EQ_INT(ss.hits, 1);
        T_EQ_INT(ss.failures, 0);
    }

    T_CASE("the unix socket works the same") {
        conf_for(&cu, sock_url, argv[2], tmo);
        su = sc_store_new(&cu, NULL, NULL);
        sc_store_put(su, "hk1:t-u", val, 20, 30);
        T_EQ_INT(sc_store_get(su, "hk1:t-u", buf, sizeof buf, &n), SC_STORE_HIT);
        T_EQ_MEM(buf, val, 20);
        sc_store_free(su);
    }

    T_CASE("store stopped: 100 writes do not wait, at most 64 are outstanding, the rest dropped") {
        double t0;
        kill(rpid, SIGSTOP);
        t0 = now_ms();
        for (int i = 0; i < 100; i++)
            sc_store_put(st, "hk1:t-w", val, sizeof val, 30);
        double ms = now_ms() - t0;
        sc_store_get_stats(st, &ss);
        printf("# 100 writes to a stopped store took %.2f ms; %llu sent, %llu dropped\n", ms,
               (unsigned long long)ss.writes - 2, (unsigned long long)ss.dropped);
        T_TRUE(ms < tmo);
        T_EQ_INT(ss.writes - 2, SC_STORE_PENDING_MAX);
        T_EQ_INT(ss.dropped, 100 - SC_STORE_PENDING_MAX);
    }

    T_CASE("store stopped: a lookup waits for its deadline and no longer, then the breaker skips the store") {
        double t0 = now_ms(), ms;
        int rc = sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n);
        ms = now_ms() - t0;
        printf("# lookup against the stopped store: %.2f ms (timeout %u ms)\n", ms, tmo);
        T_EQ_INT(rc, SC_STORE_DOWN);
        T_TRUE(ms >= tmo - 0.5 && ms <= tmo + 20);
        T_CONTAINS(last_log, "no reply within");
        T_CONTAINS(last_log, "full handshakes until it answers (retry in 200 ms");
        t0 = now_ms();
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n), SC_STORE_DOWN);
        sc_store_put(st, "hk1:t-a", val, 10, 30);
        ms = now_ms() - t0;
        sc_store_get_stats(st, &ss);
        printf("# with the breaker open: lookup + write took %.3f ms\n", ms);
        T_TRUE(ms < 2);
        T_EQ_INT(ss.skipped, 2);
    }

    T_CASE("another thread of the process is skipped too (one breaker per process), without waiting") {
        th_arg a = { st, 0, 0 };
        pthread_t t;
        pthread_create(&t, NULL, th_get, &a);
        pthread_join(t, NULL);
        printf("# other thread: %.3f ms\n", a.ms);
        T_EQ_INT(a.rc, SC_STORE_DOWN);
        T_TRUE(a.ms < 2);
    }

    T_CASE("after the backoff one retry waits the deadline again, then the interval doubles") {
        double t0, ms;
        int before = logs;
        usleep(250 * 1000);
        t0 = now_ms();
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n), SC_STORE_DOWN);
        ms = now_ms() - t0;
        printf("# retry after 250 ms: %.2f ms\n", ms);
        T_TRUE(ms >= tmo - 0.5 && ms <= tmo + 20);
        T_EQ_INT(logs, before); /* rate-limited: no second line within 10 s */
        usleep(250 * 1000);     /* < the 400 ms interval now */
        t0 = now_ms();
        T_EQ_INT(sc_store_get(st, "hk1:t-a", buf, sizeof buf, &n), SC_STORE_DOWN);
        T_TRUE(now_ms() - t0 < 2);
    }

    T_CASE("store continued: after the backoff the next lookup reconnects, answers, and it is logged") {
        kill(rpid, SIGCONT);
        usleep(500 * 1000);
        T_EQ_INT(sc_store_get(st, "hk1:t-absent", buf, sizeof buf, &n), SC_STORE_MISS);
        T_CONTAINS(last_log, "answers again");
        sc_store_put(st, "hk1:t-b", val, 30, 30);
        T_EQ_INT(sc_store_get(st, "hk1:t-b", buf, sizeof buf, &n), SC_STORE_HIT);
        T_EQ_MEM(buf, val, 30);
    }

    T_CASE("a wrong password at run time opens the breaker with AUTH refused") {
        sc_store *sw;
        conf_for(&cw, url, wrongpw, tmo);
        sw = sc_store_new(&cw, log_fn, NULL);
        T_EQ_INT(sc_store_get(sw, "hk1:t-b", buf, sizeof buf, &n), SC_STORE_DOWN);
        T_CONTAINS(last_log, "AUTH refused: WRONGPASS");
        sc_store_free(sw);
    }
    sc_store_free(st);
    sc_conf_clear(&c);
    sc_conf_clear(&cw);
    sc_conf_clear(&cu);
    unlink(wrongpw);
    return t_done();
}
