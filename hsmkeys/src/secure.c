/*
 * secure.c - hsmkeys_secure_alloc/free: the library's secret memory (secret.c)
 * for callers that hold key bytes themselves (the HAProxy feeder's key lines
 * and runtime-API commands), so there is one type of locked memory, not one
 * per program.
 *
 * Layout: one hk_secret mapping per buffer; its first HK_SECURE_HDR bytes hold
 * a copy of the hk_secret and a canary, the caller's bytes follow (aligned to
 * 64).  Threat: the same as secret.c (swap, core dumps, freed heap); misuse
 * (freeing a pointer that did not come from here, or an overwritten header)
 * aborts rather than unmapping the wrong memory, as libsodium does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "secret.h"

#define HK_SECURE_HDR 64
#define HK_SECURE_CANARY 0x686b736563757265ULL /* "hksecure" */

struct hk_secure_hdr {
    hk_secret s;
    uint64_t canary;
};
_Static_assert(sizeof(struct hk_secure_hdr) <= HK_SECURE_HDR, "header fits");

int hsmkeys_secure_alloc(size_t len, void **out)
{
    hk_secret s;
    struct hk_secure_hdr h;

    if (out == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_secure_alloc: NULL out");
    *out = NULL;
    if (len == 0 || len > SIZE_MAX / 2)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_secure_alloc: length %zu: give 1 byte or "
                       "more (and less than half the address space)", len);
    HK_TRY(hk_secret_alloc(&s, HK_SECURE_HDR + len));
    s.len = HK_SECURE_HDR + len;
    h.s = s;
    h.canary = HK_SECURE_CANARY;
    memcpy(s.data, &h, sizeof h);
    *out = s.data + HK_SECURE_HDR;
    return HSMKEYS_OK;
}

void hsmkeys_secure_free(void *p)
{
    struct hk_secure_hdr h;

    if (p == NULL)
        return;
    memcpy(&h, (unsigned char *)p - HK_SECURE_HDR, sizeof h);
    if (h.canary != HK_SECURE_CANARY || h.s.data != (unsigned char *)p - HK_SECURE_HDR)
        abort(); /* not ours, or its header was overwritten: unmapping would be a guess */
    hk_secret_free(&h.s); /* wipes the whole mapping, header included */
}
