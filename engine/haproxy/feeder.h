/*
 * feeder.h - what the parts of hsmkeys-haproxy-feeder share.
 *
 * HAProxy keeps TLS_TICKETS_NO (3) ticket keys per `tls-ticket-keys`
 * reference and encrypts with the second-newest; `set ssl tls-key` appends a
 * key and drops the oldest.  The feeder keeps each HAProxy's ring at
 *     [e-1, e, e+1]      (oldest first; e = current epoch: encrypts)
 * so tickets of the previous epoch still resume and a peer whose clock is
 * already in e+1 is understood.  At each epoch boundary it appends e+2.
 * (HAProxy's ring semantics fix that timing; deriving the keys is not the
 * feeder's business: libhsmkeys' key maintainer thread keeps the window
 * cached and hsmkeys_epoch_key only reads it, waiting on a miss.)
 *
 * Threat: ticket keys resting in files or logs.  Keys reach HAProxy only
 * through its admin socket or a FIFO, from locked memory that is wiped after
 * each send; logs carry key names and epochs only.
 */
#ifndef HSMKEYS_FEEDER_H
#define HSMKEYS_FEEDER_H

#include <stdint.h>
#include <hsmkeys/hsmkeys.h>
#include "keyline.h"
#include "lockbuf.h"

#define FD_MAX_SOCKETS 16
#define FD_MAX_FIFOS   16
#define FD_MAX_ID_LEN  512

/* Retry after the library had no epoch key (its maintainer backs off from a
 * failing token by itself). */
#define FD_KEYS_RETRY_MS 1000

/* Ring size of HAProxy's default build (TLS_TICKETS_NO). */
#define FD_RING 3

typedef struct fd_feeder {
    hsmkeys_ctx *ctx;
    const char *keys_id;   /* the reference HAProxy knows the keys by */
    int timeout_ms;        /* per runtime-API request */
    fd_lockbuf buf;        /* scratch, key lines and command line */
} fd_feeder;

/* Size of fd_feeder.buf. */
#define FD_FEEDER_BUF (FD_KEY_RECORD_LEN + FD_RING * (FD_KEYLINE_LEN + 1) + \
                       FD_RING * (sizeof "set ssl tls-key " + FD_MAX_ID_LEN + FD_KEYLINE_LEN + 4) + 8)

/* One HAProxy instance (one admin socket). */
typedef struct fd_instance {
    const char *socket;
    char proc[64];          /* "pid@start" of the process last synced; "" none */
    uint64_t epoch;         /* when proc is set: its ring is [epoch-1, epoch, epoch+1] */
    long long next_try_ms;  /* monotonic; retry not before */
    long long backoff_ms;   /* next delay after a failure */
    int down;               /* a failure was logged; log the recovery */
    int keys_late;          /* a late epoch key was logged; log the recovery */
    int mode_checked;
} fd_instance;

/*
 * Bring one HAProxy to [e-1, e, e+1] for the current epoch e: one `show info`
 * to learn which process answers (a restarted HAProxy gets the whole ring),
 * then the `set ssl tls-key` commands needed.  When HAProxy fails the
 * instance backs off (doubling, capped at max_backoff_ms; 0: a single
 * attempt, as --once); when a key is not available yet it is retried after
 * FD_KEYS_RETRY_MS with HAProxy's ring left as it is.
 * Returns 0 in sync, -1 failed.
 */
int fd_instance_sync(fd_feeder *f, fd_instance *in, long long now_ms, long long max_backoff_ms);

#endif
