/*
 * sc_seal.c - session IDs, store keys and sealed entries.  See sc_seal.h
 * for the layouts and the threat.
 *
 * AES-256-GCM with a random 96-bit nonce per entry: each epoch has its own
 * key, and a fleet writes far fewer than 2^32 entries per key, so random
 * nonces stay well inside GCM's collision bound.  The cipher and the MAC
 * are fetched once per process (a fetch per handshake costs a provider
 * lookup).  Plaintext copies are wiped on every failure path.
 */
#include <string.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sc_seal.h"

static EVP_CIPHER *sc_gcm;
static EVP_MAC *sc_hmac;
static pthread_once_t sc_fetch_once = PTHREAD_ONCE_INIT;

static void sc_fetch(void)
{
    sc_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    sc_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int sc_ready(void)
{
    pthread_once(&sc_fetch_once, sc_fetch);
    return sc_gcm != NULL && sc_hmac != NULL;
}

const char *sc_result_name(int rc)
{
    switch (rc) {
    case SC_OK:          return "ok";
    case SC_E_MALFORMED: return "malformed entry";
    case SC_E_EPOCH:     return "entry of another epoch than its session ID";
    case SC_E_EXPIRED:   return "expired entry";
    case SC_E_AUTH:      return "entry does not authenticate (edited, moved "
                                "to another session ID, or of another domain)";
    case SC_E_INTERNAL:  return "internal error";
    case SC_E_NOTOURS:   return "session ID not made by hsmkeys";
    }
    return "unknown result";
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int sc_id_make(unsigned char id[SC_ID_LEN], uint64_t epoch)
{
    id[0] = SC_ID_VERSION;
    put64(id + 1, epoch);
    return RAND_bytes(id + 9, SC_ID_LEN - 9) == 1 ? SC_OK : SC_E_INTERNAL;
}

int sc_id_epoch(const unsigned char *id, size_t id_len, uint64_t *epoch)
{
    if (id == NULL || id_len != SC_ID_LEN || id[0] != SC_ID_VERSION)
        return SC_E_NOTOURS;
    *epoch = get64(id + 1);
    return SC_OK;
}

int sc_store_key(const unsigned char id_key[SC_KEY_LEN], const unsigned char *id,
                 size_t id_len, char out[SC_STORE_KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    size_t maclen = 0;
    OSSL_PARAM params[2];
    EVP_MAC_CTX *m;
    int ok;

    if (!sc_ready() || (m = EVP_MAC_CTX_new(sc_hmac)) == NULL)
        return SC_E_INTERNAL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_MAC_init(m, id_key, SC_KEY_LEN, params) == 1 &&
         EVP_MAC_update(m, id, id_len) == 1 &&
         EVP_MAC_final(m, mac, &maclen, sizeof mac) == 1 && maclen == sizeof mac;
    EVP_MAC_CTX_free(m);
    if (!ok)
        return SC_E_INTERNAL;
    memcpy(out, SC_STORE_KEY_PREFIX, 4);
    for (size_t i = 0; i < 16; i++) {
        out[4 + 2 * i] = hex[mac[i] >> 4];
        out[5 + 2 * i] = hex[mac[i] & 15];
    }
    out[SC_STORE_KEY_LEN] = '\0';
    return SC_OK;
}

/* Feed the associated data (see the header) to an initialised GCM context. */
static int sc_aad(EVP_CIPHER_CTX *c, const unsigned char hdr[17], const sc_binding *b)
{
    unsigned char dl[2] = { (unsigned char)(b->domain_len >> 8), (unsigned char)b->domain_len };
    unsigned char il = (unsigned char)b->id_len;
    int n;

    return EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)SC_LABEL, sizeof SC_LABEL) == 1 &&
           EVP_CipherUpdate(c, NULL, &n, hdr, 17) == 1 &&
           EVP_CipherUpdate(c, NULL, &n, dl, 2) == 1 &&
           (b->domain_len == 0 ||
            EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)b->domain, (int)b->domain_len) == 1) &&
           EVP_CipherUpdate(c, NULL, &n, &il, 1) == 1 &&
           EVP_CipherUpdate(c, NULL, &n, b->id, (int)b->id_len) == 1;
}

