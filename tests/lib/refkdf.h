/*
 * refkdf.h - a reference implementation of docs/DERIVATION.md for tests:
 * SP 800-108 counter mode on OpenSSL's HMAC, written apart from
 * hsmkeys/src/kdf.c so the two check each other.
 */
#ifndef HSMKEYS_TEST_REFKDF_H
#define HSMKEYS_TEST_REFKDF_H

#include <stddef.h>
#include <stdint.h>

/* K(i) = HMAC-SHA256(key, [i]32 || label || 0x00 || context || [8n]32). */
void t_ref_kdf(const unsigned char *key, size_t key_len, const char *label,
               const unsigned char *context, size_t context_len, unsigned char *out, size_t n);

/* The 64 key bytes of `epoch` (label "hsmkeys ticket key v1", context
 * domain || [epoch]64) for a 32-byte master. */
void t_ref_epoch_keys(const unsigned char master[32], const char *domain, uint64_t epoch,
                      unsigned char out[64]);

#endif
