/*
 * expiry_test.c - a token outage longer than the decrypt window: the key
 * maintainer wipes every key that left the window although no derivation
 * succeeds meanwhile, so a process never keeps expired keys in memory
 * waiting for a token that does not answer.  Checked with the hygiene
 * scanner (tests/hygiene/memscan.c) on this process's own memory.
 *
 * The master is the known test master of seed FE_TOKEN, so the test can
 * compute the expected keys independently (tests/lib/refkdf.c) and look for
 * them, masked, in memory.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "test.h"
#include "fault_env.h"
#include "memscan.h"
#include "refkdf.h"
#include "softhsm.h"

static fe_env env;
static fe_clock clk = { FE_T0 };

/* The expected keys of `epoch`, masked (HY_MASK) so the test itself never
 * holds an unmasked copy. */
static void masked_keys(uint64_t epoch, unsigned char out[64])
{
    unsigned char m[32];
    size_t i;
    t_master_from_seed(FE_TOKEN, m);
    t_ref_epoch_keys(m, FE_DOMAIN, epoch, out);
    hsmkeys_wipe(m, sizeof m);
    for (i = 0; i < 64; i++)
        out[i] ^= HY_MASK;
}

static int copies(const unsigned char masked[64])
{
    hy_hits a, h;
    if (hy_scan(masked, 32, &a) != 0 || hy_scan(masked + 32, 32, &h) != 0)
        return -1;
    return a.total + h.total;
}

int main(void)
{
    hsmkeys_ctx *hk = NULL;
    uint64_t e = (uint64_t)(FE_T0 / FE_EPOCH);
    unsigned past = 0;
    unsigned char k[4][64];
    hsmkeys_stats s0, s1;
    int i;

    if (fe_setup(&env) != 0) {
        printf("not ok 1 - set-up: token, master and fault module\n");
        return 1;
    }
    T_CASE("open: the window's keys are in memory (the scan finds them)") {
        T_RC(fe_open(&env, &clk, &hk), HSMKEYS_OK);
        if (hk != NULL) {
            past = hsmkeys_window_past(hk);
            T_EQ_INT(past, 2);
            for (i = 0; i < 4; i++)
                masked_keys(e - 2 + (uint64_t)i, k[i]); /* e-2 .. e+1 */
            for (i = 0; i < 4; i++)
                T_TRUE(copies(k[i]) >= 2);
        }
    }
    if (hk == NULL)
        return t_done();

    T_CASE("token down for three windows: every expired key is wiped, no derivation succeeded") {
        int down = 0;
        T_RC(hsmkeys_start(hk, 1000), HSMKEYS_OK);
        env.fc.fail("*", CKR_DEVICE_REMOVED, -1, 0); /* every call fails */
        hsmkeys_get_stats(hk, &s0);
        /* step through the outage an epoch at a time, as real time would */
        for (i = 1; i <= 3 * (int)(past + 2); i++) {
            atomic_store(&clk.now, FE_T0 + (int64_t)i * FE_EPOCH);
            down += hsmkeys_refresh(hk) != HSMKEYS_OK;
        }
        hsmkeys_get_stats(hk, &s1);
        T_EQ_INT(s1.token_derivations, s0.token_derivations); /* nothing derived */
        T_TRUE(down > 0);
        for (i = 0; i < 4; i++)
            T_EQ_INT(copies(k[i]), 0);
        printf("# outage of %d epochs: %llu failed token operations, 0 derivations; "
               "copies of the open-time keys left in memory: %d %d %d %d\n",
               3 * (int)(past + 2), (unsigned long long)(s1.token_errors - s0.token_errors),
               copies(k[0]), copies(k[1]), copies(k[2]), copies(k[3]));
    }

    T_CASE("meanwhile no ticket is issued: never a key that is not the fleet's") {
        unsigned char name[16], aes[32], mac[32];
        T_RC(hsmkeys_encrypt_key(hk, name, aes, mac), HSMKEYS_E_UNAVAILABLE);
    }

    T_CASE("token back: the maintainer derives the current window again by itself") {
        unsigned char name[16], aes[32], mac[32];
        int rc = HSMKEYS_E_UNAVAILABLE;
        env.fc.clear();
        /* within its backoff (at most 30 s), without being asked */
        for (i = 0; i < 400 && rc != HSMKEYS_OK; i++) {
            struct timespec ts = { 0, 100000000 };
            nanosleep(&ts, NULL);
            rc = hsmkeys_encrypt_key(hk, name, aes, mac);
        }
        T_RC(rc, HSMKEYS_OK);
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
    }
    hsmkeys_close(hk);
    fe_cleanup(&env);
    return t_done();
}
