/*
 * sc_glue.h - OpenSSL's external session cache on the sealed store.
 *
 * sc_attach() installs on an SSL_CTX (TLS 1.2 session IDs; TLS 1.3 and
 * ticket resumption are left to the ticket callback):
 *   generate_session_id  IDs that carry the current epoch (sc_seal.h);
 *   new_session_cb       seal the DER session under the epoch's cache key
 *                        and write it, fire-and-forget, with TTL = the
 *                        session's remaining lifetime (the ticket lifetime);
 *   get_session_cb       read the epoch from the ID (an ID of another format
 *                        or of an epoch outside the window: miss, no store
 *                        call), look the store key up (bounded wait), open
 *                        the entry against (ID, domain, epoch, expiry);
 *   remove_session_cb    delete the entry (fire-and-forget);
 * and the cache mode SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL
 * (the store is the only cache: a worker keeps no sessions of its own).
 *
 * Keys come from hsmkeys_cache_key (cache only, never the token).  An
 * entry that fails to open is logged (reason only, at most once per second
 * per reason) and gives a full handshake.
 * Threat handled: see sc_seal.h (the store) and sc_store.h (stalls).
 */
#ifndef HSMKEYS_SC_GLUE_H
#define HSMKEYS_SC_GLUE_H

#include <stdint.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys.h>

#include "sc_store.h"

typedef struct sc_glue_stats {
    uint64_t stored;       /* sessions sealed and sent to the store */
    uint64_t resumed;      /* lookups that gave a session back */
    uint64_t missed;       /* lookups without an entry (or store down) */
    uint64_t refused;      /* entries that did not open */
    uint64_t foreign_ids;  /* IDs not of our format or outside the window */
    uint64_t no_key;       /* cache key not available */
} sc_glue_stats;

/* Install the callbacks on ssl_ctx with context hk (opened with
 * session-cache=yes) and domain (the hsmkeys domain), writing to store.
 * Takes references on hk and store, released when ssl_ctx is freed;
 * attaching again replaces the earlier attachment.  Returns 0, or -1 with a
 * message in err (no session-cache keys in hk, out of memory). */
int sc_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk, const char *domain,
              sc_store *store, sc_log_fn log, void *log_arg,
              char *err, size_t errlen);

/* Counters of ssl_ctx's attachment (zeros if none). */
void sc_glue_get_stats(SSL_CTX *ssl_ctx, sc_glue_stats *out);

#endif /* HSMKEYS_SC_GLUE_H */
