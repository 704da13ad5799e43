/*
 * master_test.c - hsmkeys/src/master.c: CKA_ID format, the master policy
 * (hk_master_check_policy: refusals name the attribute, warnings for
 * modifiable and copyable masters), and the lookup on a throwaway SoftHSM2
 * token: more than one chunk of handles, duplicates that are not neighbours
 * after sorting, and a master a PIN holder re-flagged with CKA_DERIVE.
 */
#include <stdlib.h>
#include "test.h"
#include "softhsm.h"
#include "master.h"

static char warned[8][600];
static int nwarned;

static void on_warn(void *arg, const char *msg)
{
    (void)arg;
    if (nwarned < 8)
        snprintf(warned[nwarned++], sizeof warned[0], "%s", msg);
}

static void capture_log(void *arg, int level, const char *msg)
{
    if (level <= HSMKEYS_LOG_WARNING)
        on_warn(arg, msg);
}

static int any_warning(const char *needle)
{
    for (int i = 0; i < nwarned; i++)
        if (strstr(warned[i], needle))
            return 1;
    return 0;
}

static void sealed(hk_master *m)
{
    memset(m, 0, sizeof *m);
    m->key_type = CKK_GENERIC_SECRET;
    m->sensitive = 1;
    m->derive = m->encrypt = m->decrypt = m->wrap = m->unwrap = 0;
    m->modifiable = m->copyable = 0;
}

/* hk_master_find on `token` for label; returns the code, *n the count. */
static int find_on(const char *token, const char *label, size_t *n, hk_master **list)
{
    char text[600];
    hk_module *m = NULL;
    hk_uri *u = NULL;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    hk_secret pin;
    int rc;

    *n = 0;
    *list = NULL;
    memset(&pin, 0, sizeof pin);
    snprintf(text, sizeof text, "pkcs11:token=%s;object=%s", token, label);
    if ((rc = hk_uri_parse(text, &u)) != HSMKEYS_OK)
        return rc;
    if ((rc = hk_module_get(T_SOFTHSM_MODULE, NULL, &m)) == HSMKEYS_OK &&
        (rc = hk_token_find(m, u, &slot)) == HSMKEYS_OK &&
        (rc = hk_session_open(m, slot, 0, &s)) == HSMKEYS_OK &&
        (rc = hk_secret_alloc(&pin, strlen(T_USER_PIN))) == HSMKEYS_OK) {
        memcpy(pin.data, T_USER_PIN, strlen(T_USER_PIN));
        pin.len = strlen(T_USER_PIN);
        if ((rc = hk_login(m, s, CKU_USER, &pin)) == HSMKEYS_OK)
            rc = hk_master_find(m, s, u, list, n);
    }
    hk_secret_free(&pin);
    hk_session_close(m, s);
    hk_module_put(m);
    hk_uri_free(u);
    return rc;
}

/* Set CKA_DERIVE=TRUE on every master labelled `label`, as a PIN holder
 * with pkcs11-tool could; returns the token's answer for the last one. */
static CK_RV flag_derive(const char *token, const char *label)
{
    hk_module *m = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slots[8];
    CK_ULONG ns = 8, found = 0;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[4];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE find[] = { { CKA_CLASS, &cls, sizeof cls },
                            { CKA_LABEL, (void *)(uintptr_t)label, strlen(label) } };
    CK_ATTRIBUTE derive = { CKA_DERIVE, &yes, sizeof yes };
    CK_TOKEN_INFO ti;
    CK_RV rv = CKR_GENERAL_ERROR;
    if (hk_module_get(T_SOFTHSM_MODULE, NULL, &m) != HSMKEYS_OK)
        return rv;
    f = hk_module_fns(m);
    (void)f->C_GetSlotList(CK_TRUE, slots, &ns);
    for (CK_ULONG i = 0; i < ns; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || memcmp(ti.label, token, strlen(token)))
            continue;
        if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
            break;
        (void)f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USER_PIN, strlen(T_USER_PIN));
        (void)f->C_FindObjectsInit(s, find, 2);
        (void)f->C_FindObjects(s, h, 4, &found);
        (void)f->C_FindObjectsFinal(s);
        for (CK_ULONG j = 0; j < found; j++)
            rv = f->C_SetAttributeValue(s, h[j], &derive, 1);
        (void)f->C_CloseSession(s);
        break;
    }
    hk_module_put(m);
    return rv;
}

