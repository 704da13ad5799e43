/*
 * rules.c - the fault module's rule engine: per-function call counters,
 * fail and stall rules, the control file and the counts file (see faultmod.h).
 *
 * Layout: one table of FM_N + 1 slots (the last is "*"), each with a fail
 * rule {rv, count, skip}, a late-fail rule {rv, count} (the call reaches the
 * real module, its answer is replaced) and a stall rule {ms, count};
 * counters are atomics.
 * One mutex guards the rules; stalls wait on a condition variable outside any
 * other lock, so a held call never blocks calls of other threads that are not
 * themselves stalled.
 *
 * Threat handled: none in production (tests only); it must itself be thread
 * safe so that it does not serialise the threads whose concurrency is tested.
 */
#include "fm.h"
#include "faultmod.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FM_EXPORT __attribute__((visibility("default")))
#define FM_ALL FM_N /* the "*" slot */

struct fm_rule {
    int fail_on;
    CK_RV fail_rv;
    long fail_count, fail_skip; /* count < 0: until cleared */
    int late_on;
    CK_RV late_rv;
    long late_count;
    int stall_on;
    unsigned stall_ms;
    long stall_count;
};

static const char *const fm_names[FM_N] = {
    "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetSlotList",
    "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList",
    "C_GetMechanismInfo", "C_InitToken", "C_InitPIN", "C_OpenSession",
    "C_CloseSession", "C_CloseAllSessions", "C_GetSessionInfo", "C_Login",
    "C_Logout", "C_CreateObject", "C_DestroyObject", "C_GetAttributeValue",
    "C_SetAttributeValue", "C_FindObjectsInit", "C_FindObjects",
    "C_FindObjectsFinal", "C_SignInit", "C_Sign", "C_SignUpdate",
    "C_SignFinal", "C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey",
    "C_UnwrapKey", "C_DeriveKey", "C_GenerateRandom",
};

static pthread_mutex_t fm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fm_wake = PTHREAD_COND_INITIALIZER;
static unsigned long fm_release_gen;    /* bumped by release/clear */
static struct fm_rule fm_rules[FM_N + 1];
static atomic_ulong fm_counts[FM_N];
static atomic_ulong fm_injected;
static atomic_int fm_stalled;
/* identity of the control file last read */
static struct timespec fm_ctl_mtime;
static ino_t fm_ctl_ino;
static off_t fm_ctl_size;
static int fm_ctl_seen;

const char *fm_fn_name(enum fm_fn fn)
{
    return fn < FM_N ? fm_names[fn] : "*";
}

int fm_fn_index(const char *name)
{
    if (!strcmp(name, "*"))
        return FM_ALL;
    for (int i = 0; i < FM_N; i++)
        if (!strcmp(name, fm_names[i]))
            return i;
    return -1;
}

