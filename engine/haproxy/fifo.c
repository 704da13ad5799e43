/*
 * fifo.c - serve HAProxy's start-up `tls-ticket-keys` through a FIFO (see
 * fifo.h for why and for the threats: a swapped path, other readers).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "feeder.h"
#include "fifo.h"
#include "flog.h"

/* One reader's text: scratch record, then [e-1, e, e+1] as key lines. */
#define HF_FIFO_BUF (HF_KEY_RECORD_LEN + HF_RING * (HF_KEYLINE_LEN + 1) + 1)

static int check_fifo(const struct stat *st, const char *path, char *err, size_t err_len)
{
    if (!S_ISFIFO(st->st_mode)) {
        snprintf(err, err_len, "%s exists and is not a FIFO: refusing to write ticket keys into it "
                 "(remove it; the feeder creates the FIFO)", path);
        return -1;
    }
    if (st->st_uid != geteuid()) {
        snprintf(err, err_len, "%s is owned by uid %u, not by the feeder (uid %u)", path,
                 (unsigned)st->st_uid, (unsigned)geteuid());
        return -1;
    }
    if (st->st_mode & 077) {
        snprintf(err, err_len, "%s is mode %04o: other users could read the keys; chmod 600 it",
                 path, (unsigned)(st->st_mode & 07777));
        return -1;
    }
    return 0;
}

int hf_fifo_prepare(hf_fifo *f, char *err, size_t err_len)
{
    struct stat st;

    if (lstat(f->path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, err_len, "%s: %s", f->path, strerror(errno));
            return -1;
        }
        if (mkfifo(f->path, 0600) != 0) {
            snprintf(err, err_len, "cannot create the FIFO %s: %s", f->path, strerror(errno));
            return -1;
        }
        f->created = 1;
        if (lstat(f->path, &st) != 0) {
            snprintf(err, err_len, "%s: %s", f->path, strerror(errno));
            return -1;
        }
    }
    return check_fifo(&st, f->path, err, err_len);
}

/* Write [e-1, e, e+1] to a reader; 0 or -1 (logged). */
static int serve_one(hf_fifo *f, int fd, unsigned char *buf)
{
    unsigned char *scratch = buf;
    char *text = (char *)buf + HF_KEY_RECORD_LEN;
    char name_hex[HF_NAME_HEX_LEN + 1], enc_name[HF_NAME_HEX_LEN + 1];
    uint64_t e = 0;
    size_t off = 0;
    ssize_t n;
    int rc = HSMKEYS_E_EXPIRED;

    /* Twice at most: the epoch may turn between reading it and deriving e-1. */
    for (int attempt = 0; attempt < 2 && rc == HSMKEYS_E_EXPIRED; attempt++) {
        e = hsmkeys_current_epoch(f->ctx);
        off = 0;
        rc = HSMKEYS_OK;
        for (int i = 0; i < HF_RING && rc == HSMKEYS_OK; i++) {
            rc = hf_keyline(f->ctx, e - 1 + (uint64_t)i, scratch, text + off, name_hex);
            off += HF_KEYLINE_LEN;
            text[off++] = '\n';
            if (i == 1)
                memcpy(enc_name, name_hex, sizeof enc_name);
        }
    }
    if (rc != HSMKEYS_OK) {
        hsmkeys_wipe(buf, HF_FIFO_BUF);
        hf_log(LOG_ERR, "%s: no start-up keys served (HAProxy will refuse to start): %s (%s)",
             f->path, hsmkeys_last_error(), hsmkeys_result_name(rc));
        return -1;
    }
    do
        n = write(fd, text, off); /* off <= PIPE_BUF: one atomic write */
    while (n < 0 && errno == EINTR);
    hsmkeys_wipe(buf, HF_FIFO_BUF);
    if (n != (ssize_t)off) {
        hf_log(LOG_ERR, "%s: writing the start-up keys failed: %s", f->path,
             n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    hf_log(LOG_NOTICE, "%s: served start-up keys, epochs %llu..%llu; encrypting with epoch %llu (name %s)",
         f->path, (unsigned long long)(e - 1), (unsigned long long)(e + 1), (unsigned long long)e,
         enc_name);
    return 0;
}

static void *fifo_thread(void *arg)
{
    hf_fifo *f = arg;
    void *buf;
    char err[512];

    if (hsmkeys_secure_alloc(HF_FIFO_BUF, &buf) != HSMKEYS_OK) {
        hf_log(LOG_ERR, "%s: cannot lock memory for keys: %s", f->path, hsmkeys_last_error());
        return NULL;
    }
    while (!atomic_load(&f->stop)) {
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        struct stat st;
        /* Blocks until a reader (HAProxy parsing its configuration, or
         * hf_fifo_cleanup waking us) opens it. */
        int fd = open(f->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (atomic_load(&f->stop)) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            hf_log(LOG_ERR, "%s: cannot open the FIFO: %s; start-up keys no longer served", f->path,
                 strerror(errno));
            break;
        }
        if (fstat(fd, &st) != 0 || check_fifo(&st, f->path, err, sizeof err) != 0) {
            close(fd);
            hf_log(LOG_ERR, "%s; start-up keys no longer served", err);
            break;
        }
        (void)serve_one(f, fd, buf);
        close(fd);
        /* Let this reader see EOF and close before serving the next one. */
        nanosleep(&pause, NULL);
    }
    hsmkeys_secure_free(buf);
    return NULL;
}

int hf_fifo_start(hf_fifo *f, char *err, size_t err_len)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&f->thread, NULL, fifo_thread, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_len, "cannot start the FIFO thread: %s", strerror(rc));
        return -1;
    }
    f->started = 1;
    return 0;
}

void hf_fifo_cleanup(hf_fifo *f)
{
    if (f->started) {
        /* Opening the FIFO for reading releases the thread's blocking open;
         * it sees the stop flag and writes nothing. */
        int rfd;
        atomic_store(&f->stop, 1);
        rfd = open(f->path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (rfd >= 0) {
            pthread_join(f->thread, NULL);
            close(rfd);
        } else {
            pthread_detach(f->thread); /* cannot wake it: exit() ends it */
        }
        f->started = 0;
    }
    if (f->created)
        unlink(f->path);
}
