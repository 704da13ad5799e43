/*
 * hsmkeys.h - public API of libhsmkeys.
 *
 * libhsmkeys derives TLS session-ticket keys for a fleet of servers inside a
 * PKCS#11 token.  Every server's token holds the same non-extractable master
 * secret; time is cut into epochs; for each epoch every server computes, with
 * the token's HMAC, the same ticket keys (docs/DERIVATION.md).  Any server can
 * therefore resume any other server's tickets, with no key ever distributed.
 *
 * Conventions:
 *  - Every function returning int returns HSMKEYS_OK (0) or one of the
 *    negative hsmkeys_result codes listed in its comment.  On failure
 *    hsmkeys_last_error() gives a one-line message for this thread that says
 *    what is wrong and how to fix it.  It never contains key bytes or PINs.
 *  - Buffers are owned by the caller and have the sizes of the macros below.
 *    Key buffers filled by the library must be wiped by the caller
 *    (hsmkeys_wipe) once used.
 *  - All hsmkeys_ctx functions are safe to call from many threads at once.
 *    After fork() the child re-initialises PKCS#11 by itself on its first call.
 */
#ifndef HSMKEYS_H
#define HSMKEYS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HSMKEYS_VERSION_MAJOR 0
#define HSMKEYS_VERSION_MINOR 1
#define HSMKEYS_VERSION_PATCH 0
#define HSMKEYS_VERSION_STRING "0.1.0"
#define HSMKEYS_VERSION_NUMBER \
    (HSMKEYS_VERSION_MAJOR * 10000 + HSMKEYS_VERSION_MINOR * 100 + HSMKEYS_VERSION_PATCH)

/* Sizes of the key material handed to the caller (OpenSSL's ticket format). */
#define HSMKEYS_KEY_NAME_LEN  16
#define HSMKEYS_AES_KEY_LEN   32
#define HSMKEYS_HMAC_KEY_LEN  32

/* Schedule defaults and bounds, in seconds. */
#define HSMKEYS_DEFAULT_EPOCH_SECONDS     3600
#define HSMKEYS_DEFAULT_LIFETIME_SECONDS  7200
#define HSMKEYS_MAX_LIFETIME_SECONDS      (7 * 24 * 3600) /* RFC 8446 4.6.1 */

typedef enum hsmkeys_result {
    HSMKEYS_OK              =   0,
    HSMKEYS_E_INVALID       =  -1, /* bad argument or configuration value */
    HSMKEYS_E_NOMEM         =  -2, /* out of memory, or key memory cannot be locked */
    HSMKEYS_E_URI           =  -3, /* pkcs11: URI malformed or incomplete */
    HSMKEYS_E_PIN           =  -4, /* PIN source missing, unsafe permissions, empty */
    HSMKEYS_E_MODULE        =  -5, /* PKCS#11 module cannot be loaded or initialised */
    HSMKEYS_E_NO_TOKEN      =  -6, /* no token, or more than one, matches the URI */
    HSMKEYS_E_LOGIN         =  -7, /* login refused: wrong PIN, PIN locked */
    HSMKEYS_E_NO_MASTER     =  -8, /* no usable master key object matches the URI */
    HSMKEYS_E_UNSAFE_MASTER =  -9, /* master is readable or exportable: refused */
    HSMKEYS_E_TOKEN         = -10, /* a token operation failed (device error, removed) */
    HSMKEYS_E_FOREIGN       = -11, /* key name not made by this master and domain */
    HSMKEYS_E_EXPIRED       = -12, /* key name's epoch is outside the decrypt window */
    HSMKEYS_E_UNAVAILABLE   = -13, /* key not cached and the token is failing */
    HSMKEYS_E_MALFORMED     = -14, /* input in an unknown format or version */
    HSMKEYS_E_STATE         = -15  /* operation refused in the token's current state */
} hsmkeys_result;

/* Name of a result code, e.g. "HSMKEYS_E_URI"; never NULL. */
const char *hsmkeys_result_name(int result);

/* Message of the last failure in the calling thread ("" if none). */
const char *hsmkeys_last_error(void);

/* Runtime version string, e.g. "0.1.0". */
const char *hsmkeys_version(void);

