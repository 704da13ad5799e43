/*
 * secret.c - locked, undumpable, wiped memory for PINs and keys.
 *
 * Threat: key bytes reaching swap, a core dump, or freed heap that a later
 * bug might disclose.  Each secret is an anonymous mapping (never shared with
 * the heap), mlock'd and MADV_DONTDUMP; on free it is wiped first, and
 * unmapped even if munlock fails.  mlock may fail under a small
 * RLIMIT_MEMLOCK: that is an error, not a silent downgrade.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "secret.h"

void hsmkeys_wipe(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
    memset(p, 0, len);
    /* The barrier makes the stores observable, so they cannot be elided. */
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void hk_burn_stack(void)
{
    unsigned char scratch[HK_BURN_STACK_BYTES];
    hsmkeys_wipe(scratch, sizeof scratch);
}

int hk_ct_memcmp(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    size_t i;
    for (i = 0; i < len; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d != 0;
}

int hk_secret_alloc(hk_secret *s, size_t cap)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t map_len;
    void *p;

    memset(s, 0, sizeof *s);
    if (cap == 0)
        cap = 1;
    map_len = (cap + (size_t)page - 1) & ~((size_t)page - 1);
    p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return hk_fail(HSMKEYS_E_NOMEM, "cannot map %zu bytes for key memory: %s",
                       map_len, strerror(errno));
    (void)madvise(p, map_len, MADV_DONTDUMP);
    if (mlock(p, map_len) != 0) {
        int e = errno;
        struct rlimit rl = { 0, 0 };
        (void)getrlimit(RLIMIT_MEMLOCK, &rl);
        munmap(p, map_len);
        return hk_fail(HSMKEYS_E_NOMEM,
                       "cannot lock key memory (%s; RLIMIT_MEMLOCK is %llu bytes): "
                       "raise the limit (ulimit -l, LimitMEMLOCK= in systemd)",
                       strerror(e), (unsigned long long)rl.rlim_cur);
    }
    s->data = p;
    s->cap = cap;
    s->map_len = map_len;
    return HSMKEYS_OK;
}

void hk_secret_free(hk_secret *s)
{
    if (s == NULL || s->data == NULL)
        return;
    hsmkeys_wipe(s->data, s->map_len);
    (void)munlock(s->data, s->map_len);
    munmap(s->data, s->map_len);
    memset(s, 0, sizeof *s);
}

void hk_secret_relock(hk_secret *s)
{
    if (s != NULL && s->data != NULL)
        (void)mlock(s->data, s->map_len);
}
