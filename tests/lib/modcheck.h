/*
 * modcheck.h - checks that any PKCS#11 module must pass under hsmkeys, shared
 * by the helpers of tests/modules (nss-token for NSS softokn, token-check for
 * tpm2-pkcs11 or any other module named by a URI).
 *
 * Each opens contexts through the public API with an injected clock, prints
 * "key=value" / one line per item for the shell tests, and never prints key
 * bytes (they are compared, then wiped).
 */
#ifndef HSMKEYS_TEST_MODCHECK_H
#define HSMKEYS_TEST_MODCHECK_H

#include <stdint.h>
#include <hsmkeys/hsmkeys.h>

/* hsmkeys_open on uri (module_args, epoch, lifetime may be NULL; clock NULL
 * for the real one).  NULL on failure with the code in *rc. */
hsmkeys_ctx *mc_open(const char *uri, const char *module_args, const char *domain,
                     const char *epoch, const char *lifetime, int64_t *clock, int *rc);

/* Derive every vector of `seed` in the vectors file on uri; prints one line
 * each and "vectors=GOOD/CHECKED".  Returns 0 if all matched (and >0). */
int mc_vectors(const char *uri, const char *module_args, const char *file, const char *seed);

/* Median time of one epoch derivation (n past epochs, 1 s epochs): prints
 * "bench WHAT samples=.. median_us=.. p10_us=.. p90_us=.. token_calls_per_epoch=..".
 * Returns 1 if every sample was one token derivation. */
int mc_bench(const char *what, const char *uri, const char *module_args, int n);

#endif /* HSMKEYS_TEST_MODCHECK_H */
