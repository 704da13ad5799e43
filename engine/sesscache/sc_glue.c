/*
 * sc_glue.c - the OpenSSL session cache callbacks.  See sc_glue.h.
 *
 * Layout: an sc_glue attachment in the SSL_CTX's ex_data: references to the
 * hsmkeys context and the store, the domain (bound into every entry), the
 * counters and the per-reason log clocks.  Callbacks find it through the
 * SSL's current SSL_CTX; a context switched in by SNI that has none simply
 * does not store (and its IDs miss).
 * Buffers: the DER session and the opened entry live on the stack only
 * for the callback and are wiped before it returns, as are the keys.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "sc_glue.h"
#include "sc_seal.h"

#define LOG_WARNING 4

enum { R_MALFORMED, R_EPOCH, R_EXPIRED, R_AUTH, R_SESSION, R_COUNT };

typedef struct sc_glue {
    hsmkeys_ctx *hk;
    sc_store *store;
    char *domain;
    size_t domain_len;
    sc_log_fn log;
    void *log_arg;
    int64_t last_log[R_COUNT];
    sc_glue_stats stats;
} sc_glue;

static int sc_ex_index = -1;
static pthread_once_t sc_ex_once = PTHREAD_ONCE_INIT;

#define ADD(field) __atomic_add_fetch(&(field), 1, __ATOMIC_RELAXED)

static void glue_free(sc_glue *g)
{
    if (g == NULL)
        return;
    hsmkeys_close(g->hk);
    sc_store_free(g->store);
    OPENSSL_free(g->domain);
    OPENSSL_free(g);
}

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                    void *argp)
{
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    glue_free(ptr);
}

static void ex_init(void)
{
    sc_ex_index = SSL_CTX_get_ex_new_index(0, "hsmkeys session cache", NULL, NULL, ex_free);
}

static sc_glue *glue_of(SSL *s)
{
    if (sc_ex_index < 0)
        return NULL;
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), sc_ex_index);
}

static void refusal(sc_glue *g, int reason, const char *what)
{
    int64_t t = (int64_t)time(NULL), last = __atomic_load_n(&g->last_log[reason], __ATOMIC_RELAXED);
    char msg[300];

    ADD(g->stats.refused);
    if (g->log == NULL || last == t ||
        !__atomic_compare_exchange_n(&g->last_log[reason], &last, t, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    snprintf(msg, sizeof msg, "session cache entry refused: %s; full handshake "
             "(at most one such line per second)", what);
    g->log(g->log_arg, LOG_WARNING, msg);
}

static int gen_id(SSL *s, unsigned char *id, unsigned int *id_len)
{
    sc_glue *g = glue_of(s);

    if (*id_len < SC_ID_LEN)
        return 0;
    if (g == NULL) /* an SNI context without the cache: a plain random ID */
        return RAND_bytes(id, (int)*id_len) == 1;
    *id_len = SC_ID_LEN;
    return sc_id_make(id, hsmkeys_current_epoch(g->hk)) == SC_OK;
}

