/*
 * keysource_token.c - epoch keys from static master generations in a
 * PKCS#11 token (see keysource.h, docs/DERIVATION.md).
 *
 * Holds: the module, slot, one session logged in as the user, and the list
 * of master generations (handle, generation, activation, name tag), read at
 * open and again by every reread().  Never holds the PIN: it is read from
 * the pin source when a login is needed and wiped right after (after fork,
 * after the token dropped the session).  A pin-value in the URI (tests
 * only) stays in the parsed URI for re-login and is wiped when the source
 * is destroyed.
 *
 * Threat: a token that fails, disappears, or changes under us.  A call that
 * fails with a lost session or device logs in again once and retries;
 * anything else is returned to the maintainer, which backs off.  A
 * generation that appears with attributes the master policy refuses is left
 * out (with a warning), never used.  Name tags are computed once per
 * (generation, activation, handle) seen, so a re-read costs a find and the
 * attribute reads, not an HMAC per generation.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "keysource.h"
#include "master.h"
#include "pin.h"

typedef struct token_source {
    hk_keysource base;
    hk_module *module;
    hk_uri *uri;
    char *pin_source;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    unsigned module_generation;
    hk_master *masters;  /* sorted by activation; tags filled */
    size_t nmasters;
    uint32_t refused[16];/* generations the policy refused (warned once) */
    size_t nrefused;
    char *domain;
    int allow_extractable;
    int need_reconnect;
    void (*warn)(void *arg, const char *msg);
    void *warn_arg;
} token_source;

static int source_login(token_source *t)
{
    CK_SESSION_INFO info;
    hk_secret pin;
    int rc;

    /* Login state is per application: a session opened after fork (or next
     * to another of ours) may already be logged in.  Then the PIN is not
     * read at all (a worker running as another user may not be able to). */
    if (HK_FN(t->module, C_GetSessionInfo)(t->session, &info) == CKR_OK &&
        (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS))
        return HSMKEYS_OK;

    if (t->pin_source != NULL)
        rc = hk_pin_read_file(t->pin_source, &pin);
    else if (hk_uri_has_pin_value(t->uri))
        rc = hk_uri_pin_value(t->uri, &pin);
    else
        rc = hk_fail(HSMKEYS_E_PIN, "no PIN source for the token: add pin-source=<file> to "
                     "the URI (a file of mode 0600 holding the user PIN)");
    if (rc != HSMKEYS_OK)
        return rc;
    rc = hk_login(t->module, t->session, CKU_USER, &pin);
    hk_secret_free(&pin);
    return rc;
}

/* New session + login (object handles may change: masters are re-read). */
static int source_connect(token_source *t)
{
    hk_session_close(t->module, t->session);
    t->session = CK_INVALID_HANDLE;
    HK_TRY(hk_token_find(t->module, t->uri, &t->slot));
    /* the lookup may have re-read the module: that is no fork */
    HK_TRY(hk_module_check_fork(t->module, &t->module_generation));
    HK_TRY(hk_session_open(t->module, t->slot, 0, &t->session));
    HK_TRY(source_login(t));
    t->need_reconnect = 0;
    return HSMKEYS_OK;
}

/* Reconnect if a fork or a lost session asked for it. */
static int source_ready(token_source *t)
{
    unsigned mgen = 0;
    HK_TRY(hk_module_check_fork(t->module, &mgen));
    if (mgen != t->module_generation) {
        t->module_generation = mgen;
        t->session = CK_INVALID_HANDLE; /* the old handle belongs to the parent */
        t->need_reconnect = 1;
    }
    if (t->need_reconnect)
        HK_TRY(source_connect(t));
    return HSMKEYS_OK;
}

static const hk_master *find_generation(const hk_master *list, size_t n, uint32_t generation)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (list[i].generation == generation)
            return &list[i];
    return NULL;
}

static void warn_refused_once(token_source *t, uint32_t generation)
{
    size_t i;
    for (i = 0; i < t->nrefused; i++)
        if (t->refused[i] == generation)
            return;
    if (t->nrefused < sizeof t->refused / sizeof t->refused[0])
        t->refused[t->nrefused++] = generation;
    if (t->warn != NULL)
        t->warn(t->warn_arg, hsmkeys_last_error());
}