static int binding_ok(const sc_binding *b)
{
    return b != NULL && b->id != NULL && b->id_len > 0 && b->id_len <= 255 &&
           (b->domain != NULL || b->domain_len == 0) && b->domain_len <= 0xffff;
}

int sc_seal(const unsigned char seal_key[SC_KEY_LEN], const sc_binding *b,
            const unsigned char *nonce, const unsigned char *pt, size_t pt_len,
            unsigned char *out, size_t out_cap, size_t *out_len)
{
    EVP_CIPHER_CTX *c;
    unsigned char *n = out + 17;
    int len = 0, fin = 0, ok;

    if (!binding_ok(b) || pt == NULL || pt_len == 0 || pt_len > SC_SESSION_MAX)
        return SC_E_MALFORMED;
    if (out_cap < pt_len + SC_OVERHEAD || !sc_ready())
        return SC_E_INTERNAL;
    out[0] = SC_ENTRY_VERSION;
    put64(out + 1, b->epoch);
    put64(out + 9, (uint64_t)b->expiry);
    if (nonce != NULL)
        memcpy(n, nonce, SC_NONCE_LEN);
    else if (RAND_bytes(n, SC_NONCE_LEN) != 1)
        return SC_E_INTERNAL;
    if ((c = EVP_CIPHER_CTX_new()) == NULL)
        return SC_E_INTERNAL;
    ok = EVP_EncryptInit_ex2(c, sc_gcm, seal_key, n, NULL) == 1 &&
         sc_aad(c, out, b) &&
         EVP_EncryptUpdate(c, out + SC_HDR_LEN, &len, pt, (int)pt_len) == 1 &&
         EVP_EncryptFinal_ex(c, out + SC_HDR_LEN + len, &fin) == 1 &&
         (size_t)(len + fin) == pt_len &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SC_TAG_LEN,
                             out + SC_HDR_LEN + pt_len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(out, out_cap);
        return SC_E_INTERNAL;
    }
    *out_len = pt_len + SC_OVERHEAD;
    return SC_OK;
}

int sc_entry_header(const unsigned char *e, size_t len, uint64_t *epoch,
                    int64_t *expiry)
{
    if (e == NULL || len <= SC_OVERHEAD || len > SC_ENTRY_MAX || e[0] != SC_ENTRY_VERSION)
        return SC_E_MALFORMED;
    *epoch = get64(e + 1);
    *expiry = (int64_t)get64(e + 9);
    return SC_OK;
}

int sc_open(const unsigned char seal_key[SC_KEY_LEN], const sc_binding *b,
            int64_t now, const unsigned char *e, size_t len,
            unsigned char *out, size_t out_cap, size_t *out_len)
{
    EVP_CIPHER_CTX *c;
    uint64_t epoch;
    int64_t expiry;
    size_t ct_len;
    int n = 0, fin = 0, ok;
    int rc = sc_entry_header(e, len, &epoch, &expiry);

    if (rc != SC_OK)
        return rc;
    if (!binding_ok(b))
        return SC_E_MALFORMED;
    if (epoch != b->epoch)
        return SC_E_EPOCH;
    if (expiry <= now)
        return SC_E_EXPIRED;
    ct_len = len - SC_OVERHEAD;
    if (out_cap < ct_len || !sc_ready())
        return SC_E_INTERNAL;
    if ((c = EVP_CIPHER_CTX_new()) == NULL)
        return SC_E_INTERNAL;
    ok = EVP_DecryptInit_ex2(c, sc_gcm, seal_key, e + 17, NULL) == 1 &&
         sc_aad(c, e, b) &&
         EVP_DecryptUpdate(c, out, &n, e + SC_HDR_LEN, (int)ct_len) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SC_TAG_LEN,
                             (void *)(e + SC_HDR_LEN + ct_len)) == 1;
    rc = ok ? SC_OK : SC_E_INTERNAL;
    if (ok && (EVP_DecryptFinal_ex(c, out + n, &fin) != 1 || (size_t)(n + fin) != ct_len))
        rc = SC_E_AUTH;
    EVP_CIPHER_CTX_free(c);
    if (rc != SC_OK) {
        OPENSSL_cleanse(out, ct_len);
        return rc;
    }
    *out_len = ct_len;
    return SC_OK;
}