static int new_cb(SSL *s, SSL_SESSION *sess)
{
    sc_glue *g = glue_of(s);
    unsigned char seal[HSMKEYS_CACHE_KEY_LEN], idk[HSMKEYS_CACHE_KEY_LEN];
    unsigned char der[SC_SESSION_MAX], entry[SC_ENTRY_MAX];
    char key[SC_STORE_KEY_LEN + 1];
    const unsigned char *id;
    unsigned int id_len;
    unsigned char *p = der;
    size_t elen = 0;
    uint64_t epoch;
    int64_t now = (int64_t)time(NULL), expiry;
    int n;
    sc_binding b;

    /* TLS 1.3 resumes by (stateless) ticket only; nothing to share. */
    if (g == NULL || SSL_version(s) >= TLS1_3_VERSION)
        return 0;
    id = SSL_SESSION_get_id(sess, &id_len);
    if (sc_id_epoch(id, id_len, &epoch) != SC_OK)
        return 0;
    expiry = (int64_t)SSL_SESSION_get_time(sess) + (int64_t)SSL_SESSION_get_timeout(sess);
    if (expiry <= now)
        return 0;
    n = i2d_SSL_SESSION(sess, NULL);
    if (n <= 0 || n > (int)sizeof der)
        return 0;
    if (hsmkeys_cache_key(g->hk, epoch, seal, idk) != HSMKEYS_OK) {
        ADD(g->stats.no_key);
        return 0;
    }
    b.id = id;
    b.id_len = id_len;
    b.domain = g->domain;
    b.domain_len = g->domain_len;
    b.epoch = epoch;
    b.expiry = expiry;
    if (i2d_SSL_SESSION(sess, &p) == n &&
        sc_store_key(idk, id, id_len, key) == SC_OK &&
        sc_seal(seal, &b, NULL, der, (size_t)n, entry, sizeof entry, &elen) == SC_OK) {
        sc_store_put(g->store, key, entry, elen, (unsigned)(expiry - now));
        ADD(g->stats.stored);
    }
    OPENSSL_cleanse(der, (size_t)n);
    OPENSSL_cleanse(seal, sizeof seal);
    OPENSSL_cleanse(idk, sizeof idk);
    return 0; /* we keep no reference */
}

static SSL_SESSION *get_cb(SSL *s, const unsigned char *id, int id_len, int *copy)
{
    sc_glue *g = glue_of(s);
    unsigned char seal[HSMKEYS_CACHE_KEY_LEN], idk[HSMKEYS_CACHE_KEY_LEN];
    unsigned char entry[SC_ENTRY_MAX], der[SC_ENTRY_MAX];
    char key[SC_STORE_KEY_LEN + 1];
    const unsigned char *p = der, *sid;
    unsigned int sid_len;
    SSL_SESSION *sess = NULL;
    size_t elen = 0, dlen = 0;
    uint64_t epoch;
    sc_binding b;
    int rc, krc;

    *copy = 0;
    if (g == NULL || id_len <= 0)
        return NULL;
    if (sc_id_epoch(id, (size_t)id_len, &epoch) != SC_OK) {
        ADD(g->stats.foreign_ids);
        return NULL;
    }
    krc = hsmkeys_cache_key(g->hk, epoch, seal, idk);
    if (krc != HSMKEYS_OK) {
        /* an epoch outside the window is refused here, before the store */
        if (krc == HSMKEYS_E_EXPIRED)
            ADD(g->stats.foreign_ids);
        else
            ADD(g->stats.no_key);
        return NULL;
    }
    if (sc_store_key(idk, id, (size_t)id_len, key) != SC_OK)
        goto out;
    rc = sc_store_get(g->store, key, entry, sizeof entry, &elen);
    if (rc == SC_STORE_BIG) {
        refusal(g, R_MALFORMED, "malformed entry (too long)");
        goto out;
    }
    if (rc != SC_STORE_HIT) {
        ADD(g->stats.missed);
        goto out;
    }
    b.id = id;
    b.id_len = (size_t)id_len;
    b.domain = g->domain;
    b.domain_len = g->domain_len;
    b.epoch = epoch;
    b.expiry = 0;
    rc = sc_open(seal, &b, (int64_t)time(NULL), entry, elen, der, sizeof der, &dlen);
    if (rc != SC_OK) {
        refusal(g, rc == SC_E_EPOCH ? R_EPOCH : rc == SC_E_EXPIRED ? R_EXPIRED
                   : rc == SC_E_AUTH ? R_AUTH : R_MALFORMED, sc_result_name(rc));
        goto out;
    }
    sess = d2i_SSL_SESSION(NULL, &p, (long)dlen);
    sid = sess != NULL ? SSL_SESSION_get_id(sess, &sid_len) : NULL;
    /* the tag already binds the ID; a session of another ID cannot be
     * sealed by us, but check what we hand to OpenSSL all the same */
    if (sess == NULL || sid_len != (unsigned)id_len || memcmp(sid, id, sid_len) != 0) {
        SSL_SESSION_free(sess);
        sess = NULL;
        refusal(g, R_SESSION, "sealed bytes are not this ID's session");
        goto out;
    }
    ADD(g->stats.resumed);
out:
    OPENSSL_cleanse(der, sizeof der);
    OPENSSL_cleanse(seal, sizeof seal);
    OPENSSL_cleanse(idk, sizeof idk);
    return sess;
}