/* Wipe memory in a way the compiler cannot drop. */
void hsmkeys_wipe(void *p, size_t len);

/* Secret memory for key bytes a caller holds (key lines it sends on, for
 * example): the library's own locked memory, as libsodium's sodium_malloc.
 * Each buffer is its own mapping, locked (mlock: never swapped), excluded
 * from core dumps, zeroed, and wiped before it is unmapped.  Page granular:
 * for a few long-lived buffers.  The lock is not inherited by a fork child.
 * Returns HSMKEYS_OK and *out, HSMKEYS_E_INVALID (out NULL or len 0) or
 * HSMKEYS_E_NOMEM (no memory, or RLIMIT_MEMLOCK too small: the message says
 * which and how to raise it); *out is NULL on failure. */
int hsmkeys_secure_alloc(size_t len, void **out);

/* Wipe and unmap a buffer of hsmkeys_secure_alloc; NULL is ignored.  A
 * pointer that did not come from hsmkeys_secure_alloc aborts the process. */
void hsmkeys_secure_free(void *p);

/* ---- configuration ------------------------------------------------------ */

typedef struct hsmkeys_config hsmkeys_config;

/* Returns HSMKEYS_OK or HSMKEYS_E_NOMEM. */
int hsmkeys_config_new(hsmkeys_config **out);
void hsmkeys_config_free(hsmkeys_config *cfg);

/*
 * Set one option by name, as a server directive would.  Options:
 *   uri           RFC 7512 URI of the master: "pkcs11:token=...;object=..."
 *                 (token label/serial/model, object label or id, and the
 *                 query attributes module-path= and pin-source=).  Required.
 *   domain        ticket domain: servers that resume each other's tickets
 *                 share it; another service must use another.  Required.
 *   epoch         epoch length; seconds or with suffix s, m, h, d.  [1h]
 *   lifetime      ticket lifetime, at most 7d.  [2h]
 *   module        PKCS#11 module path (overrides the URI's module-path).
 *   module-args   string passed as CK_C_INITIALIZE_ARGS.pReserved (NSS).
 *   pin-source    PIN file (overrides the URI's pin-source); must not be
 *                 readable by group or others.
 *   allow-extractable  "yes" accepts an EXTRACTABLE master (provisioning only).
 *   session-cache "yes": also derive the sealed session cache's keys of each
 *                 epoch (hsmkeys_cache_key).  [no]
 *   forward-erasable "yes": epoch keys also depend on a per-epoch state
 *                 the token keeps as a hash chain and destroys once the
 *                 epoch left the window (+1 epoch), so nobody can compute
 *                 them afterwards, even with the token and its PIN
 *                 (SECURITY.md).  Every server of the fleet sets the same;
 *                 the token needs the chain (hsmkeys-tool create
 *                 --forward-erasable, or a clone).  [no]
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID (unknown option or bad value),
 * HSMKEYS_E_URI (URI does not parse), HSMKEYS_E_NOMEM.
 */
int hsmkeys_config_set(hsmkeys_config *cfg, const char *name, const char *value);

/* Log levels follow syslog: */
#define HSMKEYS_LOG_ERR     3
#define HSMKEYS_LOG_WARNING 4
#define HSMKEYS_LOG_NOTICE  5
#define HSMKEYS_LOG_INFO    6
#define HSMKEYS_LOG_DEBUG   7

/* Log sink; the default writes "hsmkeys: ..." lines to stderr.  Messages
 * carry key names and epochs, never key bytes or PINs. */
typedef void (*hsmkeys_log_fn)(void *arg, int level, const char *msg);
void hsmkeys_config_set_log(hsmkeys_config *cfg, hsmkeys_log_fn fn, void *arg);

/* Clock in unix seconds; the default is time(NULL).  For tests and for
 * tools that print schedules.  It drives epochs only: the backoff after a
 * token failure (1 s doubling to 30 s) runs on the real monotonic clock. */
typedef int64_t (*hsmkeys_clock_fn)(void *arg);
void hsmkeys_config_set_clock(hsmkeys_config *cfg, hsmkeys_clock_fn fn, void *arg);

/* ---- context ------------------------------------------------------------ */

