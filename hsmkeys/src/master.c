/*
 * master.c - finding master generations on a token and judging them.
 *
 * Threat: a master that can leave the token.  A master is judged by its
 * attributes (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED), not by
 * whether reading CKA_VALUE fails: some modules (tpm2-pkcs11) answer that
 * read with CKR_OK and length 0.  An EXTRACTABLE master without
 * WRAP_WITH_TRUSTED can be wrapped by any key a PIN holder imports, so it is
 * refused even where extractable masters are allowed.  A master that may
 * derive, encrypt, decrypt, wrap or unwrap is refused: with CKA_DERIVE, a
 * PIN holder on a token with extract / concatenate / XOR derivations reads
 * the master out piece by piece through the HMAC oracle.  A master that is
 * still CKA_MODIFIABLE (a PIN holder could turn those usages on, or rewrite
 * CKA_ID, the schedule) or CKA_COPYABLE only gets a warning: some tokens
 * give no way to clear them (docs/PROVISIONING.md lists what we measured).
 * Layout of a lookup: every handle C_FindObjects returns, read in chunks
 * of HK_FIND_CHUNK into a growing array, at most HK_FIND_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "master.h"

#define HK_FIND_CHUNK 64
#define HK_FIND_MAX 4096

void hk_master_id_encode(uint32_t generation, int64_t activation, unsigned char id[HK_MASTER_ID_LEN])
{
    uint64_t a = (uint64_t)activation;
    int i;
    id[0] = 'H';
    id[1] = 'K';
    id[2] = HK_MASTER_ID_VERSION;
    for (i = 0; i < 4; i++)
        id[3 + i] = (unsigned char)(generation >> (8 * (3 - i)));
    for (i = 0; i < 8; i++)
        id[7 + i] = (unsigned char)(a >> (8 * (7 - i)));
}

int hk_master_id_decode(const unsigned char *id, size_t len, uint32_t *generation, int64_t *activation)
{
    uint32_t g = 0;
    uint64_t a = 0;
    int i;
    if (id == NULL || len != HK_MASTER_ID_LEN || id[0] != 'H' || id[1] != 'K' ||
        id[2] != HK_MASTER_ID_VERSION)
        return HSMKEYS_E_MALFORMED;
    for (i = 0; i < 4; i++)
        g = (g << 8) | id[3 + i];
    for (i = 0; i < 8; i++)
        a = (a << 8) | id[7 + i];
    *generation = g;
    *activation = (int64_t)a;
    return HSMKEYS_OK;
}

int hk_master_prf(void *arg, const unsigned char *msg, size_t len, unsigned char out[32])
{
    struct hk_master_prf *p = arg;
    p->calls++;
    return hk_hmac_sha256(p->module, p->session, p->key, msg, len, out, &p->last_rv);
}

static int cmp_activation(const void *a, const void *b)
{
    const hk_master *x = a, *y = b;
    if (x->activation != y->activation)
        return x->activation < y->activation ? -1 : 1;
    return x->generation < y->generation ? -1 : x->generation > y->generation;
}

static void read_master(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, hk_master *mk)
{
    unsigned char id[64];
    CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
    CK_ATTRIBUTE a[2] = { { CKA_ID, id, sizeof id }, { CKA_KEY_TYPE, &kt, sizeof kt } };

    memset(mk, 0, sizeof *mk);
    mk->handle = h;
    if (HK_FN(m, C_GetAttributeValue)(s, h, a, 2) != CKR_OK) {
        /* read one by one: some modules fail the whole template */
        (void)HK_FN(m, C_GetAttributeValue)(s, h, &a[0], 1);
        (void)HK_FN(m, C_GetAttributeValue)(s, h, &a[1], 1);
    }
    mk->key_type = kt;
    if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        hk_master_id_decode(id, a[0].ulValueLen, &mk->generation, &mk->activation) != HSMKEYS_OK) {
        mk->generation = 0; /* adopted: created by another tool */
        mk->activation = 0;
    }
    mk->sensitive = hk_attr_bool(m, s, h, CKA_SENSITIVE);
    mk->extractable = hk_attr_bool(m, s, h, CKA_EXTRACTABLE);
    mk->always_sensitive = hk_attr_bool(m, s, h, CKA_ALWAYS_SENSITIVE);
    mk->never_extractable = hk_attr_bool(m, s, h, CKA_NEVER_EXTRACTABLE);
    mk->wrap_with_trusted = hk_attr_bool(m, s, h, CKA_WRAP_WITH_TRUSTED);
    mk->derive = hk_attr_bool(m, s, h, CKA_DERIVE);
    mk->encrypt = hk_attr_bool(m, s, h, CKA_ENCRYPT);
    mk->decrypt = hk_attr_bool(m, s, h, CKA_DECRYPT);
    mk->wrap = hk_attr_bool(m, s, h, CKA_WRAP);
    mk->unwrap = hk_attr_bool(m, s, h, CKA_UNWRAP);
    mk->modifiable = hk_attr_bool(m, s, h, CKA_MODIFIABLE);
    mk->copyable = hk_attr_bool(m, s, h, CKA_COPYABLE);
}

