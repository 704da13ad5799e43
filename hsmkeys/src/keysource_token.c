/*
 * keysource_token.c - epoch keys from static master generations in a
 * PKCS#11 token (see keysource.h, docs/DERIVATION.md).
 *
 * Holds: the module, slot, one session logged in as the user, and the
 * master handles.  Never holds the PIN: it is read from the pin source when
 * a login is needed and wiped right after (after fork, after the token
 * dropped the session).  A pin-value in the URI (tests only) stays in the
 * parsed URI for re-login and is wiped when the source is destroyed.
 *
 * Threat: a token that fails or disappears.  A derivation that fails with a
 * lost session or device logs in again once and retries; anything else is
 * returned to the context, which backs off.
 */
#include <stdlib.h>
#include <string.h>
#include "keysource.h"
#include "master.h"

typedef struct token_source {
    hk_keysource base;
    hk_module *module;
    hk_uri *uri;
    char *pin_source;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    unsigned module_generation;
    hk_master *masters;
    size_t nmasters;
    char *domain;
    int need_reconnect;
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

/* New session + login + masters found again (handles may change). */
static int source_connect(token_source *t)
{
    hk_master *list = NULL;
    size_t n = 0, i, j;
    int rc;

    hk_session_close(t->module, t->session);
    t->session = CK_INVALID_HANDLE;
    HK_TRY(hk_token_find(t->module, t->uri, &t->slot));
    /* the lookup may have re-read the module: that is no fork */
    HK_TRY(hk_module_check_fork(t->module, &t->module_generation));
    HK_TRY(hk_session_open(t->module, t->slot, 0, &t->session));
    HK_TRY(source_login(t));
    HK_TRY(hk_master_find(t->module, t->session, t->uri, &list, &n));
    if (t->masters != NULL) {
        /* Reconnecting: keep the generations we started with, new handles. */
        for (i = 0; i < t->nmasters; i++) {
            for (j = 0; j < n && list[j].generation != t->masters[i].generation; j++)
                ;
            if (j == n) {
                rc = hk_fail(HSMKEYS_E_NO_MASTER, "master generation %u disappeared from "
                             "the token", t->masters[i].generation);
                free(list);
                return rc;
            }
            t->masters[i].handle = list[j].handle;
        }
        free(list);
    } else {
        t->masters = list;
        t->nmasters = n;
    }
    t->need_reconnect = 0;
    return HSMKEYS_OK;
}

static int derive_once(token_source *t, size_t gen, uint64_t epoch, unsigned char out[64], CK_RV *rv)
{
    struct hk_master_prf prf = { t->module, t->session, t->masters[gen].handle, CKR_OK, 0 };
    int rc = hk_kdf_epoch_keys(hk_master_prf, &prf, t->domain, epoch, out);
    *rv = prf.last_rv;
    return rc;
}

static int token_derive(hk_keysource *src, size_t gen, uint64_t epoch, unsigned char out[64])
{
    token_source *t = (token_source *)src;
    unsigned mgen = 0;
    CK_RV rv = CKR_OK;
    int rc;

    if (gen >= t->nmasters)
        return hk_fail(HSMKEYS_E_INVALID, "no master generation index %zu", gen);
    HK_TRY(hk_module_check_fork(t->module, &mgen));
    if (mgen != t->module_generation) {
        t->module_generation = mgen;
        t->session = CK_INVALID_HANDLE; /* the old handle belongs to the parent */
        t->need_reconnect = 1;
    }
    if (t->need_reconnect)
        HK_TRY(source_connect(t));
    rc = derive_once(t, gen, epoch, out, &rv);
    if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv)) {
        /* The token dropped our session (restart, removal): log in again once. */
        t->need_reconnect = 1;
        HK_TRY(source_connect(t));
        rc = derive_once(t, gen, epoch, out, &rv);
    }
    if (rc != HSMKEYS_OK && hk_p11_rv_is_connection_lost(rv))
        t->need_reconnect = 1;
    return rc;
}

static void token_destroy(hk_keysource *src)
{
    token_source *t = (token_source *)src;
    if (t == NULL)
        return;
    if (t->module != NULL) {
        unsigned g;
        /* Close our session only in the process that opened it. */
        if (hk_module_check_fork(t->module, &g) == HSMKEYS_OK && g == t->module_generation)
            hk_session_close(t->module, t->session);
        hk_module_put(t->module);
    }
    hk_uri_free(t->uri);
    free(t->pin_source);
    free(t->masters);
    free(t->base.gens);
    free(t->domain);
    free(t);
}

static const struct hk_keysource_ops token_ops = {
    "token-static-master", token_derive, token_destroy,
};

int hk_token_source_open(const hk_token_source_opts *o, hk_keysource **out)
{
    token_source *t;
    const char *module, *pin_source;
    size_t i;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    t->base.ops = &token_ops;
    t->session = CK_INVALID_HANDLE;
    HK_TRY_GOTO(hk_uri_parse(o->uri, &t->uri), fail);
    if ((t->domain = strdup(o->domain)) == NULL) {
        rc = hk_fail(HSMKEYS_E_NOMEM, "out of memory");
        goto fail;
    }
    pin_source = o->pin_source ? o->pin_source : hk_uri_pin_source(t->uri);
    if (pin_source != NULL && (t->pin_source = strdup(pin_source)) == NULL) {
        rc = hk_fail(HSMKEYS_E_NOMEM, "out of memory");
        goto fail;
    }
    if (pin_source == NULL && hk_uri_has_pin_value(t->uri) && o->warn != NULL)
        o->warn(o->warn_arg, "the URI carries pin-value: a PIN in configuration is for "
                "tests only; use pin-source=<file of mode 0600>");
    module = o->module ? o->module : hk_uri_module_path(t->uri);
    HK_TRY_GOTO(hk_module_get(module, o->module_args, &t->module), fail);
    HK_TRY_GOTO(hk_module_check_fork(t->module, &t->module_generation), fail);
    HK_TRY_GOTO(source_connect(t), fail);
    t->base.gens = calloc(t->nmasters, sizeof *t->base.gens);
    if (t->base.gens == NULL) {
        rc = hk_fail(HSMKEYS_E_NOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; i < t->nmasters; i++) {
        struct hk_master_prf prf = { t->module, t->session, t->masters[i].handle, CKR_OK, 0 };
        rc = hk_master_check_policy(&t->masters[i], o->allow_extractable, o->warn, o->warn_arg);
        if (rc != HSMKEYS_OK)
            goto fail;
        rc = hk_kdf_name_tag(hk_master_prf, &prf, t->domain, t->base.gens[i].tag);
        if (rc != HSMKEYS_OK) {
            hk_fail_prefix(rc, "computing the key-name tag of master generation %u",
                           t->masters[i].generation);
            goto fail;
        }
        t->base.gens[i].generation = t->masters[i].generation;
        t->base.gens[i].activation = t->masters[i].activation;
    }
    t->base.ngens = t->nmasters;
    *out = &t->base;
    return HSMKEYS_OK;
fail:
    token_destroy(&t->base);
    return rc;
}
