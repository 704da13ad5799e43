/*
 * keysource_p11.h - what the PKCS#11 key sources share (internal to
 * keysource_token.c and keysource_chain.c): the connection to the token
 * (module, slot, one session logged in as the user, re-login after a fork
 * or a lost session), the retry-once rule of every token operation, and
 * the master generations with their name tags.
 *
 * Layout: a source embeds hk_p11src first (its hk_keysource base first of
 * all), so a source pointer, its hk_p11src and its hk_keysource are one
 * address.  Never holds the PIN: it is read from the pin source when a
 * login is needed and wiped right after.
 */
#ifndef HSMKEYS_KEYSOURCE_P11_H
#define HSMKEYS_KEYSOURCE_P11_H

#include "keysource.h"
#include "master.h"

typedef struct hk_p11src {
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
    const char *name_label; /* HK_LABEL_NAME or HK_LABEL_FE_NAME */
    int allow_extractable;
    int need_reconnect;
    unsigned connects;   /* sessions opened so far (a new one: handles may differ) */
    void (*warn)(void *arg, const char *msg);
    void *warn_arg;
} hk_p11src;

/* One token operation: run it once; if the token dropped our session, log
 * in again and run it once more.  Counts the calls into base.token_calls and
 * keeps the module's OpenSSL error-queue entries off the caller's. */
typedef int (*hk_p11src_fn)(hk_p11src *t, void *arg, CK_RV *rv);
int hk_p11src_run(hk_p11src *t, hk_p11src_fn fn, void *arg);

/* The arguments of both sources' derive operation. */
typedef struct derive_op {
    uint32_t generation;
    uint64_t epoch;
    const char *label;
    unsigned char *out;
} derive_op;

/* Set up t (calloc'd by the caller, ops set) from the options, connect,
 * read and judge the masters.  Returns the codes of hsmkeys_open(). */
int hk_p11src_open(hk_p11src *t, const hk_token_source_opts *o, const char *name_label);
/* The reread operation of both sources. */
int hk_p11src_reread(hk_keysource *src, hk_generation **out, size_t *n);
/* The master of a generation, or NULL. */
const hk_master *hk_p11src_master(const hk_p11src *t, uint32_t generation);
/* Close (in the process that opened it) and free what hk_p11src_open set up;
 * not t itself. */
void hk_p11src_cleanup(hk_p11src *t);

#endif