static const struct { const char *name; CK_RV rv; } fm_ckrs[] = {
    { "CKR_OK", CKR_OK },
    { "CKR_HOST_MEMORY", CKR_HOST_MEMORY },
    { "CKR_GENERAL_ERROR", CKR_GENERAL_ERROR },
    { "CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED },
    { "CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD },
    { "CKR_CANT_LOCK", CKR_CANT_LOCK },
    { "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
    { "CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY },
    { "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
    { "CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID },
    { "CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID },
    { "CKR_OPERATION_ACTIVE", CKR_OPERATION_ACTIVE },
    { "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT },
    { "CKR_PIN_LOCKED", CKR_PIN_LOCKED },
    { "CKR_SESSION_CLOSED", CKR_SESSION_CLOSED },
    { "CKR_SESSION_COUNT", CKR_SESSION_COUNT },
    { "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
    { "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
    { "CKR_TOKEN_NOT_RECOGNIZED", CKR_TOKEN_NOT_RECOGNIZED },
    { "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
    { "CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED },
};

static int fm_parse_ckr(const char *s, CK_RV *rv)
{
    char *end;
    for (size_t i = 0; i < sizeof fm_ckrs / sizeof fm_ckrs[0]; i++)
        if (!strcmp(s, fm_ckrs[i].name)) {
            *rv = fm_ckrs[i].rv;
            return 0;
        }
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *rv = v;
    return 0;
}

/* Parse one control line into the table; malformed lines are reported on
 * stderr and ignored. */
static void fm_parse_line(char *line, struct fm_rule *rules)
{
    char *save = NULL, *f[6] = { 0 };
    int n = 0;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 6;
         t = strtok_r(NULL, " \t\r\n", &save))
        f[n++] = t;
    if (n == 0)
        return;
    int idx = n >= 2 ? fm_fn_index(f[0]) : -1;
    if (idx >= 0 && !strcmp(f[1], "fail") && n >= 3) {
        CK_RV rv;
        if (fm_parse_ckr(f[2], &rv) == 0) {
            rules[idx].fail_on = 1;
            rules[idx].fail_rv = rv;
            rules[idx].fail_count = n >= 4 ? strtol(f[3], NULL, 10) : -1;
            rules[idx].fail_skip = (n >= 6 && !strcmp(f[4], "after"))
                                       ? strtol(f[5], NULL, 10) : 0;
            return;
        }
    } else if (idx >= 0 && !strcmp(f[1], "fail-late") && n >= 3) {
        CK_RV rv;
        if (fm_parse_ckr(f[2], &rv) == 0) {
            rules[idx].late_on = 1;
            rules[idx].late_rv = rv;
            rules[idx].late_count = n >= 4 ? strtol(f[3], NULL, 10) : -1;
            return;
        }
    } else if (idx >= 0 && !strcmp(f[1], "stall") && n >= 3) {
        rules[idx].stall_on = 1;
        rules[idx].stall_ms = (unsigned)strtoul(f[2], NULL, 10);
        rules[idx].stall_count = n >= 4 ? strtol(f[3], NULL, 10) : -1;
        return;
    }
    fprintf(stderr, "hsmkeys-faultmod: ignored control line starting \"%s\"\n", f[0]);
}

/* Re-read the control file if it changed.  Called with fm_lock held. */
static void fm_reload_locked(void)
{
    const char *path = getenv("HSMKEYS_FAULT_CONTROL");
    struct stat st;
    if (!path || !*path || stat(path, &st) != 0)
        return;
    if (fm_ctl_seen && st.st_ino == fm_ctl_ino && st.st_size == fm_ctl_size &&
        st.st_mtim.tv_sec == fm_ctl_mtime.tv_sec &&
        st.st_mtim.tv_nsec == fm_ctl_mtime.tv_nsec)
        return;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    fm_ctl_seen = 1;
    fm_ctl_ino = st.st_ino;
    fm_ctl_size = st.st_size;
    fm_ctl_mtime = st.st_mtim;
    memset(fm_rules, 0, sizeof fm_rules);
    char line[256];
    while (fgets(line, sizeof line, fp))
        fm_parse_line(line, fm_rules);
    fclose(fp);
    fm_release_gen++;
    pthread_cond_broadcast(&fm_wake);
}

/* Write the counts file, if asked for, atomically (write + rename). */
static void fm_write_counts(void)
{
    const char *tmpl = getenv("HSMKEYS_FAULT_COUNTS");
    char path[512], tmp[530];
    if (!tmpl || !*tmpl)
        return;
    const char *p = strstr(tmpl, "%p");
    if (p)
        snprintf(path, sizeof path, "%.*s%ld%s", (int)(p - tmpl), tmpl,
                 (long)getpid(), p + 2);
    else
        snprintf(path, sizeof path, "%s", tmpl);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)gettid());
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return;
    unsigned long total = 0;
    for (int i = 0; i < FM_N; i++) {
        unsigned long c = atomic_load(&fm_counts[i]);
        total += c;
        if (c)
            fprintf(fp, "%s %lu\n", fm_names[i], c);
    }
    fprintf(fp, "total %lu\ninjected %lu\n", total, atomic_load(&fm_injected));
    if (fclose(fp) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* Take one unit of a counted rule: returns 1 if the rule applies now. */
static int fm_take(long *count, long *skip)
{
    if (skip && *skip > 0) {
        (*skip)--;
        return 0;
    }
    if (*count == 0)
        return 0;
    if (*count > 0)
        (*count)--;
    return 1;
}

static void fm_stall(unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    atomic_fetch_add(&fm_stalled, 1);
    unsigned long gen = fm_release_gen;
    while (gen == fm_release_gen) {
        if (pthread_cond_timedwait(&fm_wake, &fm_lock, &until) == ETIMEDOUT)
            break;
    }
    atomic_fetch_sub(&fm_stalled, 1);
}

int fm_enter(enum fm_fn fn, CK_RV *rv)
{
    int fail = 0;
    atomic_fetch_add(&fm_counts[fn], 1);
    pthread_mutex_lock(&fm_lock);
    fm_reload_locked();
    struct fm_rule *r = &fm_rules[fn];
    struct fm_rule *all = &fm_rules[FM_ALL];
    struct fm_rule *st = r->stall_on ? r : all->stall_on ? all : NULL;
    if (st && fm_take(&st->stall_count, NULL))
        fm_stall(st->stall_ms); /* drops fm_lock while waiting */
    struct fm_rule *fl = r->fail_on ? r : all->fail_on ? all : NULL;
    if (fl && fm_take(&fl->fail_count, &fl->fail_skip)) {
        fail = 1;
        *rv = fl->fail_rv;
        atomic_fetch_add(&fm_injected, 1);
    }
    pthread_mutex_unlock(&fm_lock);
    fm_write_counts();
    return fail;
}

CK_RV fm_leave(enum fm_fn fn, CK_RV real_rv)
{
    CK_RV rv = real_rv;
    pthread_mutex_lock(&fm_lock);
    struct fm_rule *r = &fm_rules[fn];
    struct fm_rule *all = &fm_rules[FM_ALL];
    struct fm_rule *lt = r->late_on ? r : all->late_on ? all : NULL;
    if (lt && fm_take(&lt->late_count, NULL)) {
        rv = lt->late_rv;
        atomic_fetch_add(&fm_injected, 1);
    }
    pthread_mutex_unlock(&fm_lock);
    return rv;
}

/* ---- control API (faultmod.h) ---------------------------------------------- */

FM_EXPORT int hkfault_fail(const char *fn, unsigned long rv, long count, long skip)
{
    int idx = fm_fn_index(fn);
    if (idx < 0)
        return -1;
    pthread_mutex_lock(&fm_lock);
    fm_rules[idx].fail_on = 1;
    fm_rules[idx].fail_rv = rv;
    fm_rules[idx].fail_count = count;
    fm_rules[idx].fail_skip = skip;
    pthread_mutex_unlock(&fm_lock);
    return 0;
}

FM_EXPORT int hkfault_fail_late(const char *fn, unsigned long rv, long count)
{
    int idx = fm_fn_index(fn);
    if (idx < 0)
        return -1;
    pthread_mutex_lock(&fm_lock);
    fm_rules[idx].late_on = 1;
    fm_rules[idx].late_rv = rv;
    fm_rules[idx].late_count = count;
    pthread_mutex_unlock(&fm_lock);
    return 0;
}

FM_EXPORT int hkfault_stall(const char *fn, unsigned ms, long count)
{
    int idx = fm_fn_index(fn);
    if (idx < 0)
        return -1;
    pthread_mutex_lock(&fm_lock);
    fm_rules[idx].stall_on = 1;
    fm_rules[idx].stall_ms = ms;
    fm_rules[idx].stall_count = count;
    pthread_mutex_unlock(&fm_lock);
    return 0;
}

FM_EXPORT void hkfault_release(void)
{
    pthread_mutex_lock(&fm_lock);
    fm_release_gen++;
    pthread_cond_broadcast(&fm_wake);
    pthread_mutex_unlock(&fm_lock);
}

FM_EXPORT void hkfault_clear(void)
{
    pthread_mutex_lock(&fm_lock);
    memset(fm_rules, 0, sizeof fm_rules);
    fm_release_gen++;
    pthread_cond_broadcast(&fm_wake);
    pthread_mutex_unlock(&fm_lock);
}

FM_EXPORT unsigned long hkfault_count(const char *fn)
{
    int idx = fm_fn_index(fn);
    unsigned long total = 0;
    if (idx < 0)
        return 0;
    if (idx != FM_ALL)
        return atomic_load(&fm_counts[idx]);
    for (int i = 0; i < FM_N; i++)
        total += atomic_load(&fm_counts[i]);
    return total;
}

FM_EXPORT unsigned long hkfault_injected(void)
{
    return atomic_load(&fm_injected);
}

FM_EXPORT int hkfault_stalled_now(void)
{
    return atomic_load(&fm_stalled);
}

FM_EXPORT void hkfault_reset_counts(void)
{
    for (int i = 0; i < FM_N; i++)
        atomic_store(&fm_counts[i], 0);
    atomic_store(&fm_injected, 0);
}
