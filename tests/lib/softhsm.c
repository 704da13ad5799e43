/* softhsm.c - throwaway SoftHSM2 tokens for tests (see softhsm.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include "softhsm.h"
#include "pin.h"
#include "p11.h"
#include "master.h"
#include "chain.h"

int t_write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(content);
    if (fd < 0 || write(fd, content, n) != (ssize_t)n) {
        perror(path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fchmod(fd, mode);
    close(fd);
    return 0;
}

int t_hsm_setup(t_hsm *h)
{
    char tokens[300], conf[700];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(h->dir, sizeof h->dir, "%s/hsmkeys-test-XXXXXX", tmp);
    if (mkdtemp(h->dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(tokens, sizeof tokens, "%s/tokens", h->dir);
    mkdir(tokens, 0700);
    snprintf(h->conf, sizeof h->conf, "%s/softhsm2.conf", h->dir);
    snprintf(conf, sizeof conf, "directories.tokendir = %s\nobjectstore.backend = file\n"
             "log.level = ERROR\nslots.removable = false\n", tokens);
    if (t_write_file(h->conf, conf, 0600) != 0)
        return -1;
    snprintf(h->pin_file, sizeof h->pin_file, "%s/pin", h->dir);
    snprintf(h->so_pin_file, sizeof h->so_pin_file, "%s/so-pin", h->dir);
    if (t_write_file(h->pin_file, T_USER_PIN, 0600) || t_write_file(h->so_pin_file, T_SO_PIN, 0600))
        return -1;
    setenv("SOFTHSM2_CONF", h->conf, 1);
    return 0;
}

int t_hsm_reset_on_fork(const t_hsm *h)
{
    FILE *f = fopen(h->conf, "a");
    int ok = f != NULL && fputs("library.reset_on_fork = true\n", f) >= 0;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

void t_hsm_cleanup(t_hsm *h)
{
    char cmd[400];
    if (h->dir[0] == '\0' || strstr(h->dir, "hsmkeys-test-") == NULL)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", h->dir);
}

static int pad_label(const char *label, CK_UTF8CHAR out[32])
{
    size_t n = strlen(label);
    if (n > 32)
        return -1;
    memset(out, ' ', 32);
    memcpy(out, label, n);
    return 0;
}

int t_token_init(const char *module, const char *label, const char *so_pin, const char *pin)
{
    hk_module *m = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    CK_UTF8CHAR lab[32];
    CK_SESSION_HANDLE s;
    CK_RV rv;
    int done = -1;

    if (hk_module_get(module, NULL, &m) != HSMKEYS_OK) {
        fprintf(stderr, "t_token_init: %s\n", hsmkeys_last_error());
        return -1;
    }
    f = hk_module_fns(m);
    if (f->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK || pad_label(label, lab))
        goto out;
    for (i = 0; i < n; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || (ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        rv = f->C_InitToken(slots[i], (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), lab);
        if (rv != CKR_OK) {
            fprintf(stderr, "C_InitToken: %s\n", hk_ckr_name(rv));
            goto out;
        }
        /* SoftHSM2 moves the new token to another slot id: find it by label. */
        n = 64;
        if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
            goto out;
        for (i = 0; i < n; i++) {
            if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, lab, 32))
                break;
        }
        if (i == n)
            goto out;
        if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
            goto out;
        rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
        if (rv == CKR_OK)
            rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
        (void)f->C_Logout(s);
        (void)f->C_CloseSession(s);
        if (rv != CKR_OK) {
            fprintf(stderr, "C_InitPIN: %s\n", hk_ckr_name(rv));
            goto out;
        }
        done = 0;
        break;
    }
out:
    if (done != 0)
        fprintf(stderr, "t_token_init(%s) failed\n", label);
    hk_module_put(m);
    return done;
}

void t_master_from_seed(const char *seed, unsigned char out[32])
{
    char buf[300];
    size_t n = (size_t)snprintf(buf, sizeof buf, "hsmkeys test master:%s", seed);
    EVP_Digest(buf, n < sizeof buf ? n : sizeof buf - 1, out, NULL, EVP_sha256(), NULL);
}

