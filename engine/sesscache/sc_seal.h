/*
 * sc_seal.h - the sealed session cache's formats: session IDs that carry
 * their epoch, store keys, and sealed entries (AES-256-GCM).
 *
 * Owns: the byte layouts below and the checks on input.  Keys are passed in
 * (hsmkeys_cache_key gives them per epoch); nothing here touches a token or
 * the network.
 *
 *   session ID (32 B)   0x01 | epoch [8] big-endian | random [23]
 *   store key (text)    "hk1:" | hex(HMAC-SHA256(id_key(epoch), ID)[0..16])
 *   entry               0x01 | epoch [8] | expiry [8] (unix s) | nonce [12]
 *                       | AES-256-GCM(seal(epoch), DER session) | tag [16]
 *   associated data     "hsmkeys session cache v1" | 0x00 | entry[0..17]
 *                       | [len(domain)]16 | domain | [len(ID)]8 | ID
 *
 * Threat handled: the store and whoever reads it, its dumps or its network.
 * It never sees a session ID (only a keyed hash of it) or a session's
 * master secret (only ciphertext), and it cannot move an entry: the tag
 * covers the ID, the domain, the epoch and the expiry, so an entry copied
 * under another ID's key, written by another domain, edited, or kept past
 * its expiry fails sc_open.  Entries come from the store: sc_open reads
 * them as hostile input (lengths first, then the tag, then the session).
 */
#ifndef HSMKEYS_SC_SEAL_H
#define HSMKEYS_SC_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SC_KEY_LEN        32
#define SC_ID_LEN         32
#define SC_ID_VERSION     0x01
#define SC_ENTRY_VERSION  0x01
#define SC_NONCE_LEN      12
#define SC_TAG_LEN        16
#define SC_HDR_LEN        (1 + 8 + 8 + SC_NONCE_LEN)
#define SC_OVERHEAD       (SC_HDR_LEN + SC_TAG_LEN)
#define SC_STORE_KEY_PREFIX "hk1:"
#define SC_STORE_KEY_LEN  (4 + 32)        /* without the NUL */
#define SC_SESSION_MAX    (16 * 1024)     /* DER session, i.e. entry - overhead */
#define SC_ENTRY_MAX      (SC_SESSION_MAX + SC_OVERHEAD)
#define SC_LABEL          "hsmkeys session cache v1"

/* Results (sc_result_name gives the text used in log lines). */
enum {
    SC_OK         = 0,
    SC_E_MALFORMED = -1, /* too short, too long, or unknown version */
    SC_E_EPOCH    = -2,  /* entry's epoch differs from the ID's */
    SC_E_EXPIRED  = -3,  /* now >= the entry's expiry */
    SC_E_AUTH     = -4,  /* tag does not verify: edited, moved or foreign */
    SC_E_INTERNAL = -5,  /* OpenSSL failure or buffer too small */
    SC_E_NOTOURS  = -6   /* session ID not in this format */
};
const char *sc_result_name(int rc);

/* What an entry is bound to. */
typedef struct sc_binding {
    const unsigned char *id;
    size_t id_len;
    const char *domain;
    size_t domain_len;
    uint64_t epoch;
    int64_t expiry;      /* sc_seal: written; sc_open: ignored (read) */
} sc_binding;

/* A new session ID of `epoch` (random part from RAND_bytes).
 * Returns SC_OK or SC_E_INTERNAL. */
int sc_id_make(unsigned char id[SC_ID_LEN], uint64_t epoch);

/* The epoch carried by a session ID.  Returns SC_OK or SC_E_NOTOURS (other
 * length or version: an ID made by another server or an older format). */
int sc_id_epoch(const unsigned char *id, size_t id_len, uint64_t *epoch);

/* Store key of an ID under the epoch's id_key: SC_STORE_KEY_LEN characters
 * and a NUL.  Returns SC_OK or SC_E_INTERNAL. */
int sc_store_key(const unsigned char id_key[SC_KEY_LEN], const unsigned char *id,
                 size_t id_len, char out[SC_STORE_KEY_LEN + 1]);

/* Seal session bytes pt into out (out_cap >= pt_len + SC_OVERHEAD).  nonce
 * NULL: a random one (test vectors pass theirs).  Returns SC_OK,
 * SC_E_MALFORMED (pt_len 0 or > SC_SESSION_MAX, domain > 65535 or ID > 255
 * bytes), SC_E_INTERNAL. */
int sc_seal(const unsigned char seal_key[SC_KEY_LEN], const sc_binding *b,
            const unsigned char *nonce, const unsigned char *pt, size_t pt_len,
            unsigned char *out, size_t out_cap, size_t *out_len);

/* The clear header of an entry (no key needed): version checked, lengths
 * checked.  Returns SC_OK or SC_E_MALFORMED. */
int sc_entry_header(const unsigned char *e, size_t len, uint64_t *epoch,
                    int64_t *expiry);

/* Open an entry found under b's store key: the header must carry b->epoch
 * and an expiry after now; then the tag must verify over b.  Writes the
 * session bytes to out (out_cap >= len - SC_OVERHEAD).  Returns SC_OK,
 * SC_E_MALFORMED, SC_E_EPOCH, SC_E_EXPIRED, SC_E_AUTH, SC_E_INTERNAL;
 * on failure nothing of the plaintext is left in out. */
int sc_open(const unsigned char seal_key[SC_KEY_LEN], const sc_binding *b,
            int64_t now, const unsigned char *e, size_t len,
            unsigned char *out, size_t out_cap, size_t *out_len);

#endif /* HSMKEYS_SC_SEAL_H */
