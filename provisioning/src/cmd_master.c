/*
 * cmd_master.c - "create", "rotate" and "import-test-master": add a master
 * generation to the token.
 *
 * Owns: the master's attribute template and its CKA_ID (master.h: 'HK' 01 ||
 * generation || activation).  Threat: a master that leaves the token in
 * plaintext.  It is generated inside the token (CKM_GENERIC_SECRET_KEY_GEN),
 * SENSITIVE, sign-only, and either non-extractable and non-modifiable or
 * extractable only under a trusted wrapping key (WRAP_WITH_TRUSTED) until
 * sealed, never anything looser (template.c); imported bytes are
 * accepted only behind an explicit test-only flag.  Rotation refuses
 * duplicate generations and activation times that are not in the future.
 */
#include <stdlib.h>
#include <string.h>
#include "template.h"

/* Codes with which tokens refuse to make secret keys through PKCS#11
 * (tpm2-pkcs11 1.9: C_GenerateKey CKR_FUNCTION_NOT_SUPPORTED, C_CreateObject
 * CKR_ATTRIBUTE_VALUE_INVALID). */
static int vendor_made_only(CK_RV rv)
{
    return rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_MECHANISM_INVALID ||
           rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_TEMPLATE_INCONSISTENT;
}

static int add_generation(struct hkt_conn *c, uint32_t gen, int64_t act, int clonable,
                          const hk_secret *value, CK_OBJECT_HANDLE *out)
{
    struct hkt_master_tmpl m;
    unsigned char id[HK_MASTER_ID_LEN];
    CK_ULONG vlen = 32;
    CK_RV rv;

    hk_master_id_encode(gen, act, id);
    if (hkt_master_id_free(c, id, gen) != 0)
        return -1;
    hkt_master_tmpl_init(&m, CKK_GENERIC_SECRET, 1, clonable, c->label, id);
    if (value)
        hkt_master_tmpl_add(&m, CKA_VALUE, value->data, value->len);
    else
        hkt_master_tmpl_add(&m, CKA_VALUE_LEN, &vlen, sizeof vlen);
    for (int attempt = 0;; attempt++) {
        CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
        if (value)
            rv = HK_FN(c->module, C_CreateObject)(c->session, m.attrs, m.n, out);
        else
            rv = HK_FN(c->module, C_GenerateKey)(c->session, &mech, m.attrs, m.n, out);
        /* A module without CKA_COPYABLE (NSS softokn) refuses the template. */
        if (rv == CKR_OK || attempt > 0 || !hkt_copyable_refused(rv) ||
            !hkt_master_tmpl_drop(&m, CKA_COPYABLE))
            break;
    }
    if (hk_p11_check(rv, value ? "C_CreateObject" : "C_GenerateKey") != HSMKEYS_OK) {
        hkt_err_lib("creating the master generation");
        if (vendor_made_only(rv))
            hkt_err("token '%s' does not %s secret keys through PKCS#11 (tpm2-pkcs11 and many HSMs "
                    "make them only with their own tools): make the key with the token's tool "
                    "(SENSITIVE, not EXTRACTABLE; tpm2-pkcs11: tpm2_ptool addkey "
                    "--algorithm=hmac:sha256), then give it a generation with 'hsmkeys-tool adopt' "
                    "(docs/PROVISIONING.md, keys made by vendor tools)", c->token_label,
                    value ? "import" : "generate");
        return -1;
    }
    return 0;
}

/* Check the new object against the library's policy and print its KCV. */
static int report_new(struct hkt_conn *c, uint32_t gen, CK_OBJECT_HANDLE h)
{
    hk_master *m = NULL;
    size_t n = 0;
    int rc = -1;
    if (hkt_masters(c, &m, &n) != 0)
        goto out;
    const hk_master *mk = hkt_master_gen(m, n, gen);
    if (!mk || mk->handle != h) {
        hkt_err("the new generation %u cannot be found again by label '%s'; it was removed",
                gen, c->label);
        goto out;
    }
    if (hk_master_check_policy(mk, 1, hkt_warn_cb, NULL) != HSMKEYS_OK) {
        hkt_err_lib("the token did not apply the requested attributes; the key was removed");
        goto out;
    }
    unsigned char kcv[HK_CHECK_VALUE_LEN];
    char hex[2 * HK_CHECK_VALUE_LEN + 1], when[40];
    if (hkt_kcv(c, h, kcv) != 0)
        goto out;
    hkt_hex(hex, kcv, sizeof kcv);
    hkt_fmt_time(mk->activation, when, sizeof when);
    hkt_info("token '%s': master '%s' generation %u, active from %s (%lld), %s", c->token_label,
             c->label, gen, when, (long long)mk->activation,
             mk->extractable == 1 ? "clonable (extractable under trusted keys only): seal it after cloning"
                                  : "sealed (non-extractable)");
    hkt_info("kcv %u %s", gen, hex);
    rc = 0;
out:
    free(m);
    if (rc != 0)
        (void)hkt_destroy(c, h, "the new generation");
    return rc;
}

static int max_gen(const hk_master *m, size_t n, uint32_t *gen, int64_t *act)
{
    *gen = 0;
    *act = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (m[i].generation > *gen)
            *gen = m[i].generation;
        if (m[i].activation > *act)
            *act = m[i].activation;
    }
    return n > 0;
}

static int has_trusted_keys(struct hkt_conn *c)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TRUSTED, &yes, sizeof yes}};
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    return hkt_find(c, t, 2, &h, 1, &n) == 0 && n > 0;
}

