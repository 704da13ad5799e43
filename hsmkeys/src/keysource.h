/*
 * keysource.h - where epoch keys come from: the one seam between the key
 * ring / callback and the token.
 *
 * Today there is one source, the token's static master generations
 * (keysource_token.c): epoch keys = SP 800-108(HMAC(master)).  A future
 * forward-erasable source (a chain of epoch keys kept and destroyed inside
 * the token) implements the same operations; nothing above this interface
 * changes.
 *
 * Sources are not thread-safe: the context serialises calls with its
 * derive lock.  Sources never log; they return codes and messages.  A
 * source notices a fork itself (the PKCS#11 layer re-initialises its module
 * in the child and bumps the module's generation).
 */
#ifndef HSMKEYS_KEYSOURCE_H
#define HSMKEYS_KEYSOURCE_H

#include <stdint.h>
#include "kdf.h"

/* One master generation as the ring sees it: public facts only. */
typedef struct hk_generation {
    uint32_t generation;
    int64_t activation;              /* unix seconds */
    unsigned char tag[HK_TAG_LEN];   /* key-name tag for the domain */
} hk_generation;

typedef struct hk_keysource hk_keysource;

struct hk_keysource_ops {
    const char *name;
    /* Derive the 64 key bytes of `epoch` under generation index `gen`.
     * Returns HSMKEYS_OK, HSMKEYS_E_TOKEN, HSMKEYS_E_LOGIN, HSMKEYS_E_MODULE. */
    int (*derive)(hk_keysource *src, size_t gen, uint64_t epoch,
                  unsigned char out[HK_EPOCH_KEYS_LEN]);
    void (*destroy)(hk_keysource *src);
};

struct hk_keysource {
    const struct hk_keysource_ops *ops;
    hk_generation *gens;   /* sorted by activation */
    size_t ngens;
};

/* Options of the token source (from the context's configuration). */
typedef struct hk_token_source_opts {
    const char *uri;
    const char *module;       /* overrides the URI's module-path */
    const char *module_args;
    const char *pin_source;   /* overrides the URI's pin-source */
    const char *domain;
    int allow_extractable;
    void (*warn)(void *arg, const char *msg); /* for non-fatal warnings */
    void *warn_arg;
} hk_token_source_opts;

/* Open the token source: module, token, login, masters, policy, name tags.
 * Returns the codes of hsmkeys_open(). */
int hk_token_source_open(const hk_token_source_opts *o, hk_keysource **out) HK_WARN_UNUSED;

#endif /* HSMKEYS_KEYSOURCE_H */
