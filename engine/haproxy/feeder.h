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
 * each send (the library's secret memory, hsmkeys_secure_alloc: the feeder
 * has no locked-memory type of its own); logs carry key names and epochs only.
 *
 * Names: every identifier of the feeder starts with hf_ / HF_ (docs/STYLE.md).
 * Errors, one style: a function that can fail returns 0 or -1 and writes what
 * is wrong, and how to fix it, into the caller's `char *err, size_t err_len`;
 * library failures are copied from hsmkeys_last_error() into it.  Only main
 * prints (once, "hsmkeys-haproxy-feeder: <err>"); the loop and the FIFO
 * threads, which must keep running, log with hf_log instead of failing.
 */
#ifndef HSMKEYS_FEEDER_H
#define HSMKEYS_FEEDER_H

#include <stdint.h>
#include <hsmkeys/hsmkeys.h>
#include "keyline.h"

#define HF_MAX_SOCKETS 16
#define HF_MAX_FIFOS   16
#define HF_MAX_ID_LEN  512

/* Retry after the library had no epoch key (its maintainer backs off from a
 * failing token by itself). */
#define HF_KEYS_RETRY_MS 1000

/* Ring size of HAProxy's default build (TLS_TICKETS_NO). */
#define HF_RING 3

typedef struct hf_feeder {
    hsmkeys_ctx *ctx;
    const char *keys_id;   /* the reference HAProxy knows the keys by */
    int timeout_ms;        /* per runtime-API request */
    unsigned char *buf;    /* HF_FEEDER_BUF bytes of the library's secret memory
                            * (hsmkeys_secure_alloc): scratch, key lines, command */
} hf_feeder;

/* Size of hf_feeder.buf. */
#define HF_FEEDER_BUF (HF_KEY_RECORD_LEN + HF_RING * (HF_KEYLINE_LEN + 1) + \
                       HF_RING * (sizeof "set ssl tls-key " + HF_MAX_ID_LEN + HF_KEYLINE_LEN + 4) + 8)

/* One HAProxy instance (one admin socket). */
typedef struct hf_instance {
    const char *socket;
    char proc[64];          /* "pid@start" of the process last synced; "" none */
    uint64_t epoch;         /* when proc is set: its ring is [epoch-1, epoch, epoch+1] */
    long long next_try_ms;  /* monotonic; retry not before */
    long long backoff_ms;   /* next delay after a failure */
    int down;               /* a failure was logged; log the recovery */
    int keys_late;          /* a late epoch key was logged; log the recovery */
    int mode_checked;
} hf_instance;

/*
 * Bring one HAProxy to [e-1, e, e+1] for the current epoch e: one `show info`
 * to learn which process answers (a restarted HAProxy gets the whole ring),
 * then the `set ssl tls-key` commands needed.  When HAProxy fails the
 * instance backs off (doubling, capped at max_backoff_ms; 0: a single
 * attempt, as --once); when a key is not available yet it is retried after
 * HF_KEYS_RETRY_MS with HAProxy's ring left as it is.
 * Returns 0 in sync, -1 failed.
 */
int hf_instance_sync(hf_feeder *f, hf_instance *in, long long now_ms, long long max_backoff_ms);

#endif