/* Find the masters, judge them, and fill their tags (from `old` when the
 * same object was seen before).  On success *out holds the usable ones. */
static int read_masters(token_source *t, int at_open, hk_master **out, size_t *nout, CK_RV *rv)
{
    hk_master *list = NULL;
    size_t n = 0, i, kept = 0;
    int rc;

    *rv = CKR_OK;
    HK_TRY(hk_master_find(t->module, t->session, t->uri, &list, &n));
    for (i = 0; i < n; i++) {
        const hk_master *seen = find_generation(t->masters, t->nmasters, list[i].generation);
        /* warnings (a still-modifiable master) once, when a generation is first seen */
        rc = hk_master_check_policy(&list[i], t->allow_extractable,
                                    seen == NULL ? t->warn : NULL, t->warn_arg);
        if (rc != HSMKEYS_OK) {
            if (at_open)
                goto fail;
            warn_refused_once(t, list[i].generation);
            continue; /* never used */
        }
        if (seen != NULL && seen->handle == list[i].handle &&
            seen->activation == list[i].activation) {
            memcpy(list[i].tag, seen->tag, HK_TAG_LEN);
        } else {
            struct hk_master_prf prf = { t->module, t->session, list[i].handle, CKR_OK, 0 };
            rc = hk_kdf_name_tag(hk_master_prf, &prf, t->domain, list[i].tag);
            *rv = prf.last_rv;
            if (rc != HSMKEYS_OK) {
                hk_fail_prefix(rc, "computing the key-name tag of master generation %u",
                               list[i].generation);
                goto fail;
            }
        }
        list[kept++] = list[i];
    }
    if (kept == 0 && !at_open) {
        rc = hk_fail(HSMKEYS_E_NO_MASTER, "no usable master generation left on the token");
        goto fail;
    }
    *out = list;
    *nout = kept;
    return HSMKEYS_OK;
fail:
    free(list);
    return rc;
}

/* Publish a new list: the pointer first, then free the old one (a child
 * forked in between sees a valid list either way). */
static void set_masters(token_source *t, hk_master *list, size_t n)
{
    hk_master *old = t->masters;
    t->nmasters = 0;
    __atomic_store_n(&t->masters, list, __ATOMIC_RELEASE);
    t->nmasters = n;
    free(old);
}

static int to_generations(const hk_master *m, size_t n, hk_generation **out)
{
    size_t i;
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        (*out)[i].generation = m[i].generation;
        (*out)[i].activation = m[i].activation;
        memcpy((*out)[i].tag, m[i].tag, HK_TAG_LEN);
    }
    return HSMKEYS_OK;
}

/* One token operation of reread() or derive(). */
typedef struct token_op {
    int (*run)(token_source *t, struct token_op *op, CK_RV *rv);
    uint32_t generation;
    uint64_t epoch;
    const char *label;
    unsigned char *out;
    hk_master *list;
    size_t n;
} token_op;

/* Run op once; if the token dropped our session (restart, removal), log in
 * again and run it once more.  Counts the PKCS#11 calls, and drops what the
 * module left on this thread's OpenSSL error queue (modules built on
 * OpenSSL, such as SoftHSM2, leave entries a server would take for its
 * own). */
static int run_op(token_source *t, token_op *op)
{
    uint64_t calls_before = hk_p11_thread_calls;
    CK_RV rv = CKR_OK;
    int rc;

    ERR_set_mark();
    rc = source_ready(t);
    if (rc == HSMKEYS_OK) {
        rc = op->run(t, op, &rv);
        if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv)) {
            t->need_reconnect = 1;
            rc = source_connect(t);
            if (rc == HSMKEYS_OK)
                rc = op->run(t, op, &rv);
        }
        if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv))
            t->need_reconnect = 1;
    }
    ERR_pop_to_mark();
    t->base.token_calls += hk_p11_thread_calls - calls_before;
    return rc;
}

static int op_read(token_source *t, token_op *op, CK_RV *rv)
{
    free(op->list); /* a first attempt's result */
    op->list = NULL;
    return read_masters(t, 0, &op->list, &op->n, rv);
}