static int find_token(CK_FUNCTION_LIST_PTR f, const char *token, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    CK_UTF8CHAR lab[32];
    if (pad_label(token, lab) || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    for (i = 0; i < n; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, lab, 32)) {
            *slot = slots[i];
            return 0;
        }
    }
    return -1;
}

int t_master_import(const char *module, const char *token, const char *pin,
                    const unsigned char *value, size_t len, const t_master_opts *o)
{
    hk_module *m = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL sens = o->not_sensitive ? CK_FALSE : CK_TRUE;
    CK_BBOOL extr = o->extractable ? CK_TRUE : CK_FALSE;
    CK_BBOOL wwt = o->wrap_with_trusted ? CK_TRUE : CK_FALSE;
    /* As hsmkeys-tool makes them: only a clonable master can change later. */
    CK_BBOOL chg = o->modifiable || o->extractable ? CK_TRUE : CK_FALSE;
    unsigned char id[HK_MASTER_ID_LEN];
    const char *label = o->label ? o->label : "hsmkeys-master";
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    int ok = -1;

    hk_master_id_encode(o->generation ? o->generation : 1, o->activation, id);
    if (o->vendor_id)
        memcpy(id, "vendor-key-0001", HK_MASTER_ID_LEN);
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
        { CKA_TOKEN, &yes, sizeof yes }, { CKA_PRIVATE, &yes, sizeof yes },
        { CKA_SENSITIVE, &sens, sizeof sens }, { CKA_EXTRACTABLE, &extr, sizeof extr },
        { CKA_WRAP_WITH_TRUSTED, &wwt, sizeof wwt },
        { CKA_SIGN, &yes, sizeof yes }, { CKA_VERIFY, &no, sizeof no },
        { CKA_DERIVE, &no, sizeof no }, { CKA_ENCRYPT, &no, sizeof no },
        { CKA_DECRYPT, &no, sizeof no }, { CKA_WRAP, &no, sizeof no },
        { CKA_UNWRAP, &no, sizeof no },
        { CKA_MODIFIABLE, &chg, sizeof chg }, { CKA_COPYABLE, &chg, sizeof chg },
        { CKA_LABEL, (void *)(uintptr_t)label, strlen(label) }, { CKA_ID, id, sizeof id },
        { CKA_VALUE, (void *)(uintptr_t)value, len },
    };
    if (hk_module_get(module, NULL, &m) != HSMKEYS_OK)
        return -1;
    f = hk_module_fns(m);
    if (find_token(f, token, &slot) != 0) {
        fprintf(stderr, "t_master_import: no token %s\n", token);
        goto out;
    }
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
        goto out;
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = f->C_CreateObject(s, t, sizeof t / sizeof t[0], &h);
    if (rv != CKR_OK)
        fprintf(stderr, "t_master_import: %s\n", hk_ckr_name(rv));
    else
        ok = 0;
    (void)f->C_CloseSession(s);
out:
    hk_module_put(m);
    return ok;
}

void t_uri(char *out, size_t len, const char *token, const char *pin_file)
{
    snprintf(out, len, "pkcs11:token=%s;object=hsmkeys-master?module-path=%s&pin-source=%s",
             token, T_SOFTHSM_MODULE, pin_file);
}

/* Atomic: the context's maintainer thread reads the clock while the test moves it. */
static int64_t t_clock_read(void *arg) { return __atomic_load_n((int64_t *)arg, __ATOMIC_RELAXED); }
static void t_quiet_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= HSMKEYS_LOG_WARNING)
        fprintf(stderr, "# hsmkeys log: %s\n", msg);
}

hsmkeys_ctx *t_open_uri(const char *uri, const char *domain, const char *epoch,
                        const char *lifetime, hsmkeys_clock_fn clock, void *clock_arg)
{
    return t_open_uri_fe(uri, domain, epoch, lifetime, 0, clock, clock_arg);
}

