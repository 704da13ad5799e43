/*
 * feeder_main.c - hsmkeys-haproxy-feeder: open the fleet's master in the
 * token and start libhsmkeys' key maintainer (the thread that does all
 * token work: keys ahead of need, the token's generations re-read, backoff),
 * then keep every configured HAProxy's ticket-key ring at [e-1, e, e+1]
 * (feeder.h) and serve start-up keys on FIFOs (fifo.h).  The loop wakes at
 * each epoch boundary, which is when HAProxy's ring must slide.
 *
 * Threats handled here: a crash or ptrace exposing keys (the process is made
 * non-dumpable, core size 0), errors lost when detaching (the parent waits
 * until the daemon has opened the token and exits with its status), and an
 * unclean stop (TERM/INT are taken synchronously with sigtimedwait, so the
 * loop exits between pushes and wipes its buffers).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "feeder.h"
#include "fifo.h"
#include "flog.h"
#include "hkm_http.h"
#include "opts.h"

#define ME "hsmkeys-haproxy-feeder"

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void harden_process(void)
{
    struct rlimit no_core = { 0, 0 };
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
}

/* Fork; the parent waits for the child's "ready" byte and exits with the
 * child's verdict, so token and configuration errors reach the caller. */
static int detach(int *ready_fd, char *err, size_t err_len)
{
    int p[2];
    pid_t pid;
    char c;
    ssize_t n;
    int st;

    if (pipe(p) != 0) {
        snprintf(err, err_len, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, err_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        *ready_fd = p[1];
        setsid();
        return 0;
    }
    close(p[1]);
    do
        n = read(p[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        _exit(0);
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
        _exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
    _exit(1);
}

static void become_daemon(int ready_fd)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    hf_log_use_syslog();
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    if (chdir("/") != 0)
        hf_log(LOG_WARNING, "chdir /: %s", strerror(errno));
    (void)!write(ready_fd, "1", 1);
    close(ready_fd);
}

static int set_opt(hsmkeys_config *cfg, const char *name, const char *flag, const char *v,
                   char *err, size_t err_len)
{
    int rc;
    if (!v)
        return 0;
    rc = hsmkeys_config_set(cfg, name, v);
    if (rc != HSMKEYS_OK) {
        snprintf(err, err_len, "%s: %s (%s)", flag, hsmkeys_last_error(), hsmkeys_result_name(rc));
        return -1;
    }
    return 0;
}

static hsmkeys_ctx *open_master(const hf_opts *o, char *err, size_t err_len)
{
    hsmkeys_config *cfg = NULL;
    hsmkeys_ctx *ctx = NULL;
    int rc;

    if (hsmkeys_config_new(&cfg) != HSMKEYS_OK) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    hsmkeys_config_set_log(cfg, hf_log_hsmkeys, NULL);
    if (set_opt(cfg, "uri", "--uri", o->uri, err, err_len) ||
        set_opt(cfg, "domain", "--domain", o->domain, err, err_len) ||
        set_opt(cfg, "epoch", "--epoch", o->epoch, err, err_len) ||
        set_opt(cfg, "lifetime", "--lifetime", o->lifetime, err, err_len) ||
        set_opt(cfg, "forward-erasable", "--forward-erasable", o->forward_erasable ? "yes" : NULL,
                err, err_len) ||
        set_opt(cfg, "module", "--module", o->module, err, err_len) ||
        set_opt(cfg, "module-args", "--module-args", o->module_args, err, err_len) ||
        set_opt(cfg, "pin-source", "--pin-source", o->pin_source, err, err_len)) {
        hsmkeys_config_free(cfg);
        return NULL;
    }
    rc = hsmkeys_open(cfg, &ctx);
    hsmkeys_config_free(cfg);
    if (rc != HSMKEYS_OK) {
        snprintf(err, err_len, "cannot open the master key: %s (%s)", hsmkeys_last_error(),
                 hsmkeys_result_name(rc));
        return NULL;
    }
    /* The key maintainer: a thread (signals stay blocked in it, see main)
     * that keeps the window's keys cached and follows the token's
     * generations.  open has just derived the current ones: no wait. */
    rc = hsmkeys_start(ctx, 0);
    if (rc != HSMKEYS_OK) {
        snprintf(err, err_len, "cannot start the key maintainer: %s (%s)", hsmkeys_last_error(),
                 hsmkeys_result_name(rc));
        hsmkeys_close(ctx);
        return NULL;
    }
    return ctx;
}

static int write_pidfile(const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "we");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        snprintf(err, err_len, "--pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Milliseconds until just after the next epoch boundary, by the wall clock
 * that the library's epochs follow. */
static long long ms_to_boundary(hsmkeys_ctx *ctx)
{
    long long p = hsmkeys_epoch_seconds(ctx) * 1000;
    long long now = wall_ms();
    long long left = p - now % p + 20;
    return left < 0 ? 0 : left;
}

static int run_once(hf_feeder *f, hf_instance *in, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (hf_instance_sync(f, &in[i], mono_ms(), 0) != 0)
            bad = 1;
    return bad;
}

static void run_loop(hf_feeder *f, hf_instance *in, int n, const hf_opts *o, const sigset_t *sigs)
{
    for (;;) {
        long long now = mono_ms(), wait;
        struct timespec ts;
        int sig;

        for (int i = 0; i < n; i++)
            if (now >= in[i].next_try_ms)
                (void)hf_instance_sync(f, &in[i], now, o->max_backoff_ms);
        now = mono_ms();
        wait = ms_to_boundary(f->ctx);
        if (n && o->interval_ms < wait)
            wait = o->interval_ms;
        for (int i = 0; i < n; i++)
            if (in[i].next_try_ms > now && in[i].next_try_ms - now < wait)
                wait = in[i].next_try_ms - now;
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (wait % 1000) * 1000000;
        sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            hf_log(LOG_NOTICE, "signal %d: stopping", sig);
            return;
        }
        if (sig == SIGHUP) {
            hf_log(LOG_NOTICE, "SIGHUP: pushing the whole ring to every HAProxy again");
            for (int i = 0; i < n; i++) {
                in[i].proc[0] = '\0';
                in[i].next_try_ms = 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    static hf_fifo fifos[HF_MAX_FIFOS];
    hf_instance inst[HF_MAX_SOCKETS];
    hf_feeder feeder;
    hf_opts o;
    sigset_t sigs;
    char err[600];
    hkm_http *metrics = NULL;
    int ready_fd = -1, rc, status = 1;

    harden_process();
    rc = hf_opts_parse(&o, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0 && err[0])
            fprintf(stderr, ME ": %s\n", err);
        return rc > 0 ? 0 : 2;
    }
    hf_log_set_verbose(o.verbose);
    memset(&feeder, 0, sizeof feeder);
    memset(inst, 0, sizeof inst);

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    if (!o.once) /* taken by sigtimedwait in run_loop; blocked before any
                  * thread (maintainer, FIFOs) starts, so they inherit it */
        sigprocmask(SIG_BLOCK, &sigs, NULL);

    if (!o.foreground && !o.once && detach(&ready_fd, err, sizeof err) != 0) {
        fprintf(stderr, ME ": %s\n", err);
        return 1;
    }
    feeder.ctx = open_master(&o, err, sizeof err);
    if (!feeder.ctx) {
        fprintf(stderr, ME ": %s\n", err);
        return 1;
    }
    feeder.keys_id = o.keys_id;
    feeder.timeout_ms = o.timeout_ms;
    if (hsmkeys_secure_alloc(HF_FEEDER_BUF, (void **)&feeder.buf) != HSMKEYS_OK) {
        fprintf(stderr, ME ": cannot lock %zu bytes for keys: %s\n", (size_t)HF_FEEDER_BUF,
                hsmkeys_last_error());
        goto out;
    }
    for (int i = 0; i < o.n_fifos; i++) {
        fifos[i].path = o.fifos[i];
        fifos[i].ctx = feeder.ctx;
        if (hf_fifo_prepare(&fifos[i], err, sizeof err) != 0) {
            fprintf(stderr, ME ": --fifo: %s\n", err);
            goto out;
        }
    }
    for (int i = 0; i < o.n_sockets; i++)
        inst[i].socket = o.sockets[i];

    if (o.once) {
        status = run_once(&feeder, inst, o.n_sockets);
        goto out;
    }
    for (int i = 0; i < o.n_fifos; i++)
        if (hf_fifo_start(&fifos[i], err, sizeof err) != 0) {
            fprintf(stderr, ME ": %s\n", err);
            goto out;
        }
    /* after detach(): the serving thread must live in the daemon */
    if (o.metrics && !(metrics = hkm_http_start(o.metrics, feeder.ctx, err, sizeof err))) {
        fprintf(stderr, ME ": --metrics: %s\n", err);
        goto out;
    }
    if (o.pidfile && write_pidfile(o.pidfile, err, sizeof err) != 0) {
        fprintf(stderr, ME ": %s\n", err);
        goto out;
    }
    if (ready_fd >= 0)
        become_daemon(ready_fd);
    hf_log(LOG_NOTICE, "started: domain %s, epoch %llds, epoch now %llu; %d socket(s), %d FIFO(s)",
         o.domain, (long long)hsmkeys_epoch_seconds(feeder.ctx),
         (unsigned long long)hsmkeys_current_epoch(feeder.ctx), o.n_sockets, o.n_fifos);
    run_loop(&feeder, inst, o.n_sockets, &o, &sigs);
    status = 0;
    if (o.pidfile)
        unlink(o.pidfile);
out:
    hkm_http_stop(metrics);
    for (int i = 0; i < o.n_fifos; i++)
        hf_fifo_cleanup(&fifos[i]);
    hsmkeys_secure_free(feeder.buf);
    hsmkeys_close(feeder.ctx);
    return status;
}