/* Every handle the search returns, not just the first chunk. */
static int find_all(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE **out, CK_ULONG *n)
{
    CK_OBJECT_HANDLE *all = NULL, *grown;
    CK_ULONG got = 0, found;
    CK_RV rv;

    *out = NULL;
    *n = 0;
    for (;;) {
        grown = realloc(all, (got + HK_FIND_CHUNK) * sizeof *all);
        if (grown == NULL) {
            (void)HK_FN(m, C_FindObjectsFinal)(s);
            free(all);
            return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
        }
        all = grown;
        found = 0;
        rv = HK_FN(m, C_FindObjects)(s, all + got, HK_FIND_CHUNK, &found);
        if (rv != CKR_OK || found > HK_FIND_CHUNK)
            break;
        got += found;
        if (found == 0 || got > HK_FIND_MAX)
            break;
    }
    (void)HK_FN(m, C_FindObjectsFinal)(s);
    if (rv != CKR_OK) {
        free(all);
        return hk_p11_check(rv, "C_FindObjects");
    }
    if (found > HK_FIND_CHUNK || got > HK_FIND_MAX) {
        free(all);
        return hk_fail(HSMKEYS_E_NO_MASTER, "more than %d secret keys match the URI: name the "
                       "master's label with object= (hsmkeys-tool status lists them)",
                       HK_FIND_MAX);
    }
    *out = all;
    *n = got;
    return HSMKEYS_OK;
}

int hk_master_list(hk_module *m, CK_SESSION_HANDLE s, const hk_uri *u, hk_master **out, size_t *n)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG nt = 0, found = 0, i;
    CK_OBJECT_HANDLE *handles;
    const char *label = hk_uri_object_label(u);
    size_t idlen;
    const unsigned char *id = hk_uri_object_id(u, &idlen);
    hk_master *list;
    CK_RV rv;

    *out = NULL;
    *n = 0;
    tmpl[nt].type = CKA_CLASS; tmpl[nt].pValue = &cls; tmpl[nt++].ulValueLen = sizeof cls;
    if (label != NULL) {
        tmpl[nt].type = CKA_LABEL; tmpl[nt].pValue = (void *)(uintptr_t)label;
        tmpl[nt++].ulValueLen = strlen(label);
    }
    if (id != NULL) {
        tmpl[nt].type = CKA_ID; tmpl[nt].pValue = (void *)(uintptr_t)id;
        tmpl[nt++].ulValueLen = idlen;
    }
    rv = HK_FN(m, C_FindObjectsInit)(s, tmpl, nt);
    HK_TRY(hk_p11_check(rv, "C_FindObjectsInit"));
    HK_TRY(find_all(m, s, &handles, &found));
    if (found == 0) {
        free(handles);
        return hk_fail(HSMKEYS_E_NO_MASTER, "no secret key %s%s%s on the token: check "
                       "object=/id= in the URI, that the PIN is the user's, and that the "
                       "master was provisioned (hsmkeys-tool status)",
                       label ? "labelled \"" : "with the given id", label ? label : "",
                       label ? "\"" : "");
    }
    list = calloc(found, sizeof *list);
    if (list == NULL) {
        free(handles);
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    }
    for (i = 0; i < found; i++)
        read_master(m, s, handles[i], &list[i]);
    free(handles);
    qsort(list, found, sizeof *list, cmp_activation);
    *out = list;
    *n = found;
    return HSMKEYS_OK;
}

int hk_master_duplicate(const hk_master *list, size_t n, uint32_t *generation)
{
    size_t i, j;
    /* sorted by activation, not generation: two keys of one generation
     * but different activations need not be neighbours */
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (list[i].generation == list[j].generation) {
                *generation = list[i].generation;
                return 1;
            }
    return 0;
}

