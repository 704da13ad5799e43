/*
 * hk-value.c - test helper: try to read CKA_VALUE of every master on a token
 * and report the token's answer; or plant an unsafe master for refusal tests.
 *
 *   hk-value read  MODULE TOKEN LABEL PINFILE
 *       prints one line per key ("gen 1: CKR_ATTRIBUTE_SENSITIVE"); exit 0
 *       only if no key gave out its value (and at least one key exists).
 *   hk-value unsafe MODULE TOKEN LABEL PINFILE GEN
 *       creates a generation that is EXTRACTABLE without WRAP_WITH_TRUSTED,
 *       the state hsmkeys-tool and the library must refuse.
 *   hk-value attrs MODULE TOKEN LABEL PINFILE
 *       prints each master's protection and usage attributes, one line per
 *       generation ("gen 1: sensitive=1 extractable=0 modifiable=0 ...";
 *       -1: unreadable).
 *   hk-value count MODULE TOKEN LABEL PINFILE
 *       prints how many secret keys the token holds, under any label.
 *   hk-value tamper MODULE TOKEN LABEL PINFILE
 *       what a user-PIN holder could try to re-flag a master: set
 *       CKA_DERIVE=TRUE, rewrite CKA_ID (generation 9, activation 2033),
 *       copy it with CKA_DERIVE=TRUE; prints the token's answer to each
 *       ("gen 1: set_derive=CKR_... set_id=CKR_... copy_derive=CKR_...").
 *       A copy the token made is destroyed again.
 *   hk-value attack MODULE TOKEN LABEL PINFILE PUBLABEL
 *       what a user-PIN holder could try without the tool: wrap every master
 *       with the (untrusted) public key labelled PUBLABEL, and with an AES
 *       key of their own.  Exit 0 only if the token refused every attempt.
 * Uses the internal PKCS#11 layer; the PIN comes from a 0600 file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "master.h"
#include "p11.h"

static void fail(const char *what)
{
    fprintf(stderr, "hk-value: %s: %s\n", what, hsmkeys_last_error());
    exit(1);
}

static int attack(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const hk_master *ms, size_t n,
                  const char *publabel)
{
    CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE ft[] = {{CKA_CLASS, &pc, sizeof pc}, {CKA_LABEL, (void *)publabel, strlen(publabel)}};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, aes = CK_INVALID_HANDLE;
    CK_ULONG cnt = 0;
    if (f->C_FindObjectsInit(s, ft, 2) != CKR_OK) fail("find");
    (void)f->C_FindObjects(s, &pub, 1, &cnt);
    (void)f->C_FindObjectsFinal(s);
    if (cnt != 1) fail("no such public key");
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = 32;
    CK_ATTRIBUTE at[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_WRAP, &yes, sizeof yes},
                         {CKA_VALUE_LEN, &len, sizeof len}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    if (f->C_GenerateKey(s, &gen, at, 3, &aes) != CKR_OK) fail("AES key");
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    CK_MECHANISM kwp = {0x210A /* CKM_AES_KEY_WRAP_PAD */, NULL, 0};
    int leaked = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char out[1024];
        CK_ULONG ol = sizeof out;
        CK_RV r1 = f->C_WrapKey(s, &oaep, pub, ms[i].handle, out, &ol);
        ol = sizeof out;
        CK_RV r2 = f->C_WrapKey(s, &kwp, aes, ms[i].handle, out, &ol);
        printf("gen %u: untrusted RSA %s, own AES %s\n", ms[i].generation, hk_ckr_name(r1), hk_ckr_name(r2));
        memset(out, 0, sizeof out);
        leaked |= r1 == CKR_OK || r2 == CKR_OK;
    }
    return leaked ? 1 : 0;
}

