/*
 * keysource_p11.c - the PKCS#11 base of the key sources (see
 * keysource_p11.h): connection, login, the retry-once rule, and the master
 * generations.  Moved here from keysource_token.c so the chain source
 * (keysource_chain.c) uses the same code.
 *
 * Threat: a token that fails, disappears, or changes under us.  A call that
 * fails with a lost session or device logs in again once and retries;
 * anything else is returned to the maintainer, which backs off.  A
 * generation that appears with attributes the master policy refuses is left
 * out (with a warning), never used.  Name tags are computed once per
 * (generation, activation, handle) seen, so a re-read costs a find and the
 * attribute reads, not an HMAC per generation.  A pin-value in the URI
 * (tests only) stays in the parsed URI for re-login and is wiped when the
 * source is destroyed.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "keysource_p11.h"
#include "pin.h"

static int source_login(hk_p11src *t)
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

static int read_masters(hk_p11src *t, int at_open, hk_master **out, size_t *nout, CK_RV *rv);
static void set_masters(hk_p11src *t, hk_master *list, size_t n);

/* New session + login.  The chain source writes state objects: its session
 * is read-write.  Object handles belong to the module instance: one that
 * started afresh (a fork child of a module that resets itself, a p11-kit
 * remote process restarted) may give the old numbers to other objects, so
 * after a reconnect the masters are looked up again before any use; a
 * stale handle could otherwise key the derivation with another object and
 * make keys no other server shares. */
static int source_connect(hk_p11src *t)
{
    hk_session_close(t->module, t->session);
    t->session = CK_INVALID_HANDLE;
    HK_TRY(hk_token_find(t->module, t->uri, &t->slot));
    /* the lookup may have re-read the module: that is no fork */
    HK_TRY(hk_module_check_fork(t->module, &t->module_generation));
    HK_TRY(hk_session_open(t->module, t->slot, t->base.ops->advance != NULL, &t->session));
    HK_TRY(source_login(t));
    if (t->masters != NULL) {
        hk_master *list = NULL;
        size_t n = 0;
        CK_RV rv;
        HK_TRY(read_masters(t, 0, &list, &n, &rv));
        set_masters(t, list, n);
    }
    t->need_reconnect = 0;
    t->connects++;
    return HSMKEYS_OK;
}

/* Reconnect if a fork or a lost session asked for it. */
static int source_ready(hk_p11src *t)
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

const hk_master *hk_p11src_master(const hk_p11src *t, uint32_t generation)
{
    return find_generation(t->masters, t->nmasters, generation);
}

static void warn_refused_once(hk_p11src *t, uint32_t generation)
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
static int read_masters(hk_p11src *t, int at_open, hk_master **out, size_t *nout, CK_RV *rv)
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
            rc = hk_kdf_name_tag_label(hk_master_prf, &prf, t->name_label, t->domain,
                                       list[i].tag);
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
static void set_masters(hk_p11src *t, hk_master *list, size_t n)
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

/* Run fn once; if the token dropped our session (restart, removal), log in
 * again and run it once more.  Counts the PKCS#11 calls, and drops what the
 * module left on this thread's OpenSSL error queue (modules built on
 * OpenSSL, such as SoftHSM2, leave entries a server would take for its
 * own). */
int hk_p11src_run(hk_p11src *t, hk_p11src_fn fn, void *arg)
{
    uint64_t calls_before = hk_p11_thread_calls;
    CK_RV rv = CKR_OK;
    int rc;

    ERR_set_mark();
    rc = source_ready(t);
    if (rc == HSMKEYS_OK) {
        rc = fn(t, arg, &rv);
        if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv)) {
            t->need_reconnect = 1;
            rc = source_connect(t);
            if (rc == HSMKEYS_OK)
                rc = fn(t, arg, &rv);
        }
        if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv))
            t->need_reconnect = 1;
    }
    ERR_pop_to_mark();
    t->base.token_calls += hk_p11_thread_calls - calls_before;
    return rc;
}

struct read_op {
    hk_master *list;
    size_t n;
};

static int op_read(hk_p11src *t, void *arg, CK_RV *rv)
{
    struct read_op *op = arg;
    free(op->list); /* a first attempt's result */
    op->list = NULL;
    return read_masters(t, 0, &op->list, &op->n, rv);
}

int hk_p11src_reread(hk_keysource *src, hk_generation **out, size_t *n)
{
    hk_p11src *t = (hk_p11src *)src;
    struct read_op op = { NULL, 0 };
    int rc = hk_p11src_run(t, op_read, &op);
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

void hk_p11src_cleanup(hk_p11src *t)
{
    ERR_set_mark();
    if (t->module != NULL) {
        unsigned g;
        /* Close our session only in the process that opened it. */
        if (hk_module_check_fork(t->module, &g) == HSMKEYS_OK && g == t->module_generation)
            hk_session_close(t->module, t->session);
        hk_module_put(t->module);
        t->module = NULL;
    }
    ERR_pop_to_mark();
    hk_uri_free(t->uri);
    t->uri = NULL;
    free(t->pin_source);
    free(t->masters);
    free(t->base.gens);
    free(t->domain);
}

static int p11src_open(hk_p11src *t, const hk_token_source_opts *o)
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

int hk_p11src_open(hk_p11src *t, const hk_token_source_opts *o, const char *name_label)
{
    int rc;
    t->session = CK_INVALID_HANDLE;
    t->allow_extractable = o->allow_extractable;
    t->warn = o->warn;
    t->warn_arg = o->warn_arg;
    t->name_label = name_label;
    ERR_set_mark();
    rc = p11src_open(t, o);
    ERR_pop_to_mark();
    return rc;
}
