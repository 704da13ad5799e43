/*
 * p11.c - PKCS#11 modules, the CKR checkpoint, tokens, sessions, HMAC.
 *
 * Layout: a process-wide list of loaded modules (hk_module), keyed by path,
 * under one mutex.  Each remembers the pid that initialised it; a child
 * after fork() finalizes and initialises again and bumps `generation`.
 *
 * Threats handled: transient failures when many server processes start at
 * once (SoftHSM2 #757: retried with backoff, never spun), a module that is
 * already initialised by someone else in the process (tolerated; then this
 * code must not finalize it), and PKCS#11 error codes leaking into callers
 * as bare numbers (every CK_RV passes through hk_p11_check).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

_Thread_local uint64_t hk_p11_thread_calls;

static pthread_mutex_t hk_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hk_module *hk_modules;

const char *hk_ckr_name(CK_RV rv)
{
    switch (rv) {
#define N(x) case x: return #x
    N(CKR_OK); N(CKR_CANCEL); N(CKR_HOST_MEMORY); N(CKR_SLOT_ID_INVALID);
    N(CKR_GENERAL_ERROR); N(CKR_FUNCTION_FAILED); N(CKR_ARGUMENTS_BAD);
    N(CKR_CANT_LOCK); N(CKR_ATTRIBUTE_READ_ONLY); N(CKR_ATTRIBUTE_SENSITIVE);
    N(CKR_ATTRIBUTE_TYPE_INVALID); N(CKR_ATTRIBUTE_VALUE_INVALID);
    N(CKR_DATA_INVALID); N(CKR_DATA_LEN_RANGE); N(CKR_DEVICE_ERROR);
    N(CKR_DEVICE_MEMORY); N(CKR_DEVICE_REMOVED); N(CKR_ENCRYPTED_DATA_INVALID);
    N(CKR_FUNCTION_CANCELED); N(CKR_FUNCTION_NOT_SUPPORTED); N(CKR_KEY_HANDLE_INVALID);
    N(CKR_KEY_SIZE_RANGE); N(CKR_KEY_TYPE_INCONSISTENT); N(CKR_KEY_FUNCTION_NOT_PERMITTED);
    N(CKR_KEY_NOT_WRAPPABLE); N(CKR_KEY_UNEXTRACTABLE); N(CKR_MECHANISM_INVALID);
    N(CKR_MECHANISM_PARAM_INVALID); N(CKR_OBJECT_HANDLE_INVALID);
    N(CKR_OPERATION_ACTIVE); N(CKR_OPERATION_NOT_INITIALIZED); N(CKR_PIN_INCORRECT);
    N(CKR_PIN_INVALID); N(CKR_PIN_LEN_RANGE); N(CKR_PIN_EXPIRED); N(CKR_PIN_LOCKED);
    N(CKR_SESSION_CLOSED); N(CKR_SESSION_COUNT); N(CKR_SESSION_HANDLE_INVALID);
    N(CKR_SESSION_READ_ONLY); N(CKR_SESSION_EXISTS); N(CKR_SIGNATURE_INVALID);
    N(CKR_TEMPLATE_INCOMPLETE); N(CKR_TEMPLATE_INCONSISTENT); N(CKR_TOKEN_NOT_PRESENT);
    N(CKR_TOKEN_NOT_RECOGNIZED); N(CKR_TOKEN_WRITE_PROTECTED);
    N(CKR_UNWRAPPING_KEY_HANDLE_INVALID); N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    N(CKR_USER_ALREADY_LOGGED_IN); N(CKR_USER_NOT_LOGGED_IN); N(CKR_USER_PIN_NOT_INITIALIZED);
    N(CKR_USER_TYPE_INVALID); N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    N(CKR_WRAPPED_KEY_INVALID); N(CKR_WRAPPED_KEY_LEN_RANGE); N(CKR_WRAPPING_KEY_HANDLE_INVALID);
    N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT); N(CKR_BUFFER_TOO_SMALL);
    N(CKR_CRYPTOKI_NOT_INITIALIZED); N(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    N(CKR_ACTION_PROHIBITED);
#undef N
    default: return "CKR_(unknown)";
    }
}

int hk_p11_check(CK_RV rv, const char *fn)
{
    int code;
    const char *hint = "";

    switch (rv) {
    case CKR_OK:
        return HSMKEYS_OK;
    case CKR_PIN_INCORRECT: case CKR_PIN_INVALID: case CKR_PIN_LEN_RANGE:
        code = HSMKEYS_E_LOGIN;
        hint = ": the PIN is wrong; check the pin-source file (each failure may count toward locking the PIN)";
        break;
    case CKR_PIN_LOCKED: case CKR_PIN_EXPIRED: case CKR_USER_PIN_NOT_INITIALIZED:
        code = HSMKEYS_E_LOGIN;
        hint = ": the security officer must reset or initialise the user PIN";
        break;
    case CKR_HOST_MEMORY:
        code = HSMKEYS_E_NOMEM;
        break;
    case CKR_USER_NOT_LOGGED_IN: case CKR_SESSION_READ_ONLY:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN: case CKR_TOKEN_WRITE_PROTECTED:
        code = HSMKEYS_E_STATE;
        break;
    case CKR_KEY_HANDLE_INVALID: case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED: case CKR_KEY_SIZE_RANGE:
    case CKR_MECHANISM_INVALID: case CKR_MECHANISM_PARAM_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
        code = HSMKEYS_E_NO_MASTER;
        hint = ": the master key cannot do HMAC-SHA256 signing (needs CKA_SIGN, 32+ bytes)";
        break;
    case CKR_ARGUMENTS_BAD: case CKR_ATTRIBUTE_READ_ONLY: case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ATTRIBUTE_TYPE_INVALID: case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCOMPLETE: case CKR_TEMPLATE_INCONSISTENT:
        code = HSMKEYS_E_INVALID;
        break;
    case CKR_TOKEN_NOT_PRESENT: case CKR_DEVICE_REMOVED:
        code = HSMKEYS_E_TOKEN;
        hint = ": the token is gone; check the HSM's connection";
        break;
    default:
        code = HSMKEYS_E_TOKEN;
        break;
    }
    return hk_fail(code, "%s failed: %s (0x%lx)%s", fn, hk_ckr_name(rv), (unsigned long)rv, hint);
}

int hk_p11_rv_is_connection_lost(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID: case CKR_SESSION_CLOSED: case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT: case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_USER_NOT_LOGGED_IN: case CKR_DEVICE_ERROR:
        return 1;
    default:
        return 0;
    }
}

int hk_p11_transient(CK_RV rv)
{
    return rv == CKR_DEVICE_ERROR || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ||
           rv == CKR_DEVICE_MEMORY || rv == CKR_CANT_LOCK || rv == CKR_SESSION_COUNT;
}

void hk_p11_backoff_sleep(int attempt)
{
    /* 10, 20, 40 ... ms, with jitter so racing processes spread out. */
    long ms = 10L << (attempt < 6 ? attempt : 6);
    struct timespec ts;
    ms += (long)((unsigned)getpid() * 7919u % 10u);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

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

