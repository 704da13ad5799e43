/* ring_test.c - hsmkeys/src/ring.c: lookup by kind/generation/epoch, replace,
 * eviction, expiry by window and by generation, growth, clear: each wipes. */
#include "test.h"
#include "ring.h"

#define T HK_KIND_TICKET
#define C HK_KIND_CACHE

static int all_unused_wiped(hk_ring *r)
{
    static const unsigned char zero[64];
    size_t i;
    for (i = 0; i < r->n; i++)
        if (!r->entries[i].used && memcmp(r->keys.data + i * 64, zero, 64) != 0)
            return 0;
    return 1;
}

int main(void)
{
    hk_ring r;
    unsigned char keys[64], name[16], aes[32], mac[32];
    uint32_t keep[1] = { 5 };
    size_t i;
    int k;

    T_CASE("insert then lookup copies name and both keys") {
        T_RC(hk_ring_init(&r, 4), HSMKEYS_OK);
        memset(keys, 0xAA, 32); memset(keys + 32, 0xBB, 32); memset(name, 0x11, 16);
        hk_ring_insert(&r, T, 0, 7, name, keys);
        memset(name, 0, 16);
        T_EQ_INT(hk_ring_lookup(&r, T, 0, 7, name, aes, mac), 1);
        T_EQ_MEM(aes, keys, 32);
        T_EQ_MEM(mac, keys + 32, 32);
        T_EQ_INT(name[0], 0x11);
        T_EQ_INT(hk_ring_lookup(&r, T, 1, 7, NULL, NULL, NULL), 0); /* other generation */
        T_EQ_INT(hk_ring_lookup(&r, C, 0, 7, NULL, NULL, NULL), 0); /* other kind */
        T_EQ_INT(hk_ring_lookup(&r, T, 0, 8, NULL, NULL, NULL), 0);
    }
    T_CASE("a full ring evicts the oldest epoch and wipes it") {
        for (k = 8; k <= 11; k++) {
            memset(keys, k, 64);
            hk_ring_insert(&r, T, 0, (uint64_t)k, name, keys);
        }
        T_EQ_INT(hk_ring_lookup(&r, T, 0, 7, NULL, NULL, NULL), 0);
        T_EQ_INT(hk_ring_lookup(&r, T, 0, 11, NULL, aes, NULL), 1);
        T_EQ_INT(aes[0], 11);
        for (i = 0; i < r.n; i++)
            T_TRUE(r.keys.data[i * 64] != 0xAA); /* epoch 7's bytes are gone */
    }
    T_CASE("expiry wipes every entry below the window in place") {
        T_EQ_INT(hk_ring_expire(&r, 10, 100, NULL, 0), 2);
        T_TRUE(all_unused_wiped(&r));
        T_EQ_INT(hk_ring_lookup(&r, T, 0, 10, NULL, NULL, NULL), 1);
        T_EQ_INT(hk_ring_count(&r), 2);
    }
    T_CASE("expiry wipes epochs above the window and generations not kept") {
        hk_ring_insert(&r, T, 5, 10, name, keys);
        T_EQ_INT(hk_ring_expire(&r, 0, 10, keep, 1), 2); /* gen 0 epochs 10 and 11 */
        T_EQ_INT(hk_ring_lookup(&r, T, 5, 10, NULL, NULL, NULL), 1);
        T_EQ_INT(hk_ring_count(&r), 1);
        T_TRUE(all_unused_wiped(&r));
    }
    T_CASE("growing keeps every entry and wipes the old mapping's copy") {
        T_RC(hk_ring_grow(&r, 16), HSMKEYS_OK);
        T_EQ_INT(r.n, 16);
        T_EQ_INT(hk_ring_lookup(&r, T, 5, 10, NULL, aes, NULL), 1);
        T_EQ_INT(aes[0], 11);
        for (k = 0; k < 12; k++)
            hk_ring_insert(&r, k % 2, 5, (uint64_t)(20 + k / 2), name, keys);
        T_EQ_INT(hk_ring_count(&r), 13); /* nothing evicted */
        T_RC(hk_ring_grow(&r, 8), HSMKEYS_OK); /* never shrinks */
        T_EQ_INT(r.n, 16);
    }
    T_CASE("clear wipes every entry") {
        hk_ring_clear(&r);
        T_EQ_INT(hk_ring_count(&r), 0);
        T_TRUE(all_unused_wiped(&r));
    }
    T_CASE("free leaves nothing to use") {
        hk_ring_free(&r);
        T_TRUE(r.entries == NULL && r.keys.data == NULL);
        hk_ring_free(&r); /* twice is harmless */
    }
    return t_done();
}