hsmkeys_ctx *t_open_uri_fe(const char *uri, const char *domain, const char *epoch,
                           const char *lifetime, int forward_erasable, hsmkeys_clock_fn clock,
                           void *clock_arg)
{
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    if (hsmkeys_config_new(&c) != HSMKEYS_OK ||
        hsmkeys_config_set(c, "uri", uri) != HSMKEYS_OK ||
        (forward_erasable && hsmkeys_config_set(c, "forward-erasable", "yes") != HSMKEYS_OK) ||
        hsmkeys_config_set(c, "domain", domain) != HSMKEYS_OK ||
        (epoch && hsmkeys_config_set(c, "epoch", epoch) != HSMKEYS_OK) ||
        (lifetime && hsmkeys_config_set(c, "lifetime", lifetime) != HSMKEYS_OK))
        goto out;
    hsmkeys_config_set_log(c, t_quiet_log, NULL);
    if (clock != NULL)
        hsmkeys_config_set_clock(c, clock, clock_arg);
    if (hsmkeys_open(c, &ctx) != HSMKEYS_OK)
        ctx = NULL;
out:
    if (ctx == NULL)
        fprintf(stderr, "# open %s: %s\n", domain, hsmkeys_last_error());
    hsmkeys_config_free(c);
    return ctx;
}

hsmkeys_ctx *t_open(const t_hsm *h, const char *token, const char *domain,
                    const char *epoch, const char *lifetime, int64_t *clock_var)
{
    char uri[700];
    t_uri(uri, sizeof uri, token, h->pin_file);
    return t_open_uri(uri, domain, epoch, lifetime, clock_var ? t_clock_read : NULL, clock_var);
}

int t_fleet_setup(t_hsm *h)
{
    unsigned char fleet[32], other[32];
    t_master_opts o = { 0 };
    if (t_hsm_setup(h) != 0)
        return -1;
    t_master_from_seed("fleet", fleet);
    t_master_from_seed("other", other);
    if (t_token_init(T_SOFTHSM_MODULE, "S1", T_SO_PIN, T_USER_PIN) ||
        t_token_init(T_SOFTHSM_MODULE, "S2", T_SO_PIN, T_USER_PIN) ||
        t_token_init(T_SOFTHSM_MODULE, "S3", T_SO_PIN, T_USER_PIN) ||
        t_master_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, fleet, 32, &o) ||
        t_master_import(T_SOFTHSM_MODULE, "S2", T_USER_PIN, fleet, 32, &o) ||
        t_master_import(T_SOFTHSM_MODULE, "S3", T_USER_PIN, other, 32, &o))
        return -1;
    return 0;
}

/* ---- forward-erasable chain states (tests only: public values) ---------- */

void t_state_from_seed(const char *seed, unsigned char out[32])
{
    char msg[128];
    unsigned int n = 32;
    snprintf(msg, sizeof msg, "hsmkeys test state:%s", seed);
    EVP_Digest(msg, strlen(msg), out, &n, EVP_sha256(), NULL);
}

/* Open a logged-in RW session on `token`; 0 on success. */
static int chain_session(const char *module, const char *token, const char *pin, hk_module **m,
                         CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_RV rv;
    unsigned gen;
    if (hk_module_get(module, NULL, m) != HSMKEYS_OK)
        return -1;
    if (hk_module_check_fork(*m, &gen) != HSMKEYS_OK) { /* a fork child: initialize here */
        hk_module_put(*m);
        return -1;
    }
    f = hk_module_fns(*m);
    /* A SoftHSM2 instance that starts while another process rewrites the
     * token's files can miss the token for a moment: look a few times */
    for (int tries = 0;; tries++) {
        int found = find_token(f, token, &slot) == 0;
        rv = found ? f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s)
                   : CKR_TOKEN_NOT_PRESENT;
        if (rv == CKR_OK)
            break;
        if (tries == 10) {
            fprintf(stderr, "t_chain: no token %s (%s)\n", token, hk_ckr_name(rv));
            hk_module_put(*m);
            return -1;
        }
        usleep(50000);
    }
    rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        fprintf(stderr, "t_chain: login: %s\n", hk_ckr_name(rv));
        (void)f->C_CloseSession(*s);
        hk_module_put(*m);
        return -1;
    }
    return 0;
}