int main(int argc, char **argv)
{
    int plain = argc >= 2 && (!strcmp(argv[1], "read") || !strcmp(argv[1], "attrs") ||
                              !strcmp(argv[1], "tamper") || !strcmp(argv[1], "count"));
    if (argc < 6 || (!plain && strcmp(argv[1], "unsafe") && strcmp(argv[1], "attack")) ||
        (!plain && argc < 7)) {
        fprintf(stderr, "usage: hk-value read|attrs|tamper|unsafe|attack MODULE TOKEN LABEL PINFILE [GEN|PUBLABEL]\n");
        return 2;
    }
    char buf[512];
    hk_module *m;
    hk_uri *u;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    hk_secret pin = {0};
    snprintf(buf, sizeof buf, "pkcs11:token=%s;object=%s", argv[3], argv[4]);
    if (hk_uri_parse(buf, &u) != HSMKEYS_OK) fail("uri");
    if (hk_module_get(argv[2], NULL, &m) != HSMKEYS_OK) fail("module");
    if (hk_token_find(m, u, &slot) != HSMKEYS_OK) fail("token");
    if (hk_session_open(m, slot, 1, &s) != HSMKEYS_OK) fail("session");
    if (hk_pin_read_file(argv[5], &pin) != HSMKEYS_OK) fail("pin");
    if (hk_login(m, s, CKU_USER, &pin) != HSMKEYS_OK) fail("login");
    hk_secret_free(&pin);
    CK_FUNCTION_LIST_PTR f = hk_module_fns(m);
    if (!strcmp(argv[1], "unsafe")) {
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
        CK_ULONG len = 32;
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        unsigned char id[HK_MASTER_ID_LEN];
        hk_master_id_encode((uint32_t)atoi(argv[6]), 0, id);
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
            {CKA_TOKEN, &yes, sizeof yes}, {CKA_PRIVATE, &yes, sizeof yes},
            {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &yes, sizeof yes},
            {CKA_WRAP_WITH_TRUSTED, &no, sizeof no}, {CKA_SIGN, &yes, sizeof yes},
            {CKA_VALUE_LEN, &len, sizeof len}, {CKA_LABEL, argv[4], strlen(argv[4])},
            {CKA_ID, id, sizeof id},
        };
        CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
        CK_OBJECT_HANDLE h;
        if (hk_p11_check(f->C_GenerateKey(s, &mech, t, sizeof t / sizeof t[0], &h), "C_GenerateKey") != HSMKEYS_OK)
            fail("generate");
        printf("# planted unsafe generation %s\n", argv[6]);
        hk_session_close(m, s);
        hk_module_put(m);
        hk_uri_free(u);
        return 0;
    }
    if (!strcmp(argv[1], "count")) {
        CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
        CK_ATTRIBUTE ct = {CKA_CLASS, &sk, sizeof sk};
        CK_OBJECT_HANDLE hs[256];
        CK_ULONG got = 0;
        if (f->C_FindObjectsInit(s, &ct, 1) != CKR_OK) fail("find");
        (void)f->C_FindObjects(s, hs, 256, &got);
        (void)f->C_FindObjectsFinal(s);
        printf("%lu\n", (unsigned long)got);
        hk_session_close(m, s);
        hk_module_put(m);
        hk_uri_free(u);
        return 0;
    }
    hk_master *ms = NULL;
    size_t n = 0;
    if (hk_master_find(m, s, u, &ms, &n) != HSMKEYS_OK || n == 0) fail("no master");
    int ret = 0;
    if (!strcmp(argv[1], "attack")) {
        ret = attack(f, s, ms, n, argv[6]);
        goto done;
    }
    if (!strcmp(argv[1], "attrs")) {
        for (size_t i = 0; i < n; i++)
            printf("gen %u: sensitive=%d extractable=%d modifiable=%d copyable=%d derive=%d "
                   "encrypt=%d decrypt=%d wrap=%d unwrap=%d sign=%d\n", ms[i].generation,
                   ms[i].sensitive, ms[i].extractable, ms[i].modifiable, ms[i].copyable,
                   ms[i].derive, ms[i].encrypt, ms[i].decrypt, ms[i].wrap, ms[i].unwrap,
                   hk_attr_bool(m, s, ms[i].handle, CKA_SIGN));
        goto done;
    }
    if (!strcmp(argv[1], "tamper")) {
        for (size_t i = 0; i < n; i++) {
            CK_BBOOL on = CK_TRUE;
            unsigned char id[HK_MASTER_ID_LEN];
            CK_ATTRIBUTE d = {CKA_DERIVE, &on, sizeof on}, a = {CKA_ID, id, sizeof id};
            CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
            hk_master_id_encode(9, 2000000000, id);
            CK_RV r1 = f->C_SetAttributeValue(s, ms[i].handle, &d, 1);
            CK_RV r2 = f->C_SetAttributeValue(s, ms[i].handle, &a, 1);
            CK_RV r3 = f->C_CopyObject(s, ms[i].handle, &d, 1, &copy);
            if (r3 == CKR_OK && copy != ms[i].handle)
                (void)f->C_DestroyObject(s, copy);
            printf("gen %u: set_derive=%s set_id=%s copy_derive=%s\n", ms[i].generation,
                   hk_ckr_name(r1), hk_ckr_name(r2), hk_ckr_name(r3));
        }
        goto done;
    }
    if (!strcmp(argv[1], "attrs")) {
        for (size_t i = 0; i < n; i++)
            printf("gen %u: sensitive=%d extractable=%d modifiable=%d copyable=%d derive=%d "
                   "encrypt=%d decrypt=%d wrap=%d unwrap=%d sign=%d\n", ms[i].generation,
                   ms[i].sensitive, ms[i].extractable, ms[i].modifiable, ms[i].copyable,
                   ms[i].derive, ms[i].encrypt, ms[i].decrypt, ms[i].wrap, ms[i].unwrap,
                   hk_attr_bool(m, s, ms[i].handle, CKA_SIGN));
        goto done;
    }
    if (!strcmp(argv[1], "tamper")) {
        for (size_t i = 0; i < n; i++) {
            CK_BBOOL on = CK_TRUE;
            unsigned char id[HK_MASTER_ID_LEN];
            CK_ATTRIBUTE d = {CKA_DERIVE, &on, sizeof on}, a = {CKA_ID, id, sizeof id};
            CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
            hk_master_id_encode(9, 2000000000, id);
            CK_RV r1 = f->C_SetAttributeValue(s, ms[i].handle, &d, 1);
            CK_RV r2 = f->C_SetAttributeValue(s, ms[i].handle, &a, 1);
            CK_RV r3 = f->C_CopyObject(s, ms[i].handle, &d, 1, &copy);
            if (r3 == CKR_OK && copy != ms[i].handle)
                (void)f->C_DestroyObject(s, copy);
            printf("gen %u: set_derive=%s set_id=%s copy_derive=%s\n", ms[i].generation,
                   hk_ckr_name(r1), hk_ckr_name(r2), hk_ckr_name(r3));
        }
        goto done;
    }
    int leaked = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char v[512];
        CK_ATTRIBUTE a = {CKA_VALUE, v, sizeof v};
        CK_RV rv = f->C_GetAttributeValue(s, ms[i].handle, &a, 1);
        int got = rv == CKR_OK && a.ulValueLen != (CK_ULONG)-1 && a.ulValueLen > 0;
        printf("gen %u: %s%s\n", ms[i].generation, hk_ckr_name(rv), got ? " VALUE READ" : "");
        memset(v, 0, sizeof v);
        leaked |= got;
    }
    ret = leaked ? 1 : 0;
done:
    free(ms);
    hk_session_close(m, s);
    hk_module_put(m);
    hk_uri_free(u);
    return ret;
}