static int token_reread(hk_keysource *src, hk_generation **out, size_t *n)
{
    token_source *t = (token_source *)src;
    token_op op = { op_read, 0, 0, NULL, NULL, NULL, 0 };
    int rc = run_op(t, &op);
    if (rc == HSMKEYS_OK)
        rc = to_generations(op.list, op.n, out);
    if (rc != HSMKEYS_OK) {
        free(op.list);
        return rc;
    }
    set_masters(t, op.list, op.n);
    *n = op.n;
    return HSMKEYS_OK;
}

static int op_derive(token_source *t, token_op *op, CK_RV *rv)
{
    const hk_master *mk = find_generation(t->masters, t->nmasters, op->generation);
    struct hk_master_prf prf = { t->module, t->session, 0, CKR_OK, 0 };
    int rc;
    if (mk == NULL)
        return hk_fail(HSMKEYS_E_NO_MASTER, "master generation %u is no longer on the token",
                       op->generation);
    prf.key = mk->handle;
    rc = hk_kdf_epoch_keys(hk_master_prf, &prf, op->label, t->domain, op->epoch, op->out);
    *rv = prf.last_rv;
    return rc;
}

static int token_derive(hk_keysource *src, uint32_t generation, uint64_t epoch,
                        const char *label, unsigned char out[64])
{
    token_op op = { op_derive, generation, epoch, label, out, NULL, 0 };
    return run_op((token_source *)src, &op);
}

static void token_destroy(hk_keysource *src)
{
    token_source *t = (token_source *)src;
    if (t == NULL)
        return;
    ERR_set_mark();
    if (t->module != NULL) {
        unsigned g;
        /* Close our session only in the process that opened it. */
        if (hk_module_check_fork(t->module, &g) == HSMKEYS_OK && g == t->module_generation)
            hk_session_close(t->module, t->session);
        hk_module_put(t->module);
    }
    ERR_pop_to_mark();
    hk_uri_free(t->uri);
    free(t->pin_source);
    free(t->masters);
    free(t->base.gens);
    free(t->domain);
    free(t);
}

static const struct hk_keysource_ops token_ops = {
    "token-static-master", token_reread, token_derive, token_destroy,
};

static int token_open(const hk_token_source_opts *o, token_source *t)
{
    const char *module, *pin_source;
    hk_master *list = NULL;
    size_t n = 0;
    CK_RV rv = CKR_OK;

    HK_TRY(hk_uri_parse(o->uri, &t->uri));
    if ((t->domain = strdup(o->domain)) == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    pin_source = o->pin_source ? o->pin_source : hk_uri_pin_source(t->uri);
    if (pin_source != NULL && (t->pin_source = strdup(pin_source)) == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    if (pin_source == NULL && hk_uri_has_pin_value(t->uri) && o->warn != NULL)
        o->warn(o->warn_arg, "the URI carries pin-value: a PIN in configuration is for "
                "tests only; use pin-source=<file of mode 0600>");
    module = o->module ? o->module : hk_uri_module_path(t->uri);
    HK_TRY(hk_module_get(module, o->module_args, &t->module));
    HK_TRY(hk_module_check_fork(t->module, &t->module_generation));
    HK_TRY(source_connect(t));
    HK_TRY(read_masters(t, 1, &list, &n, &rv));
    set_masters(t, list, n);
    HK_TRY(to_generations(t->masters, t->nmasters, &t->base.gens));
    t->base.ngens = t->nmasters;
    return HSMKEYS_OK;
}

int hk_token_source_open(const hk_token_source_opts *o, hk_keysource **out)
{
    token_source *t;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    t->base.ops = &token_ops;
    t->session = CK_INVALID_HANDLE;
    t->allow_extractable = o->allow_extractable;
    t->warn = o->warn;
    t->warn_arg = o->warn_arg;
    ERR_set_mark();
    rc = token_open(o, t);
    ERR_pop_to_mark();
    if (rc != HSMKEYS_OK) {
        token_destroy(&t->base);
        return rc;
    }
    t->base.token_calls = 0; /* calls made after open are counted */
    *out = &t->base;
    return HSMKEYS_OK;
}
