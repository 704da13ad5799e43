/*
 * secret.h - memory for secret bytes (PINs, epoch keys).
 *
 * A secret lives in its own anonymous mapping, locked (mlock) so it is never
 * swapped, marked MADV_DONTDUMP so it never lands in a core file, and wiped
 * before it is unmapped, even if unlocking fails.  A mapping is page sized;
 * the ring allocates one block for all its slots.
 */
#ifndef HSMKEYS_SECRET_H
#define HSMKEYS_SECRET_H

#include <stddef.h>
#include "error.h"

typedef struct hk_secret {
    unsigned char *data; /* len usable bytes */
    size_t len;          /* bytes in use (<= cap) */
    size_t cap;          /* bytes allocated */
    size_t map_len;      /* length of the mapping */
} hk_secret;

/* Allocate cap bytes of locked, undumpable, zeroed memory.
 * Returns HSMKEYS_OK or HSMKEYS_E_NOMEM (with RLIMIT_MEMLOCK in the message). */
int hk_secret_alloc(hk_secret *s, size_t cap) HK_WARN_UNUSED;

/* Wipe and unmap; safe on a zeroed or already freed secret. */
void hk_secret_free(hk_secret *s);

/* Lock the mapping again: mlock is not inherited across fork(). */
void hk_secret_relock(hk_secret *s);

/* Wipe the stack below the caller: the frames of a derivation that just
 * returned (ours, the PKCS#11 module's, OpenSSL's inside it, a sanitizer
 * runtime's register spills) may still hold key bytes.  Not for the hot
 * path: it writes HK_BURN_STACK_BYTES. */
#define HK_BURN_STACK_BYTES 32768
void hk_burn_stack(void);

/* Compare in time independent of the contents; 0 when equal. */
int hk_ct_memcmp(const void *a, const void *b, size_t len);

#endif /* HSMKEYS_SECRET_H */
