/*
 * ring.c - the per-process cache of epoch keys (see ring.h).
 *
 * Threat: keys outliving their usefulness in memory.  Entries leave the ring
 * by expiry (out of the decrypt window) or eviction, and their bytes are
 * wiped in place under the write lock.
 */
#include <stdlib.h>
#include <string.h>
#include "ring.h"

int hk_ring_init(hk_ring *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->entries = calloc(n, sizeof *r->entries);
    if (r->entries == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory for the key ring");
    if (hk_secret_alloc(&r->keys, n * HK_EPOCH_KEYS_LEN) != HSMKEYS_OK) {
        free(r->entries);
        r->entries = NULL;
        return HSMKEYS_E_NOMEM;
    }
    r->n = n;
    pthread_rwlock_init(&r->lock, NULL);
    return HSMKEYS_OK;
}

void hk_ring_free(hk_ring *r)
{
    if (r->entries == NULL)
        return;
    hk_secret_free(&r->keys);
    free(r->entries);
    pthread_rwlock_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

static unsigned char *entry_keys(hk_ring *r, size_t i)
{
    return r->keys.data + i * HK_EPOCH_KEYS_LEN;
}

int hk_ring_lookup(hk_ring *r, uint32_t gen, uint64_t epoch, unsigned char name[16],
                   unsigned char aes[32], unsigned char hmac[32])
{
    size_t i;
    int found = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        hk_ring_entry *e = &r->entries[i];
        if (e->used && e->epoch == epoch && e->gen == gen) {
            if (name != NULL)
                memcpy(name, e->name, 16);
            if (aes != NULL)
                memcpy(aes, entry_keys(r, i), 32);
            if (hmac != NULL)
                memcpy(hmac, entry_keys(r, i) + 32, 32);
            found = 1;
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return found;
}

static void wipe_entry(hk_ring *r, size_t i)
{
    hsmkeys_wipe(entry_keys(r, i), HK_EPOCH_KEYS_LEN);
    memset(&r->entries[i], 0, sizeof r->entries[i]);
}

void hk_ring_insert(hk_ring *r, uint32_t gen, uint64_t epoch, const unsigned char name[16],
                    const unsigned char keys[HK_EPOCH_KEYS_LEN])
{
    size_t i, slot = r->n, oldest = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        hk_ring_entry *e = &r->entries[i];
        if (e->used && e->epoch == epoch && e->gen == gen) {
            slot = i;
            break;
        }
        if (!e->used && slot == r->n)
            slot = i;
        if (e->used && r->entries[oldest].used && e->epoch < r->entries[oldest].epoch)
            oldest = i;
    }
    if (slot == r->n)
        slot = oldest;
    wipe_entry(r, slot);
    r->entries[slot].used = 1;
    r->entries[slot].gen = gen;
    r->entries[slot].epoch = epoch;
    memcpy(r->entries[slot].name, name, 16);
    memcpy(entry_keys(r, slot), keys, HK_EPOCH_KEYS_LEN);
    pthread_rwlock_unlock(&r->lock);
}

size_t hk_ring_expire(hk_ring *r, uint64_t min_epoch)
{
    size_t i, n = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        if (r->entries[i].used && r->entries[i].epoch < min_epoch) {
            wipe_entry(r, i);
            n++;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return n;
}

void hk_ring_after_fork(hk_ring *r)
{
    hk_secret_relock(&r->keys);
}
