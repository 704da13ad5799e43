/*
 * ring.c - the per-process cache of epoch keys (see ring.h).
 *
 * Threat: keys outliving their usefulness in memory.  Entries leave the ring
 * by expiry (out of the decrypt window, or their generation left the
 * token), by hk_ring_clear, or by eviction, and their bytes are wiped in
 * place under the write lock.  Growing copies the keys into a new locked
 * mapping and frees (wipes) the old one.
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

int hk_ring_grow(hk_ring *r, size_t n)
{
    hk_ring_entry *entries;
    hk_secret keys;

    if (n <= r->n)
        return HSMKEYS_OK;
    entries = calloc(n, sizeof *entries);
    if (entries == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory for the key ring");
    if (hk_secret_alloc(&keys, n * HK_EPOCH_KEYS_LEN) != HSMKEYS_OK) {
        free(entries);
        return HSMKEYS_E_NOMEM;
    }
    pthread_rwlock_wrlock(&r->lock);
    memcpy(entries, r->entries, r->n * sizeof *entries);
    memcpy(keys.data, r->keys.data, r->n * HK_EPOCH_KEYS_LEN);
    free(r->entries);
    hk_secret_free(&r->keys); /* wipes the old copy */
    r->entries = entries;
    r->keys = keys;
    r->n = n;
    pthread_rwlock_unlock(&r->lock);
    return HSMKEYS_OK;
}

int hk_ring_lookup(hk_ring *r, int kind, uint32_t gen, uint64_t epoch, unsigned char name[16],
                   unsigned char a[32], unsigned char b[32])
{
    size_t i;
    int found = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        hk_ring_entry *e = &r->entries[i];
        if (e->used && e->epoch == epoch && e->gen == gen && e->kind == kind) {
            if (name != NULL)
                memcpy(name, e->name, 16);
            if (a != NULL)
                memcpy(a, entry_keys(r, i), 32);
            if (b != NULL)
                memcpy(b, entry_keys(r, i) + 32, 32);
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

void hk_ring_insert(hk_ring *r, int kind, uint32_t gen, uint64_t epoch,
                    const unsigned char name[16], const unsigned char keys[HK_EPOCH_KEYS_LEN])
{
    size_t i, slot = r->n, oldest = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        hk_ring_entry *e = &r->entries[i];
        if (e->used && e->epoch == epoch && e->gen == gen && e->kind == kind) {
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
    r->entries[slot].kind = kind;
    r->entries[slot].gen = gen;
    r->entries[slot].epoch = epoch;
    memcpy(r->entries[slot].name, name, 16);
    memcpy(entry_keys(r, slot), keys, HK_EPOCH_KEYS_LEN);
    pthread_rwlock_unlock(&r->lock);
}

static int kept(uint32_t gen, const uint32_t *keep, size_t nkeep)
{
    size_t i;
    if (keep == NULL)
        return 1;
    for (i = 0; i < nkeep; i++)
        if (keep[i] == gen)
            return 1;
    return 0;
}

size_t hk_ring_expire(hk_ring *r, uint64_t min_epoch, uint64_t max_epoch,
                      const uint32_t *keep, size_t nkeep)
{
    size_t i, n = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (i = 0; i < r->n; i++) {
        hk_ring_entry *e = &r->entries[i];
        if (e->used && (e->epoch < min_epoch || e->epoch > max_epoch ||
                        !kept(e->gen, keep, nkeep))) {
            wipe_entry(r, i);
            n++;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return n;
}

void hk_ring_clear(hk_ring *r)
{
    size_t i;
    if (r->entries == NULL)
        return;
    pthread_rwlock_wrlock(&r->lock);
    for (i = 0; i < r->n; i++)
        wipe_entry(r, i);
    pthread_rwlock_unlock(&r->lock);
}

size_t hk_ring_count(hk_ring *r)
{
    size_t i, n = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (i = 0; i < r->n; i++)
        n += r->entries[i].used != 0;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

void hk_ring_after_fork(hk_ring *r)
{
    hk_secret_relock(&r->keys);
}
