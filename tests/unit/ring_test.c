/* ring_test.c - hsmkeys/src/ring.c: lookup, replace, eviction, expiry wipes. */
#include "test.h"
#include "ring.h"

int main(void)
{
    hk_ring r;
    unsigned char keys[64], name[16], aes[32], mac[32], zero[64] = { 0 };
    size_t i;
    int k;

    T_CASE("insert then lookup copies name and both keys") {
        T_RC(hk_ring_init(&r, 4), HSMKEYS_OK);
        memset(keys, 0xAA, 32); memset(keys + 32, 0xBB, 32); memset(name, 0x11, 16);
        hk_ring_insert(&r, 0, 7, name, keys);
        memset(name, 0, 16);
        T_EQ_INT(hk_ring_lookup(&r, 0, 7, name, aes, mac), 1);
        T_EQ_MEM(aes, keys, 32);
        T_EQ_MEM(mac, keys + 32, 32);
        T_EQ_INT(name[0], 0x11);
        T_EQ_INT(hk_ring_lookup(&r, 1, 7, NULL, NULL, NULL), 0); /* other generation */
        T_EQ_INT(hk_ring_lookup(&r, 0, 8, NULL, NULL, NULL), 0);
    }
    T_CASE("a full ring evicts the oldest epoch and wipes it") {
        for (k = 8; k <= 11; k++) {
            memset(keys, k, 64);
            hk_ring_insert(&r, 0, (uint64_t)k, name, keys);
        }
        T_EQ_INT(hk_ring_lookup(&r, 0, 7, NULL, NULL, NULL), 0);
        T_EQ_INT(hk_ring_lookup(&r, 0, 11, NULL, aes, NULL), 1);
        T_EQ_INT(aes[0], 11);
        for (i = 0; i < r.n; i++)
            T_TRUE(r.keys.data[i * 64] != 0xAA); /* epoch 7's bytes are gone */
    }
    T_CASE("expiry wipes every entry below the window in place") {
        T_EQ_INT(hk_ring_expire(&r, 10), 2);
        for (i = 0; i < r.n; i++)
            if (!r.entries[i].used)
                T_EQ_MEM(r.keys.data + i * 64, zero, 64);
        T_EQ_INT(hk_ring_lookup(&r, 0, 10, NULL, NULL, NULL), 1);
    }
    T_CASE("free leaves nothing to use") {
        hk_ring_free(&r);
        T_TRUE(r.entries == NULL && r.keys.data == NULL);
        hk_ring_free(&r); /* twice is harmless */
    }
    return t_done();
}
