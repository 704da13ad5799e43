/*
 * keymem_test.c - key hygiene in memory, shown rather than claimed:
 *  - the epoch keys the library holds equal the ones derived independently
 *    (tests/lib/refkdf.c over the known test master, SP 800-108 as in
 *    docs/DERIVATION.md), so the scans below look for the right bytes;
 *  - every copy of a key in this process lies in a mapping that is locked
 *    (VmFlags "lo": never swapped) and excluded from core dumps ("dd");
 *  - an epoch that left the window is wiped: its bytes are nowhere;
 *  - after hsmkeys_close no key byte sequence is left anywhere;
 *  - the master's value cannot be read from the token.
 * The expected keys are computed in a child process and passed back masked,
 * so this process never holds an unmasked copy the scan could find.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys.h>
#include "test.h"
#include "softhsm.h"
#include "refkdf.h"
#include "p11.h"
#include "secret.h"
#include "memscan.h"

/* ASan and TSan intercept mlock() and make it a no-op, so under them pages
 * are never locked and "lo" cannot be shown; everything else still can. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HY_MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HY_MLOCK_WORKS 0
#endif
#endif
#ifndef HY_MLOCK_WORKS
#define HY_MLOCK_WORKS 1
#endif

/* Key bytes that a memcpy moved may stay in vector registers long after;
 * under ThreadSanitizer, its runtime and the dynamic linker's lazy binding
 * then save those registers into stack frames while this test scans (seen:
 * one copy about 5 KB below main's frame, written after any earlier wipe).
 * Under TSan only, clear the vector registers and the dead stack before each
 * scan; every other build scans the process exactly as it is. */