typedef struct hsmkeys_ctx hsmkeys_ctx;

/*
 * Load the module, find the token, log in with the PIN source, find the
 * master generations and check their attributes, and derive the keys of the
 * current window.  The configuration may be freed afterwards.
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID, HSMKEYS_E_URI, HSMKEYS_E_PIN,
 * HSMKEYS_E_MODULE, HSMKEYS_E_NO_TOKEN, HSMKEYS_E_LOGIN, HSMKEYS_E_NO_MASTER,
 * HSMKEYS_E_UNSAFE_MASTER, HSMKEYS_E_TOKEN, HSMKEYS_E_NOMEM.
 */
int hsmkeys_open(const hsmkeys_config *cfg, hsmkeys_ctx **out);

/* Take one more reference; hsmkeys_close drops one and frees on the last,
 * wiping every cached key. */
void hsmkeys_ctx_up_ref(hsmkeys_ctx *ctx);
void hsmkeys_close(hsmkeys_ctx *ctx);

/*
 * Key for encrypting a new ticket now: the current epoch's keys.
 * Returns HSMKEYS_OK or HSMKEYS_E_UNAVAILABLE (token failing and the key is
 * not cached: issue no ticket).
 */
int hsmkeys_encrypt_key(hsmkeys_ctx *ctx,
                        unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN]);

/*
 * Key for decrypting a ticket that carries `name`.  *renew is set to 1 when
 * the ticket should be replaced by one under the current key.
 * Returns HSMKEYS_OK, HSMKEYS_E_MALFORMED (unknown name version),
 * HSMKEYS_E_FOREIGN (other master or domain; no token call made),
 * HSMKEYS_E_EXPIRED (outside the window; no token call made),
 * HSMKEYS_E_UNAVAILABLE (not cached, and the token is failing or another
 * thread is using it: the handshake falls back to a full one).
 */
int hsmkeys_decrypt_key(hsmkeys_ctx *ctx,
                        const unsigned char name[HSMKEYS_KEY_NAME_LEN],
                        unsigned char aes[HSMKEYS_AES_KEY_LEN],
                        unsigned char hmac[HSMKEYS_HMAC_KEY_LEN],
                        int *renew);

/*
 * Keys of an explicit epoch (under the generation active in it), for feeders
 * such as the HAProxy one.  The epoch must lie in [current - window,
 * current + 1].  Reads the cache; on a miss it waits (at most 30 s) for the
 * maintainer: never call it from a thread that serves connections.
 * Returns HSMKEYS_OK, HSMKEYS_E_EXPIRED, HSMKEYS_E_UNAVAILABLE, HSMKEYS_E_TOKEN.
 */
int hsmkeys_epoch_key(hsmkeys_ctx *ctx, uint64_t epoch,
                      unsigned char name[HSMKEYS_KEY_NAME_LEN],
                      unsigned char aes[HSMKEYS_AES_KEY_LEN],
                      unsigned char hmac[HSMKEYS_HMAC_KEY_LEN]);

/* ---- key maintenance ----------------------------------------------------
 *
 * All token work of a context after hsmkeys_open() belongs to one key
 * maintainer thread per process: it derives the keys of the whole decrypt
 * window and the next epoch ahead of need, re-reads the token's master
 * generations every cycle (a rotation or a destroyed generation takes
 * effect in running servers), retries a failing token with backoff (per
 * generation), and wipes keys that left the window, also while the token
 * is down.  Handshakes (hsmkeys_encrypt_key, hsmkeys_decrypt_key, the
 * OpenSSL callback) only read the cache and never call or wait for the
 * token: a miss gives a full handshake or no ticket, and wakes the
 * maintainer.  The log function is called from the maintainer thread.
 */

/*
 * Start the maintainer of ctx in the calling process (idempotent; a child
 * after fork() needs its own: servers call this from their init-worker /
 * child-init hooks; the first encrypt/decrypt call in a process starts it
 * otherwise).  Then wait at most wait_ms for the current epoch's encryption
 * key to be cached (0: do not wait).
 * Returns HSMKEYS_OK, HSMKEYS_E_UNAVAILABLE (running, but no current key
 * after wait_ms: the token is failing or slow), HSMKEYS_E_NOMEM (no thread).
 */