int t_chain_import(const char *module, const char *token, const char *pin,
                   const unsigned char value[32], uint32_t generation, uint64_t epoch)
{
    hk_module *m;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    char label[HK_CHAIN_LABEL_MAX];
    int ok;
    if (hk_chain_label(NULL, label) != HSMKEYS_OK || chain_session(module, token, pin, &m, &s))
        return -1;
    ok = hk_chain_import(m, s, label, generation, epoch, 1, value, &h, &rv) == HSMKEYS_OK ? 0 : -1;
    if (ok != 0)
        fprintf(stderr, "t_chain_import: %s\n", hsmkeys_last_error());
    (void)hk_module_fns(m)->C_CloseSession(s);
    hk_module_put(m);
    return ok;
}

/* Every chain state on `token` (hk_chain_list, sorted); *list malloc'd. */
static int chain_listing(const char *module, const char *token, const char *pin,
                         hk_chain_state **list, size_t *n)
{
    hk_module *m;
    CK_SESSION_HANDLE s;
    CK_RV rv;
    char label[HK_CHAIN_LABEL_MAX];
    int ok;
    *list = NULL;
    *n = 0;
    if (hk_chain_label(NULL, label) != HSMKEYS_OK || chain_session(module, token, pin, &m, &s))
        return -1;
    ok = hk_chain_list(m, s, label, list, n, &rv) == HSMKEYS_OK ? 0 : -1;
    (void)hk_module_fns(m)->C_CloseSession(s);
    hk_module_put(m);
    return ok;
}

int t_chain_list(const char *module, const char *token, const char *pin, uint32_t *gens,
                 uint64_t *epochs, size_t max, size_t *n)
{
    hk_chain_state *list;
    size_t i;
    int ok = chain_listing(module, token, pin, &list, n);
    for (i = 0; ok == 0 && i < *n && i < max; i++) {
        gens[i] = list[i].generation;
        epochs[i] = list[i].epoch;
    }
    free(list);
    return ok;
}

int t_read_pin(const char *who, const char *path, char *out, size_t len)
{
    hk_secret s;
    if (hk_pin_read_file(path, &s) != HSMKEYS_OK || s.len >= len) {
        fprintf(stderr, "%s: %s\n", who, hsmkeys_last_error());
        return -1;
    }
    memcpy(out, s.data, s.len);
    out[s.len] = '\0';
    hk_secret_free(&s);
    return 0;
}

int t_chain_copies(const char *module, const char *token, const char *pin, uint32_t generation,
                   uint64_t epoch, uint64_t *nonces, size_t max, size_t *n)
{
    hk_chain_state *list;
    size_t all = 0, i;
    int ok = chain_listing(module, token, pin, &list, &all);
    *n = 0;
    for (i = 0; ok == 0 && i < all; i++)
        if (list[i].generation == generation && list[i].epoch == epoch && *n < max)
            nonces[(*n)++] = list[i].nonce; /* sorted: smallest first */
    free(list);
    return ok;
}

int t_chain_settle(const char *module, const char *token, const char *pin, uint32_t generation,
                   uint64_t epoch)
{
    hk_module *m;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    char label[HK_CHAIN_LABEL_MAX];
    int ok;
    if (hk_chain_label(NULL, label) != HSMKEYS_OK || chain_session(module, token, pin, &m, &s))
        return -1;
    ok = hk_chain_settle(m, s, label, generation, epoch, &h, &rv) == HSMKEYS_OK ? 0 : -1;
    if (ok != 0)
        fprintf(stderr, "t_chain_settle: %s\n", hsmkeys_last_error());
    (void)hk_module_fns(m)->C_CloseSession(s);
    hk_module_put(m);
    return ok;
}

int t_module_restart(const char *module)
{
    hk_module *m;
    CK_C_INITIALIZE_ARGS args;
    CK_FUNCTION_LIST_PTR f;
    CK_RV rv;
    if (hk_module_get(module, NULL, &m) != HSMKEYS_OK)
        return -1;
    f = hk_module_fns(m);
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    (void)f->C_Finalize(NULL);
    rv = f->C_Initialize(&args);
    hk_module_put(m);
    return rv == CKR_OK ? 0 : -1;
}

void t_quiesce(hsmkeys_ctx *a, hsmkeys_ctx *b)
{
    if (a != NULL)
        (void)hsmkeys_refresh(a);
    if (b != NULL)
        (void)hsmkeys_refresh(b);
    usleep(100000); /* from the cycle's end to its timed wait */
}
