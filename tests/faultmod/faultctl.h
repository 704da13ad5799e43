/*
 * faultctl.h - reach the fault module's control API (faultmod.h) from a test
 * that loads libhsmkeys through it in the same process.
 *
 * faultctl_load() dlopens the module by the same path libhsmkeys uses, so
 * both share one copy of the module and its rules.  The path comes from
 * HSMKEYS_FAULTMOD (set by the test) or the build's default.
 */
#ifndef HSMKEYS_FAULTCTL_H
#define HSMKEYS_FAULTCTL_H

struct faultctl {
    int (*fail)(const char *fn, unsigned long rv, long count, long skip);
    int (*fail_late)(const char *fn, unsigned long rv, long count);
    int (*stall)(const char *fn, unsigned ms, long count);
    void (*clear)(void);
    void (*release)(void);
    unsigned long (*count)(const char *fn);
    unsigned long (*injected)(void);
    int (*stalled_now)(void);
    void (*reset_counts)(void);
};

/* Path of the fault module: $HSMKEYS_FAULTMOD, else $HSMKEYS_BUILD/tests/...,
 * else build/tests/libhsmkeys-faultmod.so. */
const char *faultctl_path(void);

/* Fill fc; returns 0, or -1 with a message on stderr. */
int faultctl_load(struct faultctl *fc);

#endif