static void remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    sc_glue *g = sc_ex_index >= 0 ? SSL_CTX_get_ex_data(ctx, sc_ex_index) : NULL;
    unsigned char seal[HSMKEYS_CACHE_KEY_LEN], idk[HSMKEYS_CACHE_KEY_LEN];
    char key[SC_STORE_KEY_LEN + 1];
    const unsigned char *id;
    unsigned int id_len;
    uint64_t epoch;

    if (g == NULL)
        return;
    id = SSL_SESSION_get_id(sess, &id_len);
    if (sc_id_epoch(id, id_len, &epoch) != SC_OK ||
        hsmkeys_cache_key(g->hk, epoch, seal, idk) != HSMKEYS_OK)
        return;
    if (sc_store_key(idk, id, id_len, key) == SC_OK)
        sc_store_del(g->store, key);
    OPENSSL_cleanse(seal, sizeof seal);
    OPENSSL_cleanse(idk, sizeof idk);
}

int sc_attach(SSL_CTX *ssl_ctx, hsmkeys_ctx *hk, const char *domain,
              sc_store *store, sc_log_fn log, void *log_arg,
              char *err, size_t errlen)
{
    sc_glue *g, *old;

    if (ssl_ctx == NULL || hk == NULL || domain == NULL || store == NULL) {
        snprintf(err, errlen, "missing argument");
        return -1;
    }
    /* configuration time, in a parent that forks the serving children: ask
     * without hsmkeys_cache_key, which would start the key maintainer here */
    if (!hsmkeys_session_cache_enabled(hk)) {
        snprintf(err, errlen, "the hsmkeys context was opened without "
                 "session-cache=yes");
        return -1;
    }
    pthread_once(&sc_ex_once, ex_init);
    if (sc_ex_index < 0 || (g = OPENSSL_zalloc(sizeof *g)) == NULL ||
        (g->domain = OPENSSL_strdup(domain)) == NULL) {
        if (sc_ex_index >= 0 && g != NULL)
            OPENSSL_free(g);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->domain_len = strlen(domain);
    hsmkeys_ctx_up_ref(hk);
    g->hk = hk;
    sc_store_up_ref(store);
    g->store = store;
    g->log = log;
    g->log_arg = log_arg;
    old = SSL_CTX_get_ex_data(ssl_ctx, sc_ex_index);
    if (SSL_CTX_set_ex_data(ssl_ctx, sc_ex_index, g) != 1) {
        glue_free(g);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    glue_free(old);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_SERVER |
                                   SSL_SESS_CACHE_NO_INTERNAL |
                                   SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_set_generate_session_id(ssl_ctx, gen_id);
    SSL_CTX_sess_set_new_cb(ssl_ctx, new_cb);
    SSL_CTX_sess_set_get_cb(ssl_ctx, get_cb);
    SSL_CTX_sess_set_remove_cb(ssl_ctx, remove_cb);
    return 0;
}

void sc_glue_get_stats(SSL_CTX *ssl_ctx, sc_glue_stats *out)
{
    sc_glue *g = sc_ex_index >= 0 ? SSL_CTX_get_ex_data(ssl_ctx, sc_ex_index) : NULL;

    memset(out, 0, sizeof *out);
    if (g == NULL)
        return;
    out->stored = __atomic_load_n(&g->stats.stored, __ATOMIC_RELAXED);
    out->resumed = __atomic_load_n(&g->stats.resumed, __ATOMIC_RELAXED);
    out->missed = __atomic_load_n(&g->stats.missed, __ATOMIC_RELAXED);
    out->refused = __atomic_load_n(&g->stats.refused, __ATOMIC_RELAXED);
    out->foreign_ids = __atomic_load_n(&g->stats.foreign_ids, __ATOMIC_RELAXED);
    out->no_key = __atomic_load_n(&g->stats.no_key, __ATOMIC_RELAXED);
}
