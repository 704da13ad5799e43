/*
 * engine_key.c - a TLS server whose private key lives in the token, used
 * through libp11's pkcs11 engine (libengine-pkcs11-openssl), for item 2.
 *
 * The key pairs are generated inside a throwaway SoftHSM2 token
 * (C_GenerateKeyPair: private key SENSITIVE, not EXTRACTABLE) and never
 * leave it; the self-signed certificate is signed by the token too.  The
 * PIN goes from the 0600 pin file to the engine's PIN control in locked
 * memory and is wiped by hk_secret_free.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/engine.h>
#include <openssl/x509.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "bench.h"
#include "p11.h"
#include "pin.h"
#include "tls.h"

static int find_slot(CK_FUNCTION_LIST_PTR f, const char *token, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    size_t len = strlen(token);
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    for (i = 0; i < n; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, token, len) == 0 &&
            (len == 32 || ti.label[len] == ' ')) {
            *slot = slots[i];
            return 0;
        }
    }
    return -1;
}

static CK_RV gen_pair(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, int rsa, const char *label)
{
    static const unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    static const unsigned char e65537[] = { 0x01, 0x00, 0x01 };
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    CK_MECHANISM mech = { rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_OBJECT_HANDLE pub, priv;
    CK_ATTRIBUTE pubt[] = {
        { CKA_TOKEN, &yes, sizeof yes }, { CKA_VERIFY, &yes, sizeof yes },
        { CKA_LABEL, (void *)(uintptr_t)label, strlen(label) }, { CKA_ID, (void *)(uintptr_t)label, strlen(label) },
        rsa ? (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof bits }
            : (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)(uintptr_t)p256, sizeof p256 },
        { CKA_PUBLIC_EXPONENT, (void *)(uintptr_t)e65537, sizeof e65537 },
    };
    CK_ATTRIBUTE privt[] = {
        { CKA_TOKEN, &yes, sizeof yes }, { CKA_PRIVATE, &yes, sizeof yes },
        { CKA_SENSITIVE, &yes, sizeof yes }, { CKA_EXTRACTABLE, &no, sizeof no },
        { CKA_SIGN, &yes, sizeof yes },
        { CKA_LABEL, (void *)(uintptr_t)label, strlen(label) }, { CKA_ID, (void *)(uintptr_t)label, strlen(label) },
    };
    return f->C_GenerateKeyPair(s, &mech, pubt, rsa ? 6 : 5, privt, 7, &pub, &priv);
}

int b_token_tls_keys(const char *token)
{
    hk_module *m = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (t_token_init(T_SOFTHSM_MODULE, token, T_SO_PIN, T_USER_PIN) != 0 ||
        hk_module_get(T_SOFTHSM_MODULE, NULL, &m) != HSMKEYS_OK)
        return -1;
    f = hk_module_fns(m);
    if (find_slot(f, token, &slot) == 0 &&
        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) == CKR_OK) {
        rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USER_PIN, strlen(T_USER_PIN));
        if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
            rv = gen_pair(f, s, 0, "tls-ec");
        if (rv == CKR_OK)
            rv = gen_pair(f, s, 1, "tls-rsa");
        (void)f->C_CloseSession(s);
    }
    if (rv != CKR_OK)
        fprintf(stderr, "hsmkeys-bench: token key generation: %s\n", hk_ckr_name(rv));
    hk_module_put(m);
    return rv == CKR_OK ? 0 : -1;
}

static ENGINE *engine_get(const char *pin_file)
{
    static ENGINE *e;
    hk_secret pin;
    if (e != NULL)
        return e;
    e = ENGINE_by_id("pkcs11");
    if (e == NULL || ENGINE_ctrl_cmd_string(e, "MODULE_PATH", T_SOFTHSM_MODULE, 0) != 1 ||
        ENGINE_init(e) != 1) {
        fprintf(stderr, "hsmkeys-bench: libp11's pkcs11 engine cannot be loaded\n");
        e = NULL;
        return NULL;
    }
    if (hk_pin_read_file(pin_file, &pin) != HSMKEYS_OK)
        return NULL;
    /* the engine wants a NUL-terminated string: pin.data has room (see secret.h) */
    if (pin.len >= pin.map_len || ENGINE_ctrl_cmd_string(e, "PIN", (const char *)pin.data, 0) != 1) {
        hk_secret_free(&pin);
        return NULL;
    }
    hk_secret_free(&pin);
    return e;
}

SSL_CTX *b_engine_server(int version, const char *key_type, const char *token,
                         const char *pin_file, hsmkeys_ctx *hk)
{
    static EVP_PKEY *keys[2];
    static X509 *certs[2];
    int i = strcmp(key_type, "RSA") == 0;
    ENGINE *e = engine_get(pin_file);
    SSL_CTX *ctx;
    char uri[200];

    if (e == NULL)
        return NULL;
    if (keys[i] == NULL) {
        snprintf(uri, sizeof uri, "pkcs11:token=%s;object=%s;type=private", token, i ? "tls-rsa" : "tls-ec");
        keys[i] = ENGINE_load_private_key(e, uri, NULL, NULL);
        if (keys[i] == NULL || (certs[i] = t_self_signed(keys[i], "hsmkeys.bench")) == NULL) {
            fprintf(stderr, "hsmkeys-bench: token key %s not usable through the engine\n", uri);
            return NULL;
        }
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate(ctx, certs[i]) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, keys[i]) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hsmkeys-test", 12);
    if (hk != NULL && hsmkeys_ssl_attach(ctx, hk) != HSMKEYS_OK) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