#if defined(__SANITIZE_THREAD__)
#define HY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HY_TSAN 1
#endif
#endif
__attribute__((noinline)) static void scrub_sanitizer_spills(void)
{
#ifdef HY_TSAN
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx"))
        __asm__ __volatile__("vzeroall" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                             "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                             "xmm13", "xmm14", "xmm15", "memory");
    else
        __asm__ __volatile__("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
                             "pxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
                             "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
                             "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7"
                             ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                             "xmm7", "memory");
#endif
    hk_burn_stack();
#endif
}

#define TOKEN  "hygiene"
#define DOMAIN "hygiene.test"
#define EPOCH  60
#define T0     ((int64_t)1700000000 / EPOCH * EPOCH + 1)

static int64_t now_s = T0;
static int64_t clock_fn(void *arg) { (void)arg; return __atomic_load_n(&now_s, __ATOMIC_RELAXED); }

/* In a child: the 64 key bytes of `epoch`, masked, through a pipe. */
static int expected_masked(uint64_t epoch, unsigned char masked[64])
{
    int fd[2];
    pid_t pid;
    if (pipe(fd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        unsigned char master[32], out[64];
        close(fd[0]);
        t_master_from_seed(TOKEN, master);
        t_ref_epoch_keys(master, DOMAIN, epoch, out);
        for (int i = 0; i < 64; i++)
            out[i] ^= HY_MASK;
        _exit(write(fd[1], out, 64) == 64 ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], masked, 64);
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return got == 64 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Compare a key the library handed out with the masked expectation. */
static int equal_masked(const unsigned char *key, const unsigned char *masked, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)((key[i] ^ HY_MASK) ^ masked[i]);
    return diff == 0;
}

static void scan(const char *what, const unsigned char *masked, hy_hits *h)
{
    if (hy_scan(masked, 32, h) != 0)
        printf("# cannot read /proc/self/smaps\n");
    printf("# %s: %d copies, %d in locked+undumpable mappings%s%s\n", what, h->total,
           h->protected_, h->where[0] ? "; others: " : "", h->where);
}

int main(void)
{
    t_hsm hsm;
    t_master_opts o = { 0 };
    unsigned char master[32], cur[64], old[64];
    hsmkeys_config *cfg = NULL;
    hsmkeys_ctx *ctx = NULL;
    char uri[1024];
    uint64_t e0 = (uint64_t)(T0 / EPOCH), e_late = e0 + 5;

    if (t_hsm_setup(&hsm) || t_token_init(T_SOFTHSM_MODULE, TOKEN, T_SO_PIN, T_USER_PIN)) {
        printf("not ok 1 - set-up\n");
        return 1;
    }
    t_master_from_seed(TOKEN, master);
    if (t_master_import(T_SOFTHSM_MODULE, TOKEN, T_USER_PIN, master, 32, &o) != 0) {
        printf("not ok 1 - master import\n");
        return 1;
    }
    hsmkeys_wipe(master, sizeof master);
    t_uri(uri, sizeof uri, TOKEN, hsm.pin_file);

    T_CASE("open with the known test master; expected keys derived independently") {
        T_RC(hsmkeys_config_new(&cfg), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(cfg, "uri", uri), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(cfg, "domain", DOMAIN), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(cfg, "epoch", "60s"), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(cfg, "lifetime", "60s"), HSMKEYS_OK);
        hsmkeys_config_set_clock(cfg, clock_fn, NULL);
        T_RC(hsmkeys_open(cfg, &ctx), HSMKEYS_OK);
        hsmkeys_config_free(cfg);
        T_EQ_INT(expected_masked(e0, old), 0);
        T_EQ_INT(expected_masked(e_late, cur), 0);
    }
    if (!ctx)
        return t_done();

    T_CASE("the library's keys equal the independent SP 800-108 derivation") {
        unsigned char name[16], aes[32], hmac[32];
        T_RC(hsmkeys_epoch_key(ctx, e0, name, aes, hmac), HSMKEYS_OK);
        T_TRUE(equal_masked(aes, old, 32));
        T_TRUE(equal_masked(hmac, old + 32, 32));
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(hmac, sizeof hmac);
    }

    hy_hits cur_a, cur_h;
    scrub_sanitizer_spills();
    scan("AES key of the current epoch", old, &cur_a);
    scan("HMAC key of the current epoch", old + 32, &cur_h);
    T_CASE("every copy of the current keys is in memory excluded from core dumps (dd)") {
        T_TRUE(cur_a.total >= 1);      /* the ring holds it: the scan works */
        T_EQ_INT(cur_a.nodump, cur_a.total);
        T_TRUE(cur_h.total >= 1);
        T_EQ_INT(cur_h.nodump, cur_h.total);
    }
    if (!HY_MLOCK_WORKS)
        t_skip("every copy of the current keys is in locked memory (lo)",
               "sanitizer build: ASan/TSan intercept mlock() as a no-op");
    else T_CASE("every copy of the current keys is in locked memory (lo)") {
        T_TRUE(cur_a.total >= 1);
        T_EQ_INT(cur_a.protected_, cur_a.total);
        T_EQ_INT(cur_h.protected_, cur_h.total);
    }

    T_CASE("an epoch that left the window is wiped from memory") {
        hy_hits a, h, n;
        __atomic_store_n(&now_s, T0 + 5 * EPOCH, __ATOMIC_RELAXED); /* e0 + 5: e0 is long out of the window */
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        scrub_sanitizer_spills();
        scan("AES key of the expired epoch", old, &a);
        scan("HMAC key of the expired epoch", old + 32, &h);
        scan("AES key of the new epoch", cur, &n);
        T_EQ_INT(a.total, 0);
        T_EQ_INT(h.total, 0);
        T_TRUE(n.total >= 1);
        T_EQ_INT(HY_MLOCK_WORKS ? n.protected_ : n.nodump, n.total);
    }

    T_CASE("after hsmkeys_close no key is left in memory") {
        hy_hits a, h;
        hsmkeys_close(ctx);
        ctx = NULL;
        scrub_sanitizer_spills();
        scan("AES key after close", cur, &a);
        scan("HMAC key after close", cur + 32, &h);
        T_EQ_INT(a.total, 0);
        T_EQ_INT(h.total, 0);
    }

    T_CASE("the master's value cannot be read or wrapped out of the token") {
        hk_module *m = NULL;
        CK_FUNCTION_LIST_PTR f;
        CK_SLOT_ID slots[16];
        CK_ULONG ns = 16, found = 0;
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE mk = CK_INVALID_HANDLE;
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        const char *label = "hsmkeys-master";
        CK_ATTRIBUTE find[] = { { CKA_CLASS, &cls, sizeof cls },
                                { CKA_LABEL, (void *)label, strlen(label) } };
        unsigned char value[64];
        CK_ATTRIBUTE get = { CKA_VALUE, value, sizeof value };
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE loosen = { CKA_EXTRACTABLE, &yes, sizeof yes };
        T_RC(hk_module_get(T_SOFTHSM_MODULE, NULL, &m), HSMKEYS_OK);
        if (m) {
            f = hk_module_fns(m);
            T_EQ_INT(f->C_GetSlotList(CK_TRUE, slots, &ns), CKR_OK);
            T_EQ_INT(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
            T_EQ_INT(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USER_PIN, strlen(T_USER_PIN)), CKR_OK);
            T_EQ_INT(f->C_FindObjectsInit(s, find, 2), CKR_OK);
            T_EQ_INT(f->C_FindObjects(s, &mk, 1, &found), CKR_OK);
            (void)f->C_FindObjectsFinal(s);
            T_EQ_INT(found, 1);
            T_EQ_INT(f->C_GetAttributeValue(s, mk, &get, 1), CKR_ATTRIBUTE_SENSITIVE);
            T_EQ_INT(get.ulValueLen, CK_UNAVAILABLE_INFORMATION);
            T_NE_INT(f->C_SetAttributeValue(s, mk, &loosen, 1), CKR_OK);
            hsmkeys_wipe(value, sizeof value);
            (void)f->C_CloseSession(s);
            hk_module_put(m);
        }
    }

    t_hsm_cleanup(&hsm);
    return t_done();
}
