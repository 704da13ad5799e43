/*
 * p11_module.c - the process-wide registry of loaded PKCS#11 modules and
 * their re-initialisation after fork().
 *
 * Layout: a list of hk_module, keyed by path, under one mutex.  Each
 * remembers the pid that initialised it, whether this process's
 * C_Initialize returned CKR_OK (only then may it C_Finalize), and a
 * generation bumped on every re-initialisation so contexts know to open new
 * sessions.
 *
 * Threats handled: a module already initialised by someone else in the
 * process (tolerated; then this code must not finalize it), a fork child
 * inheriting the parent's sessions, and transient C_Initialize failures
 * when many server processes start at once (retried with backoff).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "p11.h"
#include "modenv.h"

struct hk_module {
    struct hk_module *next;
    char *path;
    char *init_args;
    void *dl;
    CK_FUNCTION_LIST_PTR fns;
    unsigned refs;
    pid_t pid;           /* process that initialised it */
    unsigned generation; /* bumped on every re-initialisation */
    int we_initialized;  /* 1 only if C_Initialize returned CKR_OK in process
                          * `pid`; else never C_Finalize it (another library,
                          * e.g. libp11's engine, may hold sessions) */
};

static pthread_mutex_t hk_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hk_module *hk_modules;

static CK_RV module_initialize(struct hk_module *m)
{
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv = CKR_OK;
    int attempt;

    memset(&args, 0, sizeof args);
    /* Modules may create threads and must use OS locking: servers are threaded. */
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = m->init_args;
    for (attempt = 0; attempt < HK_P11_RETRIES; attempt++) {
        rv = HK_FN(m, C_Initialize)(&args);
        if (!hk_p11_transient(rv))
            break;
        hk_p11_backoff_sleep(attempt);
    }
    return rv;
}

int hk_module_get(const char *path, const char *init_args, hk_module **out)
{
    struct hk_module *m;
    CK_C_GetFunctionList getfl;
    CK_RV rv;
    int rc;

    *out = NULL;
    if (path == NULL || *path == '\0')
        return hk_fail(HSMKEYS_E_MODULE, "no PKCS#11 module: add module-path=<path of the "
                       "vendor's .so> to the URI or set the module option");
    pthread_mutex_lock(&hk_modules_lock);
    for (m = hk_modules; m != NULL; m = m->next) {
        if (strcmp(m->path, path) == 0) {
            /* One C_Initialize per module and process: a second set of init
             * args (another NSS database) cannot take effect. */
            if ((m->init_args == NULL) != (init_args == NULL) ||
                (init_args != NULL && strcmp(m->init_args, init_args) != 0)) {
                pthread_mutex_unlock(&hk_modules_lock);
                return hk_fail(HSMKEYS_E_MODULE, "module %s is already in use in this process "
                               "with other module-args: a module is initialised once per "
                               "process, so every context using it must give the same "
                               "module-args", path);
            }
            m->refs++;
            pthread_mutex_unlock(&hk_modules_lock);
            *out = m;
            return HSMKEYS_OK;
        }
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->path = strdup(path)) == NULL ||
        (init_args != NULL && (m->init_args = strdup(init_args)) == NULL)) {
        rc = hk_fail(HSMKEYS_E_NOMEM, "out of memory loading module");
        goto fail;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        rc = hk_fail(HSMKEYS_E_MODULE, "cannot load PKCS#11 module %s: %s; install the "
                     "module or fix module-path", path, dlerror());
        goto fail;
    }
    getfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (getfl == NULL) {
        rc = hk_fail(HSMKEYS_E_MODULE, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
        goto fail;
    }
    rv = getfl(&m->fns);
    if (rv != CKR_OK || m->fns == NULL) {
        rc = hk_fail(HSMKEYS_E_MODULE, "C_GetFunctionList of %s failed: %s", path, hk_ckr_name(rv));
        goto fail;
    }
    rv = module_initialize(m);
    if (rv == CKR_OK) {
        m->we_initialized = 1;
    } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        char hint[700];
        hk_modenv_init_hint(path, init_args, rv, hint, sizeof hint);
        rc = hk_fail(HSMKEYS_E_MODULE, "C_Initialize of %s failed: %s (0x%lx)%s", path,
                     hk_ckr_name(rv), (unsigned long)rv, hint);
        goto fail;
    }
    m->pid = getpid();
    m->refs = 1;
    m->next = hk_modules;
    hk_modules = m;
    pthread_mutex_unlock(&hk_modules_lock);
    *out = m;
    return HSMKEYS_OK;
