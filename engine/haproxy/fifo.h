/*
 * fifo.h - start-up keys for HAProxy through a FIFO, so that real keys never
 * rest in a file.
 *
 * HAProxy reads its `tls-ticket-keys` file once, when it parses the
 * configuration, and needs HF_RING keys there.  Pointing it at a FIFO that
 * this feeder serves makes HAProxy start with the fleet's ring [e-1, e, e+1]
 * (oldest first: HAProxy encrypts with the second-newest, e), so there is no
 * window with local random keys.  Each time a reader opens the FIFO a thread
 * writes the three base64 lines in one atomic write and closes.
 *
 * Threats: the path swapped for a regular file or a symlink (keys would land
 * on disk) -- the opened descriptor must be a FIFO owned by us, opened with
 * O_NOFOLLOW; other local users reading the keys -- the FIFO must be mode 600
 * (owned by the feeder's user, which must be the user HAProxy parses its
 * configuration as, normally root).
 */
#ifndef HSMKEYS_FEEDER_FIFO_H
#define HSMKEYS_FEEDER_FIFO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <hsmkeys/hsmkeys.h>

typedef struct hf_fifo {
    const char *path;
    hsmkeys_ctx *ctx;
    int created;          /* we made it: unlink on exit */
    int started;
    atomic_int stop;      /* set by hf_fifo_cleanup */
    pthread_t thread;
} hf_fifo;

/* Create the FIFO (mode 600) or check an existing one.  Returns 0, or -1
 * with a one-line reason in err. */
int hf_fifo_prepare(hf_fifo *f, char *err, size_t err_len);

/* Start the serving thread (signals blocked in it).  Returns 0 or -1. */
int hf_fifo_start(hf_fifo *f, char *err, size_t err_len);

/* Stop the serving thread (it frees its wiped buffer), then remove the
 * FIFO if this process created it, so that an HAProxy started without the
 * feeder fails at once ("cannot open") instead of waiting. */
void hf_fifo_cleanup(hf_fifo *f);

#endif