int hsmkeys_start(hsmkeys_ctx *ctx, unsigned wait_ms);

/*
 * Wipe every cached key of ctx in this process now.  For a parent that
 * forks serving children but serves nothing itself (nginx's master,
 * Apache's parent): it then holds no key bytes between reloads, and each
 * child's maintainer derives its own.  Needs no token.
 */
void hsmkeys_forget(hsmkeys_ctx *ctx);

/*
 * Wake the maintainer (starting it if needed) and wait, at most 30 s, until
 * it has completed a maintenance cycle begun after this call.  For tools,
 * tests and benchmarks, never for a thread that serves connections.
 * Returns HSMKEYS_OK (current and next epoch cached), HSMKEYS_E_UNAVAILABLE,
 * HSMKEYS_E_TOKEN, HSMKEYS_E_NOMEM.
 */
int hsmkeys_refresh(hsmkeys_ctx *ctx);

/*
 * Keys of the sealed shared session cache for `epoch` (configuration option
 * session-cache=yes makes the maintainer derive them beside the ticket keys,
 * docs/DERIVATION.md "session cache keys"): `seal` is an AES-256-GCM key for
 * the entries of that epoch, `id_key` an HMAC-SHA256 key for the store keys.
 * From the cache only: never calls or waits for the token.
 * Returns HSMKEYS_OK, HSMKEYS_E_INVALID (session-cache not enabled),
 * HSMKEYS_E_EXPIRED (epoch outside [current - window, current + 1]),
 * HSMKEYS_E_UNAVAILABLE (not cached yet, or the token is failing).
 */
#define HSMKEYS_CACHE_KEY_LEN 32
/* 1 if ctx was opened with session-cache=yes, else 0.  Never touches the
 * token or the maintainer: for configuration-time checks (hsmkeys_cache_key,
 * like every serving call, starts the maintainer in the calling process,
 * which a parent that forks serving children must not do). */
int hsmkeys_session_cache_enabled(const hsmkeys_ctx *ctx);
int hsmkeys_cache_key(hsmkeys_ctx *ctx, uint64_t epoch,
                      unsigned char seal[HSMKEYS_CACHE_KEY_LEN],
                      unsigned char id_key[HSMKEYS_CACHE_KEY_LEN]);

/* Current epoch number, and the schedule the context uses. */
uint64_t hsmkeys_current_epoch(const hsmkeys_ctx *ctx);
int64_t hsmkeys_epoch_seconds(const hsmkeys_ctx *ctx);
int64_t hsmkeys_lifetime_seconds(const hsmkeys_ctx *ctx);
/* Number of past epochs still decrypted: ceil(lifetime / epoch). */
unsigned hsmkeys_window_past(const hsmkeys_ctx *ctx);

/* Parse a key name as sent by a client.  Returns HSMKEYS_OK and the epoch,
 * or HSMKEYS_E_MALFORMED if it is not an hsmkeys v1 name.  Needs no context:
 * the probe uses it on names seen on the wire. */
int hsmkeys_name_epoch(const unsigned char name[HSMKEYS_KEY_NAME_LEN], uint64_t *epoch);

typedef struct hsmkeys_stats {
    uint64_t tickets_issued;      /* encryption keys handed out */
    uint64_t tickets_resumed;     /* decryption keys handed out */
    uint64_t tickets_renewed;     /* ... of which with renew set */
    uint64_t refused_foreign;     /* names of another master or domain */
    uint64_t refused_window;      /* names outside the window */
    uint64_t refused_unavailable; /* key needed while the token was failing */
    uint64_t token_derivations;   /* epoch keys derived by the token */
    uint64_t token_calls;         /* PKCS#11 calls made after open (exact) */
    uint64_t token_errors;        /* failed token operations */
} hsmkeys_stats;

/* Kept for callers built before hsmkeys_get_metrics; new code calls
 * hsmkeys_get_metrics(ctx, &m, sizeof m), whose first fields are these
 * counters, in this order.  hsmkeys_stats is frozen: it never grows (a
 * struct filled without a size would overrun an older caller's), new
 * counters are added at the end of hsmkeys_metrics only.  A caller that
 * holds an hsmkeys_stats may also pass it to hsmkeys_get_metrics with
 * size = sizeof(hsmkeys_stats): exactly those bytes are written. */
