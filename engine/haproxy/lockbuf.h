/*
 * lockbuf.h - memory for the feeder's secret bytes: epoch keys, their base64
 * form and the runtime-API command lines that carry them.
 *
 * Threat: key bytes swapped to disk, written into a core dump, or left behind
 * in freed heap memory.  A lockbuf is its own anonymous mapping, locked
 * (mlock), excluded from core dumps (MADV_DONTDUMP) and wiped before unmap.
 */
#ifndef HSMKEYS_FEEDER_LOCKBUF_H
#define HSMKEYS_FEEDER_LOCKBUF_H

#include <stddef.h>

typedef struct fd_lockbuf {
    unsigned char *p; /* len usable bytes, zeroed at allocation */
    size_t len;
    size_t map_len;
} fd_lockbuf;

/* Returns 0, or -1 with errno set (ENOMEM, or EPERM/ENOMEM from mlock when
 * RLIMIT_MEMLOCK is too small: keys are never kept in unlocked memory). */
int fd_lockbuf_alloc(fd_lockbuf *b, size_t len);

/* Wipe and unmap; safe on a zeroed or already freed buffer. */
void fd_lockbuf_free(fd_lockbuf *b);

#endif
