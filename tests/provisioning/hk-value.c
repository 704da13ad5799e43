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

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "read") && strcmp(argv[1], "unsafe")) ||
        (!strcmp(argv[1], "unsafe") && argc < 7)) {
        fprintf(stderr, "usage: hk-value read|unsafe MODULE TOKEN LABEL PINFILE [GEN]\n");
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
        return 0;
    }
    hk_master *ms = NULL;
    size_t n = 0;
    if (hk_master_find(m, s, u, &ms, &n) != HSMKEYS_OK || n == 0) fail("no master");
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
    free(ms);
    return leaked ? 1 : 0;
}
