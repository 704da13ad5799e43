/*
 * openfail_test.c - token failures while a context opens (C_Initialize,
 * C_OpenSession, C_Login, C_FindObjectsInit) give a clear error naming the
 * PKCS#11 function and code; transient ones (SoftHSMv2 #757) are retried a
 * bounded number of times; a refused PIN is never retried (that would lock
 * the token's PIN).
 */
#include <stdio.h>
#include <string.h>
#include "test.h"
#include "p11.h"
#include "fault_env.h"

static fe_env env;
static fe_clock clk = { FE_T0 };

/* Open expecting failure `want`; the message must name fn and ckr. */
static void open_fails(int want, const char *fn, const char *ckr)
{
    hsmkeys_ctx *ctx = NULL;
    int rc = fe_open(&env, &clk, &ctx);
    T_EQ_INT(rc, want);
    T_TRUE(ctx == NULL);
    T_CONTAINS(hsmkeys_last_error(), fn);
    T_CONTAINS(hsmkeys_last_error(), ckr);
    printf("# %s: %s\n", hsmkeys_result_name(rc), hsmkeys_last_error());
    hsmkeys_close(ctx);
}

static int open_ok(void)
{
    hsmkeys_ctx *ctx = NULL;
    int rc = fe_open(&env, &clk, &ctx);
    if (rc != HSMKEYS_OK)
        printf("# open: %s\n", hsmkeys_last_error());
    hsmkeys_close(ctx);
    return rc;
}

int main(void)
{
    if (fe_setup(&env) != 0) {
        printf("not ok 1 - set-up: token, master and fault module\n");
        return 1;
    }

    /* First: the module is not initialised yet in this process. */
    T_CASE("C_Initialize fails for good (CKR_DEVICE_ERROR): E_MODULE, bounded retries") {
        env.fc.reset_counts();
        env.fc.fail("C_Initialize", CKR_DEVICE_ERROR, -1, 0);
        open_fails(HSMKEYS_E_MODULE, "C_Initialize", "CKR_DEVICE_ERROR");
        printf("# C_Initialize calls: %lu\n", env.fc.count("C_Initialize"));
        T_TRUE(env.fc.count("C_Initialize") >= 2);
        T_TRUE(env.fc.count("C_Initialize") <= HK_P11_RETRIES + 1);
        env.fc.clear();
    }

    T_CASE("C_Initialize fails twice (SoftHSMv2 #757): retried, open succeeds") {
        env.fc.fail("C_Initialize", CKR_DEVICE_ERROR, 2, 0);
        T_RC(open_ok(), HSMKEYS_OK);
        env.fc.clear();
    }

    T_CASE("C_OpenSession fails (CKR_TOKEN_NOT_PRESENT): clear error, no context") {
        env.fc.fail("C_OpenSession", CKR_TOKEN_NOT_PRESENT, -1, 0);
        open_fails(HSMKEYS_E_TOKEN, "C_OpenSession", "CKR_TOKEN_NOT_PRESENT");
        env.fc.clear();
    }

    T_CASE("C_Login refuses the PIN (CKR_PIN_INCORRECT): E_LOGIN after exactly one attempt") {
        env.fc.reset_counts();
        env.fc.fail("C_Login", CKR_PIN_INCORRECT, -1, 0);
        open_fails(HSMKEYS_E_LOGIN, "C_Login", "CKR_PIN_INCORRECT");
        T_EQ_INT(env.fc.count("C_Login"), 1);
        env.fc.clear();
    }

    T_CASE("C_Login fails for good (CKR_DEVICE_ERROR): E_TOKEN, bounded retries") {
        env.fc.reset_counts();
        env.fc.fail("C_Login", CKR_DEVICE_ERROR, -1, 0);
        open_fails(HSMKEYS_E_TOKEN, "C_Login", "CKR_DEVICE_ERROR");
        printf("# C_Login calls: %lu\n", env.fc.count("C_Login"));
        T_TRUE(env.fc.count("C_Login") >= 2);
        T_TRUE(env.fc.count("C_Login") <= HK_P11_RETRIES + 1);
        env.fc.clear();
    }

    T_CASE("C_Login fails twice (SoftHSMv2 #757): retried, open succeeds") {
        env.fc.fail("C_Login", CKR_DEVICE_ERROR, 2, 0);
        T_RC(open_ok(), HSMKEYS_OK);
        env.fc.clear();
    }

    T_CASE("C_FindObjectsInit fails (CKR_DEVICE_REMOVED): clear error, no context") {
        env.fc.fail("C_FindObjectsInit", CKR_DEVICE_REMOVED, -1, 0);
        open_fails(HSMKEYS_E_TOKEN, "C_FindObjectsInit", "CKR_DEVICE_REMOVED");
        env.fc.clear();
    }

    T_CASE("C_Sign fails during the first derivation (CKR_DEVICE_ERROR): open reports it") {
        hsmkeys_ctx *ctx = NULL;
        env.fc.fail("C_Sign", CKR_DEVICE_ERROR, -1, 0);
        int rc = fe_open(&env, &clk, &ctx);
        /* Either open refuses (no key at all) or it opens and issues none. */
        if (rc == HSMKEYS_OK) {
            unsigned char n[16], a[32], h[32];
            T_RC(hsmkeys_encrypt_key(ctx, n, a, h), HSMKEYS_E_UNAVAILABLE);
        } else {
            T_EQ_INT(rc, HSMKEYS_E_TOKEN);
            T_CONTAINS(hsmkeys_last_error(), "C_Sign");
        }
        hsmkeys_close(ctx);
        env.fc.clear();
    }

    T_CASE("after all these failures a clean open works") {
        T_RC(open_ok(), HSMKEYS_OK);
    }

    fe_cleanup(&env);
    return t_done();
}