void hsmkeys_get_stats(const hsmkeys_ctx *ctx, hsmkeys_stats *out);

/* ---- metrics (Prometheus text format) -----------------------------------
 *
 * A snapshot of one context, versioned by size: a caller passes sizeof of
 * the struct it was built with; the library fills what both know and zeroes
 * the rest (fields are only ever added at the end).  This is the documented
 * way to read a context's counters (hsmkeys_get_stats is the frozen v1).  Servers with several
 * processes (nginx workers, Apache children) add their snapshots up with
 * hsmkeys_metrics_add() and render the sum: every integration renders with
 * hsmkeys_metrics_render(), so the names are the same everywhere.
 */
#define HSMKEYS_METRICS_BUCKETS 12   /* derivation duration histogram */
#define HSMKEYS_TAG_LEN 9            /* public tag of a (master, domain) */

typedef struct hsmkeys_metrics {
    uint64_t tickets_issued;      /* hsmkeys_stats' counters, as there */
    uint64_t tickets_resumed;
    uint64_t tickets_renewed;
    uint64_t refused_foreign;
    uint64_t refused_window;
    uint64_t refused_unavailable;
    uint64_t token_derivations;
    uint64_t token_calls;
    uint64_t token_errors;
    /* derivations by duration: [i] counts those <= bound i (not cumulative;
     * bounds in hsmkeys_metrics_bucket_seconds), [BUCKETS-1] the rest */
    uint64_t derivation_buckets[HSMKEYS_METRICS_BUCKETS];
    uint64_t derivation_nanoseconds;  /* sum over all derivations */
    uint64_t epoch;               /* current epoch number */
    int64_t epoch_seconds;        /* epoch length */
    int64_t encrypt_key_age_seconds; /* now - start of the encrypting key's
                                        epoch; -1: no encryption key */
    uint32_t token_up;            /* 1: the last token operation worked */
    uint32_t generation;          /* active master generation */
    unsigned char tag[HSMKEYS_TAG_LEN]; /* its public tag (in key names) */
    char domain[256];             /* ticket domain, NUL-terminated */
} hsmkeys_metrics;

/* Snapshot of ctx (never calls or waits for the token).  size: sizeof the
 * caller's hsmkeys_metrics.  Returns HSMKEYS_OK or HSMKEYS_E_INVALID. */
int hsmkeys_get_metrics(hsmkeys_ctx *ctx, hsmkeys_metrics *out, size_t size);

/* Upper bound (seconds) of histogram bucket i < HSMKEYS_METRICS_BUCKETS - 1. */
double hsmkeys_metrics_bucket_seconds(unsigned i);

/* Index of the bucket of a derivation that took `ns` nanoseconds. */
unsigned hsmkeys_metrics_bucket_of(uint64_t ns);

/* sum += m: counters and buckets add up; token_up is the minimum (a server
 * is up when every process is), epoch and key age the maximum; the labels
 * (domain, tag, generation) come from m when sum has none yet. */
void hsmkeys_metrics_add(hsmkeys_metrics *sum, const hsmkeys_metrics *m);

/*
 * Render n snapshots (distinct domains) in the Prometheus text exposition
 * format 0.0.4 into buf (len bytes, NUL-terminated when len > 0).  Returns
 * the length of the whole text; when that is >= len the output was cut:
 * call again with a larger buffer.  Names: hsmkeys_tickets_{issued,resumed,
 * renewed}_total, hsmkeys_tickets_refused_total{reason}, hsmkeys_token_
 * {calls,derivations,errors}_total, hsmkeys_token_up, hsmkeys_epoch,
 * hsmkeys_epoch_length_seconds, hsmkeys_encrypt_key_age_seconds,
 * hsmkeys_derivation_duration_seconds (histogram) and hsmkeys_info{tag,
 * generation}; every series carries {domain}.
 */
size_t hsmkeys_metrics_render(const hsmkeys_metrics *m, size_t n, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* HSMKEYS_H */
