/*
 * ring.h - the per-process cache of epoch keys.
 *
 * Layout: `n` entries; entry i's public part (kind, generation number,
 * epoch, key name) is in entries[i], its 64 key bytes at keys.data + 64*i,
 * in one locked, undumpable mapping.  Readers (handshakes) take the read
 * lock and copy the keys out; the maintainer takes the write lock only to
 * insert, expire or resize, never across a token call.  Expired, dropped
 * and evicted entries are wiped at once.
 */
#ifndef HSMKEYS_RING_H
#define HSMKEYS_RING_H

#include <pthread.h>
#include <stdint.h>
#include "secret.h"
#include "kdf.h"

/* What an entry's 64 bytes are. */
enum hk_key_kind {
    HK_KIND_TICKET = 0, /* AES-256 key || HMAC-SHA256 key */
    HK_KIND_CACHE = 1   /* session-cache seal key || id key */
};

typedef struct hk_ring_entry {
    uint64_t epoch;
    uint32_t gen;    /* master generation number (not an index) */
    int kind;
    int used;
    unsigned char name[16];
} hk_ring_entry;

typedef struct hk_ring {
    pthread_rwlock_t lock;
    size_t n;
    hk_ring_entry *entries;
    hk_secret keys;
} hk_ring;

/* Returns HSMKEYS_OK or HSMKEYS_E_NOMEM. */
int hk_ring_init(hk_ring *r, size_t n) HK_WARN_UNUSED;
void hk_ring_free(hk_ring *r);

/* Grow to n entries, keeping the current ones (no-op if already as big).
 * Returns HSMKEYS_OK or HSMKEYS_E_NOMEM (the ring is unchanged). */
int hk_ring_grow(hk_ring *r, size_t n) HK_WARN_UNUSED;

/* Copy the entry for (kind, gen, epoch) out; 1 if found, 0 if not. name,
 * a and b (the two 32-byte halves) may each be NULL. */
int hk_ring_lookup(hk_ring *r, int kind, uint32_t gen, uint64_t epoch, unsigned char name[16],
                   unsigned char a[32], unsigned char b[32]);

/* Insert or replace; evicts (and wipes) the oldest entry when full. */
void hk_ring_insert(hk_ring *r, int kind, uint32_t gen, uint64_t epoch,
                    const unsigned char name[16], const unsigned char keys[HK_EPOCH_KEYS_LEN]);

/* Wipe every entry whose epoch is below min_epoch or above max_epoch, or
 * whose generation is not in keep[0..nkeep) (keep == NULL: keep all
 * generations); returns how many were wiped. */
size_t hk_ring_expire(hk_ring *r, uint64_t min_epoch, uint64_t max_epoch,
                      const uint32_t *keep, size_t nkeep);

/* Wipe every entry. */
void hk_ring_clear(hk_ring *r);

/* Entries in use. */
size_t hk_ring_count(hk_ring *r);

/* After fork: mlock is not inherited by the child. */
void hk_ring_after_fork(hk_ring *r);

#endif
