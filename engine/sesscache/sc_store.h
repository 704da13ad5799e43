/*
 * sc_store.h - the session cache's Redis client (hiredis, blocking sockets
 * with deadlines).
 *
 * Owns: one connection per serving thread (an nginx worker has one thread:
 * one connection per worker; an Apache child has one per thread that
 * handshakes), made lazily in that thread and re-made after fork; the
 * circuit breaker of each connection; rate-limited log lines per store.
 *
 *   lookup   GET key: flushes pending writes and reads their replies, then
 *            the GET's reply, all before one deadline of timeout ms after
 *            the call (a (re)connect first waits at most connect-timeout).
 *   write    SET key value EX ttl / DEL key: appended and flushed to the
 *            socket without waiting for the reply (read later, at the next
 *            lookup or opportunistically); at most SC_STORE_PENDING_MAX
 *            replies outstanding, beyond that writes are dropped.
 *   breaker  any I/O error, timeout or refused AUTH closes the connection;
 *            then lookups and writes are skipped (a full handshake, no wait)
 *            for 200 ms, doubling up to 2 s per further failure, and the
 *            next call after that reconnects.  A success resets it.
 *
 * Threat handled: a slow, stopped or unreachable store stalling handshakes.
 * The worst a handshake waits for the store is connect-timeout + timeout
 * (when it is the one that reconnects), timeout otherwise, and nothing
 * while the breaker is open.  The AUTH password goes to the socket only.
 */
#ifndef HSMKEYS_SC_STORE_H
#define HSMKEYS_SC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sc_conf.h"

#define SC_STORE_PENDING_MAX  64
#define SC_STORE_BACKOFF_MIN_MS 200
#define SC_STORE_BACKOFF_MAX_MS 2000

/* syslog levels, like hsmkeys_log_fn */
typedef void (*sc_log_fn)(void *arg, int level, const char *msg);

typedef struct sc_store sc_store;

typedef struct sc_store_stats {
    uint64_t hits, misses;       /* lookups answered */
    uint64_t skipped;            /* lookups/writes skipped: breaker open */
    uint64_t failures;           /* I/O errors, timeouts, refused AUTH */
    uint64_t writes, dropped;    /* writes sent; dropped (too many pending) */
    uint64_t connects;           /* connections made */
} sc_store_stats;

/* A store for conf (copied, password included).  log may be NULL. */
sc_store *sc_store_new(const sc_conf *conf, sc_log_fn log, void *log_arg);
void sc_store_up_ref(sc_store *st);
/* Drops a reference; the last closes the calling thread's connection and
 * wipes the password. */
void sc_store_free(sc_store *st);
const sc_conf *sc_store_conf(const sc_store *st);

/* Results of sc_store_get. */
enum { SC_STORE_HIT = 1, SC_STORE_MISS = 0, SC_STORE_DOWN = -1, SC_STORE_BIG = -2 };

/* Look key up; a value of at most cap bytes is copied to buf.  Returns
 * SC_STORE_HIT, SC_STORE_MISS, SC_STORE_DOWN (error, timeout or breaker
 * open), SC_STORE_BIG (value longer than cap: not ours). */
int sc_store_get(sc_store *st, const char *key, unsigned char *buf, size_t cap,
                 size_t *len);

/* Fire-and-forget writes (see above). */
void sc_store_put(sc_store *st, const char *key, const unsigned char *val,
                  size_t len, unsigned ttl_s);
void sc_store_del(sc_store *st, const char *key);

void sc_store_get_stats(const sc_store *st, sc_store_stats *out);

/* Configuration-time check, with its own connection: connect, AUTH, PING
 * within timeout_ms.  Returns 0 (answers), 1 (unreachable: the servers can
 * start, sessions are not shared until it answers), 2 (answers but refuses
 * us: wrong or missing password, or not Redis); msg says what happened. */
int sc_store_probe(const sc_conf *conf, unsigned timeout_ms, char *msg, size_t msglen);

#endif /* HSMKEYS_SC_STORE_H */
