/*
 * modenv.h - what a PKCS#11 module needs from its process, for messages.
 *
 * Some modules are configured by environment variables (SoftHSM2,
 * tpm2-pkcs11, p11-kit-client.so), one by init args (NSS softokn).  When
 * C_Initialize fails or no token shows, the cause is most often that the
 * server's process does not have them: nginx clears its workers' environment,
 * Apache and systemd start with their own.  These helpers name what applies
 * to the module at hand, and only that.
 */
#ifndef HSMKEYS_MODENV_H
#define HSMKEYS_MODENV_H

#include <stddef.h>
#include <p11-kit/pkcs11.h>

/* "; <hint>" for a failed C_Initialize of the module at `path` (rv its
 * result, init_args what was passed, may be NULL) into out; always
 * NUL-terminated, possibly empty. */
void hk_modenv_init_hint(const char *path, const char *init_args, CK_RV rv,
                         char *out, size_t outlen);

/* "; <hint>" when the module lists no matching token: the environment
 * variables it is configured by, or "" for a module without such. */
void hk_modenv_token_hint(const char *path, char *out, size_t outlen);

#endif /* HSMKEYS_MODENV_H */
