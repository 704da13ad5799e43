/*
 * fuzz_env.c - the fuzz targets' token and context (see fuzz_env.h).
 * Tests only; the test PIN sits in a 0600 throwaway file.
 */
#include "fuzz_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "softhsm.h"

static fz_env env;
static t_hsm hsm;

static int64_t fz_clock(void *arg)
{
    (void)arg;
    return FZ_NOW;
}

static void fz_log(void *arg, int level, const char *msg)
{
    (void)arg; (void)level; (void)msg;
}

static void fz_cleanup(void)
{
    hsmkeys_close(env.ctx);
    env.ctx = NULL;
    t_hsm_cleanup(&hsm);
}

void fz_check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz invariant broken: %s\n", what);
        abort();
    }
}

fz_env *fz_env_get(void)
{
    unsigned char master[32], name[16], aes[32], hmac[32];
    t_master_opts o = { 0 };
    hsmkeys_config *cfg = NULL;
    char uri[1024];

    if (env.ctx)
        return &env;
    fz_check(t_hsm_setup(&hsm) == 0, "temp SoftHSM2 dir");
    fz_check(t_token_init(T_SOFTHSM_MODULE, "fuzz", T_SO_PIN, T_USER_PIN) == 0, "token init");
    t_master_from_seed("fuzz", master);
    fz_check(t_master_import(T_SOFTHSM_MODULE, "fuzz", T_USER_PIN, master, 32, &o) == 0,
             "master import");
    hsmkeys_wipe(master, sizeof master);
    t_uri(uri, sizeof uri, "fuzz", hsm.pin_file);
    fz_check(hsmkeys_config_new(&cfg) == HSMKEYS_OK, "config");
    fz_check(hsmkeys_config_set(cfg, "uri", uri) == HSMKEYS_OK, "uri");
    fz_check(hsmkeys_config_set(cfg, "domain", "fuzz.test") == HSMKEYS_OK, "domain");
    fz_check(hsmkeys_config_set(cfg, "epoch", "1h") == HSMKEYS_OK, "epoch");
    fz_check(hsmkeys_config_set(cfg, "lifetime", "3h") == HSMKEYS_OK, "lifetime");
    hsmkeys_config_set_clock(cfg, fz_clock, NULL);
    hsmkeys_config_set_log(cfg, fz_log, NULL);
    if (hsmkeys_open(cfg, &env.ctx) != HSMKEYS_OK) {
        fprintf(stderr, "hsmkeys_open: %s\n", hsmkeys_last_error());
        abort();
    }
    hsmkeys_config_free(cfg);
    env.epoch = hsmkeys_current_epoch(env.ctx);
    env.window = hsmkeys_window_past(env.ctx);
    fz_check(hsmkeys_epoch_key(env.ctx, env.epoch, name, aes, hmac) == HSMKEYS_OK, "epoch key");
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    memcpy(env.tag, name + 1, 9);
    atexit(fz_cleanup);
    return &env;
}