static void token_label(const CK_TOKEN_INFO *ti, char *out, size_t outlen)
{
    size_t n = sizeof ti->label;
    while (n > 0 && ti->label[n - 1] == ' ')
        n--;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, ti->label, n);
    out[n] = '\0';
}

static int token_find_once(hk_module *m, const hk_uri *u, CK_SLOT_ID *slot, int *ambiguous)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_TOKEN_INFO ti;
    CK_RV rv;
    int found = 0;
    char names[256] = "", label[40];

    rv = HK_FN(m, C_GetSlotList)(CK_TRUE, NULL, &n);
    HK_TRY(hk_p11_check(rv, "C_GetSlotList"));
    if (n > 0) {
        slots = calloc(n, sizeof *slots);
        if (slots == NULL)
            return hk_fail(HSMKEYS_E_NOMEM, "out of memory listing slots");
        rv = HK_FN(m, C_GetSlotList)(CK_TRUE, slots, &n);
        if (rv != CKR_OK) {
            free(slots);
            return hk_p11_check(rv, "C_GetSlotList");
        }
    }
    for (i = 0; i < n; i++) {
        if (HK_FN(m, C_GetTokenInfo)(slots[i], &ti) != CKR_OK)
            continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        token_label(&ti, label, sizeof label);
        if (strlen(names) + strlen(label) + 4 < sizeof names)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"",
                     names[0] ? ", " : "", label);
        if (hk_uri_match_token(u, &ti)) {
            if (found++ == 0)
                *slot = slots[i];
        }
    }
    free(slots);
    *ambiguous = found > 1;
    if (found == 1)
        return HSMKEYS_OK;
    if (found > 1)
        return hk_fail(HSMKEYS_E_NO_TOKEN, "%d tokens match the URI (%s): add token=<label> "
                       "or serial=<serial> to select one", found, names);
    char hint[700];
    hk_modenv_token_hint(m->path, hint, sizeof hint);
    return hk_fail(HSMKEYS_E_NO_TOKEN, "no token matches the URI in module %s (tokens "
                   "present: %s): check token=/serial= and that the token is initialised%s",
                   m->path, names[0] ? names : "none", hint);
}

