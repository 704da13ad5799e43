/*
 * fault_env.c - set-up shared by the fault tests (see fault_env.h).
 * Tests only; the PIN lives in a 0600 throwaway file, never in argv or env.
 */
#include "fault_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fe_setup(fe_env *e)
{
    unsigned char master[32];
    t_master_opts o = { 0 };
    int rc;
    memset(e, 0, sizeof *e);
    if (t_hsm_setup(&e->hsm) != 0)
        return -1;
    setenv("HSMKEYS_FAULT_REAL_MODULE", T_SOFTHSM_MODULE, 1);
    if (t_token_init(T_SOFTHSM_MODULE, FE_TOKEN, T_SO_PIN, T_USER_PIN) != 0)
        return -1;
    t_master_from_seed(FE_TOKEN, master);
    rc = t_master_import(T_SOFTHSM_MODULE, FE_TOKEN, T_USER_PIN, master, sizeof master, &o);
    hsmkeys_wipe(master, sizeof master);
    if (rc != 0)
        return -1;
    return faultctl_load(&e->fc);
}

void fe_cleanup(fe_env *e)
{
    t_hsm_cleanup(&e->hsm);
}

static int64_t fe_now(void *arg)
{
    return atomic_load(&((fe_clock *)arg)->now);
}

int fe_open(const fe_env *e, fe_clock *c, hsmkeys_ctx **out)
{
    return fe_open_fe(e, c, 0, out);
}

int fe_open_fe(const fe_env *e, fe_clock *c, int forward_erasable, hsmkeys_ctx **out)
{
    hsmkeys_config *cfg = NULL;
    char uri[1024];
    int rc;
    *out = NULL;
    t_uri(uri, sizeof uri, FE_TOKEN, e->hsm.pin_file);
    rc = hsmkeys_config_new(&cfg);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(cfg, "uri", uri);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(cfg, "module", faultctl_path());
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(cfg, "domain", FE_DOMAIN);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(cfg, "epoch", "60s");
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(cfg, "lifetime", "120s");
    if (rc == HSMKEYS_OK && forward_erasable)
        rc = hsmkeys_config_set(cfg, "forward-erasable", "yes");
    if (rc == HSMKEYS_OK) {
        hsmkeys_config_set_clock(cfg, fe_now, c);
        rc = hsmkeys_open(cfg, out);
    }
    hsmkeys_config_free(cfg);
    return rc;
}