fail:
    if (m != NULL) {
        if (m->dl != NULL)
            dlclose(m->dl);
        free(m->path);
        free(m->init_args);
        free(m);
    }
    pthread_mutex_unlock(&hk_modules_lock);
    return rc;
}

void hk_module_put(hk_module *m)
{
    struct hk_module **pp;
    if (m == NULL)
        return;
    pthread_mutex_lock(&hk_modules_lock);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&hk_modules_lock);
        return;
    }
    for (pp = &hk_modules; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&hk_modules_lock);
    if (m->we_initialized && m->pid == getpid())
        (void)HK_FN(m, C_Finalize)(NULL);
    /* Modules are not dlclose'd: some register atexit handlers or threads. */
    free(m->path);
    free(m->init_args);
    free(m);
}

CK_FUNCTION_LIST_PTR hk_module_fns(const hk_module *m) { return m->fns; }
const char *hk_module_path(const hk_module *m) { return m->path; }

int hk_module_check_fork(hk_module *m, unsigned *generation)
{
    CK_RV rv;
    pid_t me = getpid();

    if (__atomic_load_n(&m->pid, __ATOMIC_ACQUIRE) == me) {
        *generation = __atomic_load_n(&m->generation, __ATOMIC_ACQUIRE);
        return HSMKEYS_OK;
    }
    pthread_mutex_lock(&hk_modules_lock);
    if (m->pid != me) {
        /* PKCS#11 asks a child to call C_Initialize.  Modules that reset
         * themselves in a child answer CKR_OK: the module is then ours in
         * this process.  A module that kept its state across fork (SoftHSM2
         * does) answers ALREADY_INITIALIZED: it is not ours then (libp11's
         * engine, holding the server's private key, may use it too) and is
         * never finalized by this process; new sessions of our own are
         * enough.  Anything else is an error: finalizing a module this
         * process did not initialize could close another library's
         * sessions. */
        rv = module_initialize(m);
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            pthread_mutex_unlock(&hk_modules_lock);
            return hk_fail(HSMKEYS_E_MODULE, "re-initialising %s after fork failed: %s",
                           m->path, hk_ckr_name(rv));
        }
        m->we_initialized = rv == CKR_OK;
        __atomic_add_fetch(&m->generation, 1, __ATOMIC_ACQ_REL);
        __atomic_store_n(&m->pid, me, __ATOMIC_RELEASE);
    }
    *generation = m->generation;
    pthread_mutex_unlock(&hk_modules_lock);
    return HSMKEYS_OK;
}

int hk_module_reset_if_sole(hk_module *m)
{
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&hk_modules_lock);
    /* Only a module this process initialised itself, with CKR_OK (see
     * hk_module_check_fork): else another library may hold sessions. */
    if (m->refs == 1 && m->we_initialized && m->pid == getpid()) {
        (void)HK_FN(m, C_Finalize)(NULL);
        rv = module_initialize(m);
        __atomic_add_fetch(&m->generation, 1, __ATOMIC_ACQ_REL);
    }
    pthread_mutex_unlock(&hk_modules_lock);
    if (rv != CKR_OK)
        return hk_fail(HSMKEYS_E_MODULE, "re-initialising %s failed: %s", m->path,
                       hk_ckr_name(rv));
    return HSMKEYS_OK;
}
