/*
 * keysource.h - where epoch keys come from: the one seam between the key
 * maintainer and the token.
 *
 * Two sources: the token's static master generations (keysource_token.c):
 * epoch keys = SP 800-108(HMAC(master)); and the forward-erasable one
 * (keysource_chain.c, option forward-erasable): epoch keys also depend on a
 * per-epoch state kept in the token as a hash chain, which advance() moves
 * forward and erases behind the window.  Both share the PKCS#11 base in
 * keysource_p11.c; nothing above this interface changes.
 *
 * Sources are not thread-safe: only the context's maintainer (or open, before
 * anyone else sees the context) calls them.  Sources never log; they return
 * codes and messages, and a warn callback for non-fatal findings.  A source
 * notices a fork itself (the PKCS#11 layer re-initialises its module in the
 * child and bumps the module's generation), counts its own token calls, and
 * keeps what the token leaves on the OpenSSL error queue off its caller's.
 *
 * Fork consistency: a fork may happen while the maintainer is inside a
 * source call.  A source publishes a changed pointer before it frees the old
 * object, so a child never sees a freed pointer; stale handles are repaired
 * by the reconnect the module's new generation forces.
 */
#ifndef HSMKEYS_KEYSOURCE_H
#define HSMKEYS_KEYSOURCE_H

#include <stdint.h>
#include "kdf.h"

/* One master generation as the maintainer and the hot path see it: public
 * facts only. */
typedef struct hk_generation {
    uint32_t generation;
    int64_t activation;              /* unix seconds */
    unsigned char tag[HK_TAG_LEN];   /* key-name tag for the domain */
} hk_generation;

typedef struct hk_keysource hk_keysource;

struct hk_keysource_ops {
    const char *name;
    /* Read the token's master generations again (a rotation adds one, a
     * destroy removes one).  *out (malloc'd, sorted by activation, free())
     * and *n receive the new list.  A generation that fails the master
     * policy is left out with a warning.
     * Returns HSMKEYS_OK, HSMKEYS_E_NO_MASTER, HSMKEYS_E_TOKEN,
     * HSMKEYS_E_LOGIN, HSMKEYS_E_MODULE, HSMKEYS_E_NO_TOKEN, HSMKEYS_E_NOMEM. */
    int (*reread)(hk_keysource *src, hk_generation **out, size_t *n);
    /* Derive the 64 key bytes of `epoch` for `label` (HK_LABEL_TICKET or
     * HK_LABEL_CACHE) under master generation number `generation`.
     * Returns HSMKEYS_OK, HSMKEYS_E_NO_MASTER (that generation is gone),
     * HSMKEYS_E_EXPIRED (forward-erasable: that epoch's state is erased),
     * HSMKEYS_E_UNAVAILABLE (forward-erasable: that epoch's state is not in
     * this process's view yet; the maintainer retries next cycle, no backoff),
     * HSMKEYS_E_TOKEN, HSMKEYS_E_LOGIN, HSMKEYS_E_MODULE. */
    int (*derive)(hk_keysource *src, uint32_t generation, uint64_t epoch, const char *label,
                  unsigned char out[HK_EPOCH_KEYS_LEN]);
    /* Forward-erasable sources only (NULL otherwise): make sure the states
     * of epochs [e_now - past - 1, e_now + 1] exist for every chain on the
     * token (stepping forward from whatever state it holds), and destroy
     * every state older than e_now - past - 1 (the window plus one epoch of
     * slack).  Cheap when nothing changed since the last call in this
     * epoch; a failure backs off inside the source until the next epoch or
     * the backoff's end (the maintainer calls it every cycle).  Returns HSMKEYS_OK, HSMKEYS_E_TOKEN, HSMKEYS_E_LOGIN,
     * HSMKEYS_E_MODULE, HSMKEYS_E_NOMEM. */
    int (*advance)(hk_keysource *src, uint64_t e_now, unsigned past);
    void (*destroy)(hk_keysource *src);
};

struct hk_keysource {
    const struct hk_keysource_ops *ops;
    hk_generation *gens;   /* as found at open, sorted by activation */
    size_t ngens;
    uint64_t token_calls;  /* PKCS#11 calls made so far (exact) */
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

/* Open the forward-erasable source (same options): also finds the chain
 * states; refuses a token that holds none for any master generation.
 * derive() returns HSMKEYS_E_EXPIRED, with no token call, for an epoch whose
 * state this token no longer (or never) held: "erased". */
int hk_chain_source_open(const hk_token_source_opts *o, hk_keysource **out) HK_WARN_UNUSED;

#endif /* HSMKEYS_KEYSOURCE_H */
