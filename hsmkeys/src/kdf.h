/*
 * kdf.h - the derivation of docs/DERIVATION.md: NIST SP 800-108 counter mode
 * on a PRF (HMAC-SHA256 computed by the token with the master), and the
 * 16-byte key name format.
 *
 *   K(i) = PRF(M, [i]32 || Label || 0x00 || Context || [L]32)
 *
 * Key name (public, sent in clear by clients):
 *   byte 0      version (HK_NAME_VERSION)
 *   bytes 1-9   tag: first 9 bytes of the SP 800-108 output for label
 *               "hsmkeys key name v1" and context = domain: identifies the
 *               (master generation, domain) pair and reveals nothing of it
 *   bytes 10-15 epoch, big-endian uint48
 */
#ifndef HSMKEYS_KDF_H
#define HSMKEYS_KDF_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define HK_NAME_VERSION     0x01
#define HK_TAG_LEN          9
#define HK_EPOCH_MAX        ((UINT64_C(1) << 48) - 1)
#define HK_EPOCH_KEYS_LEN   64 /* AES-256 key || HMAC-SHA256 key */
#define HK_CHECK_VALUE_LEN  8

#define HK_LABEL_TICKET     "hsmkeys ticket key v1"
#define HK_LABEL_NAME       "hsmkeys key name v1"
#define HK_LABEL_CHECK      "hsmkeys key check value v1"
#define HK_LABEL_CACHE      "hsmkeys session cache v1"
#define HK_DOMAIN_MAX       255

/* Forward-erasable mode (docs/DERIVATION.md, "Forward-erasable epochs"):
 * the master's part and the state's part of the epoch keys, the chain step,
 * the names (another tag, so the two modes never take each other's
 * tickets) and the epoch check value (both modes). */
#define HK_LABEL_FE_TICKET  "hsmkeys ticket key v2"
#define HK_LABEL_FE_CACHE   "hsmkeys session cache v2"
#define HK_LABEL_ST_TICKET  "hsmkeys state ticket key v1"
#define HK_LABEL_ST_CACHE   "hsmkeys state session cache v1"
#define HK_LABEL_FE_NAME    "hsmkeys key name v2"
#define HK_LABEL_CHAIN      "hsmkeys chain v1"
#define HK_LABEL_EPOCH_KCV  "hsmkeys epoch check value v1"

/* The PRF: HMAC-SHA256 keyed with the master.  Returns HSMKEYS_OK or a code. */
typedef int (*hk_prf_fn)(void *arg, const unsigned char *msg, size_t len,
                         unsigned char out[32]);

/* SP 800-108 counter mode: out_len bytes (multiple of 32 up to 64... any
 * length up to 255*32) for label and context. */
int hk_kdf_counter(hk_prf_fn prf, void *arg, const char *label,
                   const unsigned char *context, size_t context_len,
                   unsigned char *out, size_t out_len) HK_WARN_UNUSED;

/* Epoch keys: `label` (HK_LABEL_TICKET: AES key || HMAC key; HK_LABEL_CACHE:
 * session-cache seal key || id key), context = domain || [epoch]64. */
int hk_kdf_epoch_keys(hk_prf_fn prf, void *arg, const char *label, const char *domain,
                      uint64_t epoch, unsigned char out[HK_EPOCH_KEYS_LEN]) HK_WARN_UNUSED;

/* Name tag: label HK_LABEL_NAME, context = domain. */
int hk_kdf_name_tag(hk_prf_fn prf, void *arg, const char *domain,
                    unsigned char tag[HK_TAG_LEN]) HK_WARN_UNUSED;

/* Name tag under another label (HK_LABEL_FE_NAME in forward-erasable mode). */
int hk_kdf_name_tag_label(hk_prf_fn prf, void *arg, const char *label, const char *domain,
                          unsigned char tag[HK_TAG_LEN]) HK_WARN_UNUSED;

/* Check value of one epoch's keys (both modes): the first 8 bytes of
 * HMAC-SHA256(keys, HK_LABEL_EPOCH_KCV), computed in memory; it reveals
 * nothing of the keys and lets operators compare servers. */
int hk_epoch_check_value(const unsigned char keys[HK_EPOCH_KEYS_LEN],
                         unsigned char kcv[HK_CHECK_VALUE_LEN]) HK_WARN_UNUSED;

/* Key check value of a master (same on every token holding it): label
 * HK_LABEL_CHECK, empty context, 8 bytes. */
int hk_kdf_check_value(hk_prf_fn prf, void *arg,
                       unsigned char kcv[HK_CHECK_VALUE_LEN]) HK_WARN_UNUSED;

void hk_name_encode(const unsigned char tag[HK_TAG_LEN], uint64_t epoch,
                    unsigned char name[16]);
/* Returns HSMKEYS_OK or HSMKEYS_E_MALFORMED (version byte). */
int hk_name_decode(const unsigned char name[16], unsigned char tag[HK_TAG_LEN],
                   uint64_t *epoch);

#endif /* HSMKEYS_KDF_H */
