/* secret_test.c - hsmkeys/src/secret.c: locked, undumpable, wiped memory. */
#include <stdio.h>
#include "test.h"

/* ASan and TSan intercept mlock() and do nothing: pages are not "lo". */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define T_MLOCK_WORKS 0
#endif
#endif
#ifndef T_MLOCK_WORKS
#define T_MLOCK_WORKS 1
#endif
#include "secret.h"

/* VmFlags of the mapping containing p: "lo" locked, "dd" do not dump. */
static int smaps_flags(const void *p, char *flags, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    unsigned long lo, hi, a = (unsigned long)p;
    int in = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = a >= lo && a < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, n, "%.200s", line + 8);
            fclose(f);
            return 0;
        }
    }
    fclose(f);
    return -1;
}

int main(void)
{
    hk_secret s;
    char flags[256] = "";
    unsigned char a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, b[8] = { 1, 2, 3, 4, 5, 6, 7, 9 };

    T_CASE("secret memory is locked and excluded from core dumps") {
        T_RC(hk_secret_alloc(&s, 100), HSMKEYS_OK);
        T_TRUE(s.cap == 100 && s.map_len >= 100);
        T_EQ_INT(smaps_flags(s.data, flags, sizeof flags), 0);
        if (T_MLOCK_WORKS)
            T_CONTAINS(flags, " lo");
        T_CONTAINS(flags, " dd");
    }
    T_CASE("free wipes and unmaps; freeing twice is harmless") {
        memset(s.data, 0x5A, 100);
        hk_secret_free(&s);
        T_TRUE(s.data == NULL);
        hk_secret_free(&s);
    }
    T_CASE("constant-time compare and wipe") {
        T_EQ_INT(hk_ct_memcmp(a, a, 8), 0);
        T_EQ_INT(hk_ct_memcmp(a, b, 8), 1);
        hsmkeys_wipe(a, sizeof a);
        T_EQ_INT(a[0] | a[7], 0);
        hsmkeys_wipe(NULL, 5);
    }
    return t_done();
}
