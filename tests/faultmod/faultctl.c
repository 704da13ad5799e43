/*
 * faultctl.c - load the fault module's control API by dlsym (faultctl.h).
 * Tests only; it handles no threat.
 */
#include "faultctl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

const char *faultctl_path(void)
{
    static char buf[1024];
    const char *p = getenv("HSMKEYS_FAULTMOD");
    if (p && *p)
        return p;
    p = getenv("HSMKEYS_BUILD");
    snprintf(buf, sizeof buf, "%s/tests/libhsmkeys-faultmod.so", p && *p ? p : "build");
    return buf;
}

static void *faultctl_sym(void *h, const char *name, int *bad)
{
    void *f = dlsym(h, name);
    if (!f) {
        fprintf(stderr, "faultctl: %s missing in %s\n", name, faultctl_path());
        *bad = 1;
    }
    return f;
}

int faultctl_load(struct faultctl *fc)
{
    int bad = 0;
    void *h = dlopen(faultctl_path(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "faultctl: %s\n", dlerror());
        return -1;
    }
    /* POSIX allows object <-> function pointer conversion through dlsym. */
    *(void **)&fc->fail = faultctl_sym(h, "hkfault_fail", &bad);
    *(void **)&fc->fail_late = faultctl_sym(h, "hkfault_fail_late", &bad);
    *(void **)&fc->stall = faultctl_sym(h, "hkfault_stall", &bad);
    *(void **)&fc->clear = faultctl_sym(h, "hkfault_clear", &bad);
    *(void **)&fc->release = faultctl_sym(h, "hkfault_release", &bad);
    *(void **)&fc->count = faultctl_sym(h, "hkfault_count", &bad);
    *(void **)&fc->injected = faultctl_sym(h, "hkfault_injected", &bad);
    *(void **)&fc->stalled_now = faultctl_sym(h, "hkfault_stalled_now", &bad);
    *(void **)&fc->reset_counts = faultctl_sym(h, "hkfault_reset_counts", &bad);
    return bad ? -1 : 0;
}
