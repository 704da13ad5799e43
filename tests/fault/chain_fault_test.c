/*
 * chain_fault_test.c - the forward-erasable chain when the token fails its
 * writes (through the fault module around SoftHSM2, injected clock; epoch
 * 60 s, lifetime 120 s: states kept for [e-3, e+1]):
 *  - C_CreateObject failing at an epoch change: the current epoch's keys
 *    (made one epoch ahead) keep working, the token is asked a bounded
 *    number of times, and the next state is made once the token is back;
 *  - C_CreateObject that stores the state but answers CKR_GENERAL_ERROR
 *    (SoftHSM2 under racing settlers): the stored copy is used, no error;
 *  - C_DestroyObject failing: the state that left the window stays (it is
 *    not erased yet, and the log says so), and it is erased once the token
 *    is back.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "test.h"
#include "fault_env.h"

static fe_env env;
static fe_clock clk = { FE_T0 };

/* Count of states of generation 1 and the lowest epoch among them. */
static size_t states(uint64_t *lo, uint64_t *hi)
{
    uint32_t g[256];
    uint64_t x[256];
    size_t n = 0, i, k = 0;
    *lo = UINT64_MAX;
    *hi = 0;
    if (t_chain_list(T_SOFTHSM_MODULE, FE_TOKEN, T_USER_PIN, g, x, 256, &n) != 0)
        return 0;
    for (i = 0; i < n; i++)
        if (g[i] == 1) {
            k++;
            *lo = x[i] < *lo ? x[i] : *lo;
            *hi = x[i] > *hi ? x[i] : *hi;
        }
    return k;
}

static uint64_t epoch_now(void) { return (uint64_t)(atomic_load(&clk.now) / FE_EPOCH); }

int main(void)
{
    hsmkeys_ctx *hk = NULL;
    unsigned char st[32], name[16], aes[32], hmac[32];
    uint64_t e, lo, hi;
    unsigned long creates;
    int i;

    if (fe_setup(&env) != 0) {
        t_skip("forward-erasable faults", "SoftHSM2 or the fault module set-up failed");
        return t_done();
    }
    t_state_from_seed("fault", st);
    T_CASE("a forward-erasable context opens through the fault module") {
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, FE_TOKEN, T_USER_PIN, st, 1, epoch_now()), 0);
        T_RC(fe_open_fe(&env, &clk, 1, &hk), HSMKEYS_OK);
    }
    if (hk == NULL)
        return t_done();

    T_CASE("C_CreateObject failing at an epoch change: current keys work, calls bounded, then recovery") {
        env.fc.reset_counts();
        env.fc.fail("C_CreateObject", CKR_DEVICE_ERROR, -1, 0);
        atomic_fetch_add(&clk.now, FE_EPOCH);
        e = epoch_now();
        for (i = 0; i < 20; i++)
            (void)hsmkeys_refresh(hk); /* within a second of real time */
        creates = env.fc.count("C_CreateObject");
        printf("# C_CreateObject attempts during 20 refreshes: %lu\n", creates);
        /* advance once and the derivation's step once, each retried once
         * after a reconnect (CKR_DEVICE_ERROR may be a lost device): 4;
         * without the backoffs it would be one or more per refresh */
        T_TRUE(creates >= 1 && creates <= 8);
        T_RC(hsmkeys_epoch_key(hk, e, name, aes, hmac), HSMKEYS_OK); /* made an epoch ahead */
        T_EQ_INT(states(&lo, &hi), 2);
        T_EQ_INT(hi, e);               /* S(e + 1) could not be stored */
        env.fc.clear();
        usleep(1100 * 1000);           /* the backoffs (1 s) run out */
        T_RC(hsmkeys_refresh(hk), HSMKEYS_OK);
        T_RC(hsmkeys_epoch_key(hk, e + 1, name, aes, hmac), HSMKEYS_OK);
        T_EQ_INT(states(&lo, &hi), 3);
        T_EQ_INT(hi, e + 1);
    }

    T_CASE("C_CreateObject storing the state but answering CKR_GENERAL_ERROR: the stored copy is used, no error") {
        /* SoftHSM2 answers so when a racing settler destroyed the fresh
         * copy before its second write; here the copy stays, as when the
         * other process's copy is the one kept */
        hsmkeys_stats s0, s1;
        hsmkeys_get_stats(hk, &s0);
        env.fc.reset_counts();
        env.fc.fail_late("C_CreateObject", CKR_GENERAL_ERROR, 1);
        atomic_fetch_add(&clk.now, FE_EPOCH);
        e = epoch_now();
        T_RC(hsmkeys_refresh(hk), HSMKEYS_OK);
        hsmkeys_get_stats(hk, &s1);
        T_EQ_INT(env.fc.count("C_CreateObject"), 1); /* made once, not again */
        T_EQ_INT(env.fc.injected() > 0, 1);
        T_EQ_INT(s1.token_errors - s0.token_errors, 0);
        T_RC(hsmkeys_epoch_key(hk, e + 1, name, aes, hmac), HSMKEYS_OK);
        T_EQ_INT(states(&lo, &hi), 4);
        T_EQ_INT(hi, e + 1);
        env.fc.clear();
    }

    T_CASE("C_DestroyObject failing: the old state stays until the token is back, then it is erased") {
        /* four epochs on: S(e-3..) are kept, the first two states must go */
        atomic_fetch_add(&clk.now, 3 * FE_EPOCH);
        e = epoch_now();
        env.fc.fail("C_DestroyObject", CKR_DEVICE_ERROR, -1, 0);
        (void)hsmkeys_refresh(hk);
        states(&lo, &hi);
        T_TRUE(lo < e - 3);            /* not erased yet */
        T_EQ_INT(hi, e + 1);           /* the chain still moved on */
        T_RC(hsmkeys_epoch_key(hk, e, name, aes, hmac), HSMKEYS_OK);
        env.fc.clear();
        usleep(1100 * 1000);
        T_RC(hsmkeys_refresh(hk), HSMKEYS_OK);
        T_EQ_INT(states(&lo, &hi), 5);
        T_EQ_INT(lo, e - 3);
        T_EQ_INT(hi, e + 1);
    }

    hsmkeys_close(hk);
    fe_cleanup(&env);
    return t_done();
}
