/*
 * fault_env.h - the common set-up of the fault tests: a throwaway SoftHSM2
 * token "fleet" with the known test master, contexts opened through the
 * fault module with an injected clock, and the fault module's control API.
 */
#ifndef HSMKEYS_FAULT_ENV_H
#define HSMKEYS_FAULT_ENV_H

#include <stdatomic.h>
#include <stdint.h>
#include <p11-kit/pkcs11.h>
#include <hsmkeys/hsmkeys.h>
#include "softhsm.h"
#include "../faultmod/faultctl.h"

#define FE_TOKEN  "fleet"
#define FE_DOMAIN "fault.test"
#define FE_EPOCH  60
#define FE_LIFETIME 120
/* A start time well inside epoch FE_T0 / FE_EPOCH. */
#define FE_T0 ((int64_t)1700000000 / FE_EPOCH * FE_EPOCH + 1)

typedef struct fe_clock {
    _Atomic int64_t now;
} fe_clock;

typedef struct fe_env {
    t_hsm hsm;
    struct faultctl fc;
    unsigned char tag[9]; /* the fleet's key-name tag, learnt at warm-up */
} fe_env;

/* Token, master, fault module; 0 on success (prints why on failure). */
int fe_setup(fe_env *e);
void fe_cleanup(fe_env *e);

/* Open a context through the fault module with clock `c`.  Returns the
 * hsmkeys code; log lines go to stderr (the test log). */
int fe_open(const fe_env *e, fe_clock *c, hsmkeys_ctx **out);
/* The same, in the forward-erasable mode when forward_erasable is 1. */
int fe_open_fe(const fe_env *e, fe_clock *c, int forward_erasable, hsmkeys_ctx **out);

#endif