static int create_common(struct hkt_opts *o, const hk_secret *value)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    int ret = HKT_EXIT_FAIL;
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    uint32_t gen = o->generation >= 0 ? (uint32_t)o->generation : 1;
    if (n > 0 && !value) {
        hkt_err("token '%s' already holds master '%s' (%zu generation%s): add a generation with "
                "'hsmkeys-tool rotate', or choose another --label", c.token_label, c.label, n,
                n == 1 ? "" : "s");
        goto out;
    }
    if (hkt_master_gen(m, n, gen)) {
        hkt_err("generation %u of '%s' already exists on token '%s': pick another --generation",
                gen, c.label, c.token_label);
        goto out;
    }
    CK_OBJECT_HANDLE h;
    if (add_generation(&c, gen, o->have_activate ? o->activate_at : 0, o->clonable, value, &h) == 0 &&
        report_new(&c, gen, h) == 0 &&
        (!o->forward_erasable ||
         hkt_chain_start(&c, o, gen, o->have_activate ? o->activate_at : 0) == 0))
        ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}

int hkt_cmd_create(struct hkt_opts *o)
{
    return create_common(o, NULL);
}

int hkt_cmd_import_test(struct hkt_opts *o)
{
    if (!o->for_tests) {
        hkt_err("import-test-master puts known bytes in the token: such a master is not secret. "
                "It exists for test vectors only; production masters come from 'create'. "
                "Pass --i-understand-this-is-for-tests to proceed");
        return HKT_EXIT_USAGE;
    }
    if (!o->in) {
        hkt_err("import-test-master needs --in FILE (32..64 raw bytes)");
        return HKT_EXIT_USAGE;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    hk_secret v;
    memset(&v, 0, sizeof v);
    int ret = HKT_EXIT_FAIL;
    if (hkt_read_file(o->in, &buf, &len, 512) != 0)
        return HKT_EXIT_FAIL;
    if (len < 32 || len > 64) {
        hkt_err("%s: %zu bytes; a test master is 32..64 raw bytes", o->in, len);
    } else if (hk_secret_alloc(&v, len) != HSMKEYS_OK) {
        hkt_err_lib("allocating locked memory");
    } else {
        memcpy(v.data, buf, len);
        v.len = len;
        ret = create_common(o, &v);
    }
    hsmkeys_wipe(buf, len);
    free(buf);
    hk_secret_free(&v);
    return ret;
}

int hkt_rotation_time_ok(const struct hkt_opts *o)
{
    char when[40];
    if (!o->have_activate) {
        hkt_err("a new generation of an existing master needs --activate-at TIME or "
                "--activate-in DURATION: the moment every server switches to it (give them "
                "time to see it: one epoch or more)");
        return HKT_EXIT_USAGE;
    }
    if (o->activate_at <= hkt_now(o)) {
        hkt_fmt_time(o->activate_at, when, sizeof when);
        hkt_err("activation time %s is not in the future: servers that already encrypted with the "
                "current generation this epoch would disagree; pick a later time (e.g. --activate-in 1d)", when);
        return HKT_EXIT_FAIL;
    }
    return HKT_EXIT_OK;
}

int hkt_next_generation(const struct hkt_opts *o, struct hkt_conn *c, const hk_master *m,
                        size_t n, uint32_t *out)
{
    uint32_t top;
    int64_t last;
    char when[40];
    max_gen(m, n, &top, &last);
    uint32_t gen = o->generation >= 0 ? (uint32_t)o->generation : top + 1;
    if (hkt_master_gen(m, n, gen)) {
        hkt_err("generation %u of '%s' already exists on token '%s': generations are never "
                "reused; omit --generation to take %u", gen, c->label, c->token_label, top + 1);
        return -1;
    }
    if (gen < top) {
        hkt_err("generation %u is older than the newest (%u): new generations count upwards", gen, top);
        return -1;
    }
    if (o->activate_at <= last) {
        hkt_fmt_time(last, when, sizeof when);
        hkt_err("activation must come after the newest generation's (%s)", when);
        return -1;
    }
    *out = gen;
    return 0;
}

int hkt_cmd_rotate(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    int ret = hkt_rotation_time_ok(o);
    if (ret != HKT_EXIT_OK)
        return ret;
    ret = HKT_EXIT_FAIL;
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    if (n == 0) {
        hkt_err("token '%s' holds no master '%s' yet: make the first generation with "
                "'hsmkeys-tool create' (or 'hsmkeys-tool adopt' for a key the token's own tool made)",
                c.token_label, c.label);
        goto out;
    }
    uint32_t gen;
    if (hkt_next_generation(o, &c, m, n, &gen) != 0)
        goto out;
    CK_OBJECT_HANDLE h;
    if (add_generation(&c, gen, o->activate_at, o->clonable, NULL, &h) == 0 &&
        report_new(&c, gen, h) == 0 &&
        (!o->forward_erasable || hkt_chain_start(&c, o, gen, o->activate_at) == 0)) {
        ret = HKT_EXIT_OK;
        if (o->clonable)
            hkt_info("next: wrap generation %u for each clone (hsmkeys-tool wrap --generation %u), "
                     "then seal it", gen, gen);
        else if (has_trusted_keys(&c))
            hkt_info("note: this token trusts transport keys, so other tokens may hold clones; "
                     "generation %u is not clonable: if they need it, destroy it and rotate again "
                     "with --clonable", gen);
    }
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}