int hk_token_find(hk_module *m, const hk_uri *u, CK_SLOT_ID *slot)
{
    int rc, attempt, ambiguous = 0;
    /* SoftHSM2 can list no token, or fail C_GetTokenInfo, while another
     * process is writing the token directory (many servers starting at
     * once): look again a few times, re-reading the module if it is ours. */
    for (attempt = 0;; attempt++) {
        rc = token_find_once(m, u, slot, &ambiguous);
        if (rc == HSMKEYS_OK || ambiguous || attempt == 3 ||
            (rc != HSMKEYS_E_NO_TOKEN && rc != HSMKEYS_E_TOKEN))
            return rc;
        hk_p11_backoff_sleep(attempt + 2);
        HK_TRY(hk_module_reset_if_sole(m));
    }
}

int hk_session_open(hk_module *m, CK_SLOT_ID slot, int rw, CK_SESSION_HANDLE *out)
{
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    CK_RV rv = CKR_OK;
    int attempt;
    for (attempt = 0; attempt < HK_P11_RETRIES; attempt++) {
        rv = HK_FN(m, C_OpenSession)(slot, flags, NULL, NULL, out);
        if (!hk_p11_transient(rv))
            break;
        hk_p11_backoff_sleep(attempt);
    }
    return hk_p11_check(rv, "C_OpenSession");
}

void hk_session_close(hk_module *m, CK_SESSION_HANDLE s)
{
    if (m != NULL && s != CK_INVALID_HANDLE)
        (void)HK_FN(m, C_CloseSession)(s);
}

int hk_login(hk_module *m, CK_SESSION_HANDLE s, CK_USER_TYPE user, const hk_secret *pin)
{
    CK_RV rv = CKR_OK;
    int attempt;
    for (attempt = 0; attempt < HK_P11_RETRIES; attempt++) {
        rv = HK_FN(m, C_Login)(s, user, pin->data, pin->len);
        if (!hk_p11_transient(rv))
            break;
        hk_p11_backoff_sleep(attempt);
    }
    if (rv == CKR_USER_ALREADY_LOGGED_IN) /* tolerated: another session logged in */
        return HSMKEYS_OK;
    return hk_p11_check(rv, user == CKU_SO ? "C_Login (security officer)" : "C_Login");
}

int hk_attr_bool(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = { type, &v, sizeof v };
    if (HK_FN(m, C_GetAttributeValue)(s, o, &a, 1) != CKR_OK || a.ulValueLen != sizeof v)
        return -1;
    return v ? 1 : 0;
}

int hk_hmac_sha256(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                   const unsigned char *data, size_t len, unsigned char out[32], CK_RV *rv_out)
{
    CK_MECHANISM mech = { CKM_SHA256_HMAC, NULL, 0 };
    CK_ULONG olen = 32;
    CK_RV rv;

    rv = HK_FN(m, C_SignInit)(s, &mech, key);
    if (rv == CKR_OK) {
        rv = HK_FN(m, C_Sign)(s, (CK_BYTE_PTR)(uintptr_t)data, len, out, &olen);
        if (rv == CKR_OK && olen != 32)
            rv = CKR_FUNCTION_FAILED;
        if (rv != CKR_OK)
            hsmkeys_wipe(out, 32);
        *rv_out = rv;
        return hk_p11_check(rv, "C_Sign (HMAC-SHA256)");
    }
    *rv_out = rv;
    return hk_p11_check(rv, "C_SignInit (HMAC-SHA256)");
}
