/*
 * ring.h - the per-process cache of epoch keys.
 *
 * Layout: `n` entries; entry i's public part (generation index, epoch, key
 * name) is in entries[i], its 64 key bytes at keys.data + 64*i, in one
 * locked, undumpable mapping.  Readers (handshakes) take the read lock and
 * copy the keys out; the deriving thread takes the write lock only to insert
 * or expire.  Expired and evicted entries are wiped at once.
 */
#ifndef HSMKEYS_RING_H
#define HSMKEYS_RING_H

#include <pthread.h>
#include <stdint.h>
#include "secret.h"
#include "kdf.h"

typedef struct hk_ring_entry {
    uint64_t epoch;
    uint32_t gen;
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

/* Copy the entry for (gen, epoch) out; 1 if found, 0 if not. name, aes and
 * hmac may each be NULL. */
int hk_ring_lookup(hk_ring *r, uint32_t gen, uint64_t epoch, unsigned char name[16],
                   unsigned char aes[32], unsigned char hmac[32]);

/* Insert or replace; evicts (and wipes) the oldest entry when full. */
void hk_ring_insert(hk_ring *r, uint32_t gen, uint64_t epoch, const unsigned char name[16],
                    const unsigned char keys[HK_EPOCH_KEYS_LEN]);

/* Wipe every entry whose epoch is below min_epoch; returns how many. */
size_t hk_ring_expire(hk_ring *r, uint64_t min_epoch);

/* After fork: mlock is not inherited by the child. */
void hk_ring_after_fork(hk_ring *r);

#endif
