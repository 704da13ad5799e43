/*
 * fuzz_env.h - a real hsmkeys context for the fuzz targets: a throwaway
 * SoftHSM2 token with the known test master, opened once per fuzzing
 * process with a frozen clock (so runs are reproducible), logging nowhere.
 */
#ifndef HSMKEYS_FUZZ_ENV_H
#define HSMKEYS_FUZZ_ENV_H

#include <stddef.h>
#include <stdint.h>
#include <hsmkeys/hsmkeys.h>

#define FZ_NOW ((int64_t)1700000000)

typedef struct fz_env {
    hsmkeys_ctx *ctx;
    unsigned char tag[9];   /* the fleet's key-name tag */
    uint64_t epoch;         /* current epoch (frozen) */
    unsigned window;        /* past epochs decrypted */
} fz_env;

/* Set up once; aborts with a message when the token cannot be made. */
fz_env *fz_env_get(void);

/* Abort (a finding) with a message when cond is false. */
void fz_check(int cond, const char *what);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
