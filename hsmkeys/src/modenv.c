/*
 * modenv.c - hints naming what a PKCS#11 module needs from its process
 * (see modenv.h).
 *
 * Layout: one table row per module family known to be configured by its
 * environment, matched on the file name of the module path.  Threat: a hint
 * must not leak configuration: it says whether each variable is set in this
 * process, never its value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "modenv.h"

struct modenv {
    const char *file;     /* substring of the module's file name */
    const char *what;     /* how the module is called in messages */
    const char *vars[3];  /* environment variables it reads */
    const char *extra;    /* what else must be true, or NULL */
};

static const struct modenv known[] = {
    { "libsofthsm2", "SoftHSM2", { "SOFTHSM2_CONF", NULL, NULL },
      "unset means /etc/softhsm/softhsm2.conf; its tokendir must be readable by the server's user" },
    { "libtpm2_pkcs11", "tpm2-pkcs11",
      { "TPM2_PKCS11_STORE", "TPM2_PKCS11_TCTI", "DBUS_SESSION_BUS_ADDRESS" },
      "a tabrmd TCTI needs tpm2-abrmd running (bus_type=session: on the bus "
      "DBUS_SESSION_BUS_ADDRESS names)" },
    { "p11-kit-client", "p11-kit-client.so", { "P11_KIT_SERVER_ADDRESS", NULL, NULL },
      "it names the socket of a running 'p11-kit server' (unset: $XDG_RUNTIME_DIR/p11-kit/pkcs11)" },
};

#define PASS_THROUGH "a server passes them on only if told to: nginx 'env NAME;' in the main " \
    "context, Apache an export in /etc/apache2/envvars (PassEnv reaches only CGI), systemd " \
    "Environment=NAME=VALUE in the unit"

static const struct modenv *lookup(const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    size_t i;
    base = base ? base + 1 : path;
    for (i = 0; base != NULL && i < sizeof known / sizeof known[0]; i++)
        if (strstr(base, known[i].file) != NULL)
            return &known[i];
    return NULL;
}

/* "; tpm2-pkcs11 reads A (set), B (not set) from the environment; ..." */
static void describe(const struct modenv *k, char *out, size_t outlen)
{
    size_t n, i;
    n = (size_t)snprintf(out, outlen, "; %s is configured by its environment: ", k->what);
    for (i = 0; i < 3 && k->vars[i] != NULL && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s (%s)", i ? ", " : "", k->vars[i],
                              getenv(k->vars[i]) ? "set" : "not set in this process");
    if (k->extra != NULL && n < outlen)
        n += (size_t)snprintf(out + n, outlen - n, "; %s", k->extra);
    if (n < outlen)
        snprintf(out + n, outlen - n, "; " PASS_THROUGH);
}

void hk_modenv_init_hint(const char *path, const char *init_args, CK_RV rv, char *out, size_t outlen)
{
    const struct modenv *k = lookup(path);
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path ? path : "";
    if (init_args != NULL)
        snprintf(out, outlen, "; check module-args (given to C_Initialize as its init args)");
    else if (strstr(base, "libsoftokn3") != NULL || rv == CKR_ARGUMENTS_BAD)
        snprintf(out, outlen, "; the module needs init args: set module-args (NSS softokn: "
                 "configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=)");
    else if (k != NULL)
        describe(k, out, outlen);
    else
        snprintf(out, outlen, "; see the module's documentation for the configuration file or "
                 "environment variables it needs (if environment: " PASS_THROUGH ")");
}

void hk_modenv_token_hint(const char *path, char *out, size_t outlen)
{
    const struct modenv *k = lookup(path);
    if (k != NULL)
        describe(k, out, outlen);
    else if (outlen > 0)
        out[0] = '\0';
}