int hk_master_find(hk_module *m, CK_SESSION_HANDLE s, const hk_uri *u, hk_master **out, size_t *n)
{
    uint32_t g;
    HK_TRY(hk_master_list(m, s, u, out, n));
    if (hk_master_duplicate(*out, *n, &g)) {
        free(*out);
        *out = NULL;
        *n = 0;
        return hk_fail(HSMKEYS_E_NO_MASTER, "the token holds two masters of generation %u "
                       "under this label, so servers cannot tell which one the fleet uses: "
                       "destroy the one the other servers do not hold (hsmkeys-tool status "
                       "shows both with their key check values)", g);
    }
    return HSMKEYS_OK;
}

/* What to do about a master whose attributes are wrong.  One place, so the
 * advice for masters hsmkeys-tool did not make stays consistent. */
static const char *policy_fix(const hk_master *mk)
{
    (void)mk;
    /* not every token can generate a key through PKCS#11 (tpm2-pkcs11 and
     * many HSMs make keys only with their own tools) */
    return "destroy it and make a new generation with hsmkeys-tool rotate (or create), "
           "which sets every attribute at creation; where the token makes keys only with "
           "its own tool, use that tool (SENSITIVE, not EXTRACTABLE, SIGN only) and then "
           "hsmkeys-tool adopt";
}

int hk_master_check_policy(const hk_master *mk, int allow_extractable, hk_master_warn_fn warn,
                           void *warn_arg)
{
    const struct { const char *name; int value; } usages[] = {
        { "CKA_DERIVE", mk->derive }, { "CKA_ENCRYPT", mk->encrypt },
        { "CKA_DECRYPT", mk->decrypt }, { "CKA_WRAP", mk->wrap }, { "CKA_UNWRAP", mk->unwrap },
    };
    char msg[512];
    size_t i;

    if (mk->key_type != CKK_GENERIC_SECRET && mk->key_type != CKK_SHA256_HMAC)
        return hk_fail(HSMKEYS_E_NO_MASTER, "master generation %u has key type 0x%lx: use "
                       "CKK_GENERIC_SECRET or CKK_SHA256_HMAC (32 bytes or more)",
                       mk->generation, (unsigned long)mk->key_type);
    if (mk->sensitive != 1)
        return hk_fail(HSMKEYS_E_UNSAFE_MASTER, "master generation %u is not CKA_SENSITIVE: its "
                       "value can be read from the token; %s", mk->generation, policy_fix(mk));
    if (mk->extractable != 0 && mk->wrap_with_trusted != 1)
        return hk_fail(HSMKEYS_E_UNSAFE_MASTER, "master generation %u is CKA_EXTRACTABLE without "
                       "CKA_WRAP_WITH_TRUSTED: anyone with the user PIN can export it; %s",
                       mk->generation, policy_fix(mk));
    if (mk->extractable != 0 && !allow_extractable)
        return hk_fail(HSMKEYS_E_UNSAFE_MASTER, "master generation %u is still CKA_EXTRACTABLE: "
                       "finish the cloning ceremony and seal it (hsmkeys-tool seal)",
                       mk->generation);
    for (i = 0; i < sizeof usages / sizeof usages[0]; i++) {
        if (usages[i].value == 1)
            return hk_fail(HSMKEYS_E_UNSAFE_MASTER, "master generation %u has %s=TRUE: a master "
                           "may only sign (HMAC); with other usages a PIN holder can use it "
                           "for more than hsmkeys does (with CKA_DERIVE, on tokens with "
                           "extract or concatenate derivations, read it out); %s",
                           mk->generation, usages[i].name, policy_fix(mk));
    }
    /* A clonable generation is modifiable and copyable by design until
     * seal copies it into a non-modifiable object: no warning for it. */
    if (mk->extractable == 1)
        return HSMKEYS_OK;
    if (warn != NULL && mk->modifiable == 1) {
        snprintf(msg, sizeof msg, "master generation %u is still CKA_MODIFIABLE: anyone with the "
                 "user PIN can change its attributes (turn on CKA_DERIVE, rewrite CKA_ID, which "
                 "holds the generation and activation); rotate to a generation made by "
                 "hsmkeys-tool, which makes masters non-modifiable", mk->generation);
        warn(warn_arg, msg);
    }
    if (warn != NULL && mk->copyable == 1) {
        snprintf(msg, sizeof msg, "master generation %u is CKA_COPYABLE: a PIN holder can "
                 "C_CopyObject it (SoftHSM2 cannot clear this on a sealed clonable generation; "
                 "it refuses copies of a non-modifiable key with changed attributes); once no "
                 "clone needs it, rotate to a non-clonable generation", mk->generation);
        warn(warn_arg, msg);
    }
    return HSMKEYS_OK;
}
