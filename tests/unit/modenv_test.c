/* modenv_test.c - hsmkeys/src/modenv.c: which hint a module gets. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "modenv.h"

int main(void)
{
    char h[800];

    T_CASE("init args are suggested only for softokn or CKR_ARGUMENTS_BAD") {
        hk_modenv_init_hint("/usr/lib/x86_64-linux-gnu/libsoftokn3.so", NULL, CKR_GENERAL_ERROR, h, sizeof h);
        T_CONTAINS(h, "needs init args: set module-args");
        hk_modenv_init_hint("/opt/vendor/libvendor.so", NULL, CKR_ARGUMENTS_BAD, h, sizeof h);
        T_CONTAINS(h, "set module-args");
        hk_modenv_init_hint("/opt/vendor/libvendor.so", NULL, CKR_GENERAL_ERROR, h, sizeof h);
        T_TRUE(strstr(h, "module-args") == NULL && strstr(h, "init args") == NULL);
        T_CONTAINS(h, "module's documentation");
        T_CONTAINS(h, "nginx 'env NAME;'");
        hk_modenv_init_hint("/opt/vendor/libvendor.so", "x=1", CKR_GENERAL_ERROR, h, sizeof h);
        T_CONTAINS(h, "check module-args");
    }
    T_CASE("environment-configured modules: each variable, set or not, never its value") {
        setenv("TPM2_PKCS11_STORE", "/secret/path/store", 1);
        unsetenv("TPM2_PKCS11_TCTI");
        hk_modenv_init_hint("/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so", NULL,
                            CKR_GENERAL_ERROR, h, sizeof h);
        T_CONTAINS(h, "tpm2-pkcs11 is configured by its environment");
        T_CONTAINS(h, "TPM2_PKCS11_STORE (set)");
        T_CONTAINS(h, "TPM2_PKCS11_TCTI (not set in this process)");
        T_CONTAINS(h, "DBUS_SESSION_BUS_ADDRESS");
        T_CONTAINS(h, "/etc/apache2/envvars");
        T_CONTAINS(h, "Environment=");
        T_TRUE(strstr(h, "/secret/path") == NULL);
        T_TRUE(strstr(h, "init args") == NULL);
        hk_modenv_init_hint("/usr/lib/softhsm/libsofthsm2.so", NULL, CKR_GENERAL_ERROR, h, sizeof h);
        T_CONTAINS(h, "SOFTHSM2_CONF");
    }
    T_CASE("no-token hint: p11-kit-client.so names P11_KIT_SERVER_ADDRESS; others get none") {
        unsetenv("P11_KIT_SERVER_ADDRESS");
        hk_modenv_token_hint("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so", h, sizeof h);
        T_CONTAINS(h, "P11_KIT_SERVER_ADDRESS (not set in this process)");
        T_CONTAINS(h, "p11-kit server");
        hk_modenv_token_hint("/opt/vendor/libvendor.so", h, sizeof h);
        T_EQ_STR(h, "");
    }
    T_CASE("a short buffer is truncated, still terminated") {
        hk_modenv_init_hint("/usr/lib/softhsm/libsofthsm2.so", NULL, CKR_GENERAL_ERROR, h, 20);
        T_EQ_INT(strlen(h), 19);
    }
    return t_done();
}