static int open_label(const t_hsm *h, const char *token, const char *label)
{
    char uri[800];
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    int rc;
    snprintf(uri, sizeof uri, "pkcs11:token=%s;object=%s?module-path=%s&pin-source=%s", token,
             label, T_SOFTHSM_MODULE, h->pin_file);
    if (hsmkeys_config_new(&c) != HSMKEYS_OK)
        return -100;
    rc = hsmkeys_config_set(c, "uri", uri);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(c, "domain", "www.example.com");
    hsmkeys_config_set_log(c, capture_log, NULL);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_open(c, &ctx);
    hsmkeys_close(ctx);
    hsmkeys_config_free(c);
    return rc;
}

int main(void)
{
    unsigned char id[HK_MASTER_ID_LEN], value[32];
    uint32_t g;
    int64_t a;
    hk_master m, *list = NULL;
    size_t n = 0;
    t_hsm h;

    T_CASE("generation and activation round-trip through CKA_ID") {
        hk_master_id_encode(7, 1800000000, id);
        T_EQ_MEM(id, "HK\x01", 3);
        T_RC(hk_master_id_decode(id, sizeof id, &g, &a), HSMKEYS_OK);
        T_EQ_INT(g, 7);
        T_EQ_INT(a, 1800000000);
        T_RC(hk_master_id_decode(id, 14, &g, &a), HSMKEYS_E_MALFORMED);
        id[2] = 2;
        T_RC(hk_master_id_decode(id, sizeof id, &g, &a), HSMKEYS_E_MALFORMED);
    }
    T_CASE("policy: sensitive and sealed passes; the rest are refused with the fix") {
        sealed(&m);
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_OK);
        m.key_type = CKK_SHA256_HMAC;
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_OK);
        m.key_type = CKK_AES;
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_E_NO_MASTER);
        m.key_type = CKK_GENERIC_SECRET;
        m.sensitive = -1; /* unreadable attribute: not trusted */
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_E_UNSAFE_MASTER);
        m.sensitive = 1; m.extractable = -1;
        T_RC(hk_master_check_policy(&m, 1, NULL, NULL), HSMKEYS_E_UNSAFE_MASTER);
        m.extractable = 1; m.wrap_with_trusted = 1;
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_E_UNSAFE_MASTER);
        T_CONTAINS(hsmkeys_last_error(), "seal");
        T_RC(hk_master_check_policy(&m, 1, NULL, NULL), HSMKEYS_OK);
    }
    T_CASE("policy: each usage but SIGN is refused, naming the attribute and the fix") {
        static const char *names[] = { "CKA_DERIVE", "CKA_ENCRYPT", "CKA_DECRYPT", "CKA_WRAP",
                                       "CKA_UNWRAP" };
        for (int i = 0; i < 5; i++) {
            sealed(&m);
            m.generation = 4;
            int *f[] = { &m.derive, &m.encrypt, &m.decrypt, &m.wrap, &m.unwrap };
            *f[i] = 1;
            T_RC(hk_master_check_policy(&m, 1, NULL, NULL), HSMKEYS_E_UNSAFE_MASTER);
            T_CONTAINS(hsmkeys_last_error(), names[i]);
            T_CONTAINS(hsmkeys_last_error(), "generation 4");
            T_CONTAINS(hsmkeys_last_error(), "hsmkeys-tool rotate");
            *f[i] = -1; /* unreadable: not a usage the token admits to */
            T_RC(hk_master_check_policy(&m, 1, NULL, NULL), HSMKEYS_OK);
        }
    }
    T_CASE("policy: MODIFIABLE and COPYABLE masters pass with one warning each") {
        sealed(&m);
        nwarned = 0;
        T_RC(hk_master_check_policy(&m, 0, on_warn, NULL), HSMKEYS_OK);
        T_EQ_INT(nwarned, 0);
        m.modifiable = 1;
        T_RC(hk_master_check_policy(&m, 0, on_warn, NULL), HSMKEYS_OK);
        T_EQ_INT(nwarned, 1);
        T_CONTAINS(warned[0], "CKA_MODIFIABLE");
        m.modifiable = 0; m.copyable = 1;
        T_RC(hk_master_check_policy(&m, 0, on_warn, NULL), HSMKEYS_OK);
        T_EQ_INT(nwarned, 2);
        T_CONTAINS(warned[1], "CKA_COPYABLE");
        T_RC(hk_master_check_policy(&m, 0, NULL, NULL), HSMKEYS_OK); /* no callback: fine */
        m.modifiable = 1; m.extractable = 1; m.wrap_with_trusted = 1; /* clonable, unsealed */
        T_RC(hk_master_check_policy(&m, 1, on_warn, NULL), HSMKEYS_OK);
        T_EQ_INT(nwarned, 2);
    }

    if (t_hsm_setup(&h) != 0 || t_token_init(T_SOFTHSM_MODULE, "M1", T_SO_PIN, T_USER_PIN) != 0) {
        t_fail_at(__FILE__, __LINE__, "SoftHSM2 token set-up failed");
        return t_done();
    }
    t_master_from_seed("master_test", value);
    T_CASE("lookup reads every handle: 70 generations under one label, not 64") {
        int ok = 1;
        for (uint32_t i = 1; i <= 70 && ok; i++) {
            t_master_opts o = { .label = "many", .generation = i, .activation = (int64_t)i * 100 };
            ok = t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, sizeof value, &o) == 0;
        }
        T_TRUE(ok);
        T_RC(find_on("M1", "many", &n, &list), HSMKEYS_OK);
        T_EQ_INT(n, 70);
        if (n == 70)
            T_EQ_INT(list[69].generation, 70);
        free(list);
    }
    T_CASE("two masters of one generation are refused even when not neighbours") {
        /* sorted by activation: gen 2 @100, gen 3 @200, gen 2 @300 */
        t_master_opts o1 = { .label = "dup", .generation = 2, .activation = 100 };
        t_master_opts o2 = { .label = "dup", .generation = 3, .activation = 200 };
        t_master_opts o3 = { .label = "dup", .generation = 2, .activation = 300 };
        T_TRUE(t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, 32, &o1) == 0 &&
               t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, 32, &o2) == 0 &&
               t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, 32, &o3) == 0);
        T_RC(find_on("M1", "dup", &n, &list), HSMKEYS_E_NO_MASTER);
        T_CONTAINS(hsmkeys_last_error(), "two masters of generation 2");
        free(list);
    }
    T_CASE("a master made as hsmkeys-tool makes it: the token refuses CKA_DERIVE=TRUE") {
        t_master_opts o = { .label = "sealed", .generation = 1 };
        T_TRUE(t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, 32, &o) == 0);
        T_NE_INT(flag_derive("M1", "sealed"), CKR_OK);
        nwarned = 0;
        T_RC(open_label(&h, "M1", "sealed"), HSMKEYS_OK);
        T_TRUE(!any_warning("CKA_MODIFIABLE") && !any_warning("CKA_COPYABLE"));
    }
    T_CASE("a modifiable master: open warns; re-flagged with CKA_DERIVE, open refuses it") {
        t_master_opts o = { .label = "loose", .generation = 1, .modifiable = 1 };
        T_TRUE(t_master_import(T_SOFTHSM_MODULE, "M1", T_USER_PIN, value, 32, &o) == 0);
        nwarned = 0;
        T_RC(open_label(&h, "M1", "loose"), HSMKEYS_OK);
        T_TRUE(any_warning("CKA_MODIFIABLE"));
        T_EQ_INT(flag_derive("M1", "loose"), CKR_OK);
        T_RC(open_label(&h, "M1", "loose"), HSMKEYS_E_UNSAFE_MASTER);
        T_CONTAINS(hsmkeys_last_error(), "CKA_DERIVE=TRUE");
    }
    hsmkeys_wipe(value, sizeof value);
    t_hsm_cleanup(&h);
    return t_done();
}
