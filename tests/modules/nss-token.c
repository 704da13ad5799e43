/*
 * nss-token.c - test helper: hsmkeys against NSS's softokn (libsoftokn3.so),
 * a second, independent PKCS#11 implementation (tests/modules/test_nss_softokn.sh).
 *
 *   nss-token import   --nss-dir D --pin-source F [--label L]
 *       put the known test master of seed "fleet" into the NSS db token
 *       (C_CreateObject in a R/W session after C_Login).
 *   nss-token generate --nss-dir D --pin-source F --label L
 *                      [--sensitive yes|no|default] [--extractable yes|no|default]
 *                      [--wrap-with-trusted yes|no|default]
 *       C_GenerateKey(CKM_GENERIC_SECRET_KEY_GEN) inside NSS; prints the
 *       attributes NSS gives the key and what a read of CKA_VALUE returns.
 *   nss-token open     --nss-dir D --pin-source F [--label L] [--no-module-args]
 *       hsmkeys_open on the NSS token; prints the result code and message.
 *   nss-token vectors  --nss-dir D --pin-source F --vectors FILE
 *       the published vectors of seed "fleet", derived by NSS (injected clock).
 *   nss-token cross    --nss-dir D --pin-source F --softhsm-uri URI [--tls13]
 *       a ticket issued on NSS resumes on SoftHSM2 and vice versa (in memory).
 *   nss-token bench    --nss-dir D --pin-source F --softhsm-uri URI [--n N]
 *       median time of one epoch derivation on each module.
 *
 * The NSS db password is its user PIN: read from a 0600 file, kept in locked
 * memory, never printed.  Key bytes are compared, never printed.  Output is
 * "key=value" lines for the shell test to assert.  Exit 0 ok, 1 failure,
 * 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "p11.h"
#include "master.h"
#include "modcheck.h"
#include "softhsm.h"
#include "test.h"
#include "tls.h"

#define NSS_MODULE "/usr/lib/x86_64-linux-gnu/libsoftokn3.so"
#define NSS_TOKEN "NSS Certificate DB"
#define NSS_TOKEN_URI "NSS%%20Certificate%%20DB" /* in a format string */
#define DOMAIN "www.example.com"

struct opts {
    const char *mode, *nss_dir, *pin_source, *label, *module, *softhsm_uri, *vectors;
    const char *sensitive, *extractable, *wwt;
    const char *usages; /* --usages none|default: DERIVE..UNWRAP FALSE, or NSS's defaults */
    int no_args, tls13, n;
};

static struct opts O;
static char g_args[1200];

static void nss_init_args(void)
{
    snprintf(g_args, sizeof g_args,
             "configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' flags=", O.nss_dir);
}

static void nss_uri(char *out, size_t len, const char *label)
{
    snprintf(out, len, "pkcs11:token=" NSS_TOKEN_URI ";object=%s?module-path=%s&pin-source=%s",
             label, O.module, O.pin_source);
}

static hsmkeys_ctx *open_ctx(const char *uri, const char *module_args, const char *domain,
                             const char *epoch, const char *lifetime, int64_t *clock, int *rc)
{
    return mc_open(uri, module_args, domain, epoch, lifetime, clock, rc);
}

/* ---- raw PKCS#11 on the NSS db token --------------------------------------- */

struct p11 {
    hk_module *m;
    CK_SESSION_HANDLE s;
};

static int p11_open(struct p11 *p)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, i;
    CK_TOKEN_INFO ti;
    CK_UTF8CHAR lab[32];
    hk_secret pin;
    CK_RV rv;
    int rc;

    memset(p, 0, sizeof *p);
    memset(lab, ' ', sizeof lab);
    memcpy(lab, NSS_TOKEN, strlen(NSS_TOKEN));
    if (hk_module_get(O.module, g_args, &p->m) != HSMKEYS_OK) {
        fprintf(stderr, "nss-token: %s\n", hsmkeys_last_error());
        return -1;
    }
    rv = HK_FN(p->m, C_GetSlotList)(CK_TRUE, slots, &n);
    for (i = 0; rv == CKR_OK && i < n; i++)
        if (HK_FN(p->m, C_GetTokenInfo)(slots[i], &ti) == CKR_OK && !memcmp(ti.label, lab, 32))
            break;
    if (rv != CKR_OK || i == n) {
        fprintf(stderr, "nss-token: no token '%s' (%s)\n", NSS_TOKEN, hk_ckr_name(rv));
        return -1;
    }
    rv = HK_FN(p->m, C_OpenSession)(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->s);
    if (rv != CKR_OK) {
        fprintf(stderr, "nss-token: C_OpenSession: %s\n", hk_ckr_name(rv));
        return -1;
    }
    if (hk_pin_read_file(O.pin_source, &pin) != HSMKEYS_OK) {
        fprintf(stderr, "nss-token: %s\n", hsmkeys_last_error());
        return -1;
    }
    rc = hk_login(p->m, p->s, CKU_USER, &pin);
    hk_secret_free(&pin);
    if (rc != HSMKEYS_OK) {
        fprintf(stderr, "nss-token: login: %s\n", hsmkeys_last_error());
        return -1;
    }
    return 0;
}

static void p11_close(struct p11 *p)
{
    if (p->m == NULL)
        return;
    (void)HK_FN(p->m, C_Logout)(p->s);
    (void)HK_FN(p->m, C_CloseSession)(p->s);
    hk_module_put(p->m);
    p->m = NULL;
}

static const char *bool_name(int v) { return v == 1 ? "TRUE" : v == 0 ? "FALSE" : "unavailable"; }

/* Print the protection attributes of a key and what a CKA_VALUE read gives. */
static void print_attrs(struct p11 *p, CK_OBJECT_HANDLE h)
{
    unsigned char v[64];
    CK_ATTRIBUTE a = { CKA_VALUE, v, sizeof v };
    CK_RV rv;
    printf("sensitive=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_SENSITIVE)));
    printf("extractable=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_EXTRACTABLE)));
    printf("always_sensitive=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_ALWAYS_SENSITIVE)));
    printf("never_extractable=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_NEVER_EXTRACTABLE)));
    printf("wrap_with_trusted=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_WRAP_WITH_TRUSTED)));
    printf("derive=%s encrypt=%s decrypt=%s wrap=%s unwrap=%s\n",
           bool_name(hk_attr_bool(p->m, p->s, h, CKA_DERIVE)),
           bool_name(hk_attr_bool(p->m, p->s, h, CKA_ENCRYPT)),
           bool_name(hk_attr_bool(p->m, p->s, h, CKA_DECRYPT)),
           bool_name(hk_attr_bool(p->m, p->s, h, CKA_WRAP)),
           bool_name(hk_attr_bool(p->m, p->s, h, CKA_UNWRAP)));
    printf("modifiable=%s\n", bool_name(hk_attr_bool(p->m, p->s, h, CKA_MODIFIABLE)));
    rv = HK_FN(p->m, C_GetAttributeValue)(p->s, h, &a, 1);
    /* Only the outcome is printed, never the bytes. */
    printf("value_read=%s", hk_ckr_name(rv));
    if (rv == CKR_OK)
        printf(" (%lu bytes readable)", (unsigned long)a.ulValueLen);
    printf("\n");
    hsmkeys_wipe(v, sizeof v);
}

static int cmd_import(void)
{
    struct p11 p;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char id[HK_MASTER_ID_LEN];
    hk_secret master;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    int ret = 1;

    if (hk_secret_alloc(&master, 32) != HSMKEYS_OK)
        return 1;
    t_master_from_seed("fleet", master.data);
    master.len = 32;
    hk_master_id_encode(1, 0, id);
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
        { CKA_TOKEN, &yes, sizeof yes }, { CKA_PRIVATE, &yes, sizeof yes },
        { CKA_SENSITIVE, &yes, sizeof yes }, { CKA_EXTRACTABLE, &no, sizeof no },
        { CKA_SIGN, &yes, sizeof yes }, { CKA_VERIFY, &no, sizeof no },
        /* as hsmkeys-tool makes masters: no other usage, not modifiable */
        { CKA_DERIVE, &no, sizeof no }, { CKA_ENCRYPT, &no, sizeof no },
        { CKA_DECRYPT, &no, sizeof no }, { CKA_WRAP, &no, sizeof no },
        { CKA_UNWRAP, &no, sizeof no },
        { CKA_LABEL, (void *)(uintptr_t)O.label, strlen(O.label) }, { CKA_ID, id, sizeof id },
        { CKA_VALUE, master.data, master.len }, { CKA_MODIFIABLE, &no, sizeof no },
    };
    if (p11_open(&p) == 0) {
        rv = HK_FN(p.m, C_CreateObject)(p.s, t, sizeof t / sizeof t[0], &h);
        printf("create_object=%s\n", hk_ckr_name(rv));
        if (rv == CKR_OK) {
            print_attrs(&p, h);
            ret = 0;
        }
    }
    p11_close(&p);
    hk_secret_free(&master);
    return ret;
}

static int tri(const char *v, CK_BBOOL *out)
{
    if (v == NULL || !strcmp(v, "default"))
        return 0;
    *out = !strcmp(v, "yes") ? CK_TRUE : CK_FALSE;
    return 1;
}

static int cmd_generate(void)
{
    struct p11 p;
    CK_MECHANISM mech = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, sens = CK_TRUE, extr = CK_FALSE, wwt = CK_FALSE;
    CK_ATTRIBUTE t[16] = {
        { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
        { CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &yes, sizeof yes },
        { CKA_PRIVATE, &yes, sizeof yes }, { CKA_SIGN, &yes, sizeof yes },
        { CKA_LABEL, (void *)(uintptr_t)O.label, strlen(O.label) },
    };
    CK_ULONG n = 7;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    int ret = 1;

    if (tri(O.sensitive, &sens))
        t[n++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &sens, sizeof sens };
    if (tri(O.extractable, &extr))
        t[n++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &extr, sizeof extr };
    if (tri(O.wwt, &wwt))
        t[n++] = (CK_ATTRIBUTE){ CKA_WRAP_WITH_TRUSTED, &wwt, sizeof wwt };
    if (O.usages == NULL || strcmp(O.usages, "default")) {
        static const CK_ATTRIBUTE_TYPE off[] = { CKA_DERIVE, CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP,
                                                 CKA_UNWRAP };
        for (size_t i = 0; i < 5; i++)
            t[n++] = (CK_ATTRIBUTE){ off[i], &no, sizeof no };
    }
    if (p11_open(&p) == 0) {
        rv = HK_FN(p.m, C_GenerateKey)(p.s, &mech, t, n, &h);
        printf("generate_key=%s\n", hk_ckr_name(rv));
        if (rv == CKR_OK) {
            print_attrs(&p, h);
            ret = 0;
        }
    }
    p11_close(&p);
    return ret;
}

static int cmd_open(void)
{
    char uri[1500];
    int rc;
    hsmkeys_ctx *ctx;
    nss_uri(uri, sizeof uri, O.label);
    ctx = open_ctx(uri, O.no_args ? NULL : g_args, DOMAIN, NULL, NULL, NULL, &rc);
    printf("open=%s\n", hsmkeys_result_name(rc));
    if (ctx == NULL)
        printf("message=%s\n", hsmkeys_last_error());
    hsmkeys_close(ctx);
    return 0;
}

/* ---- published vectors ------------------------------------------------------- */

static int cmd_vectors(void)
{
    char uri[1500];
    nss_uri(uri, sizeof uri, O.label);
    return mc_vectors(uri, g_args, O.vectors, "fleet");
}

/* ---- tickets across modules ------------------------------------------------- */

static const char *version_name(int v)
{
    return v == TLS1_3_VERSION ? "TLSv1.3" : v == TLS1_2_VERSION ? "TLSv1.2" : "?";
}

static int one_way(SSL_CTX *cc, SSL_CTX *from, SSL_CTX *to, const char *what)
{
    t_hs a, b;
    char hex[40];
    int ok;
    memset(&b, 0, sizeof b);
    if (t_handshake(cc, from, NULL, &a) != 0 || !a.has_ticket || a.session == NULL) {
        printf("%s: no ticket issued\n", what);
        t_hs_clear(&a);
        return 0;
    }
    t_hex(hex, sizeof hex, a.ticket_name, 16);
    ok = t_handshake(cc, to, a.session, &b) == 0 && b.resumed;
    printf("%s %s %s name=%s\n", what, version_name(b.version), ok ? "resumed" : "FULL", hex);
    t_hs_clear(&a);
    t_hs_clear(&b);
    return ok;
}

static int cmd_cross(void)
{
    char uri[1500];
    int rc, ok = 0, version = O.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    int64_t clock = 1700000000;
    hsmkeys_ctx *nss, *shsm = NULL;
    SSL_CTX *snss = NULL, *sshsm = NULL, *cc = NULL;

    nss_uri(uri, sizeof uri, O.label);
    nss = open_ctx(uri, g_args, DOMAIN, NULL, NULL, &clock, &rc);
    if (nss == NULL)
        printf("nss open failed: %s\n", hsmkeys_last_error());
    else if ((shsm = open_ctx(O.softhsm_uri, NULL, DOMAIN, NULL, NULL, &clock, &rc)) == NULL)
        printf("softhsm2 open failed: %s\n", hsmkeys_last_error());
    if (nss && shsm && (snss = t_server_ctx(version, "EC")) && (sshsm = t_server_ctx(version, "EC")) &&
        (cc = t_client_ctx(version)) && hsmkeys_ssl_attach(snss, nss) == HSMKEYS_OK &&
        hsmkeys_ssl_attach(sshsm, shsm) == HSMKEYS_OK) {
        ok = one_way(cc, snss, sshsm, "nss->softhsm2");
        ok &= one_way(cc, sshsm, snss, "softhsm2->nss");
    }
    SSL_CTX_free(cc);
    SSL_CTX_free(snss);
    SSL_CTX_free(sshsm);
    hsmkeys_close(nss);
    hsmkeys_close(shsm);
    printf("cross=%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

/* ---- derivation cost (tests/lib/modcheck.c) --------------------------------- */

static int cmd_bench(void)
{
    char uri[1500];
    int ok;
    nss_uri(uri, sizeof uri, O.label);
    ok = mc_bench("nss-softokn", uri, g_args, O.n);
    ok &= mc_bench("softhsm2", O.softhsm_uri, NULL, O.n);
    return ok ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: nss-token import|generate|open|vectors|cross|bench --nss-dir DIR "
            "--pin-source FILE [--label L] [--module PATH] [--softhsm-uri URI] [--vectors FILE] "
            "[--sensitive yes|no|default] [--extractable yes|no|default] "
            "[--wrap-with-trusted yes|no|default] [--usages none|default] [--no-module-args] "
            "[--tls13] [--n N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int i;
    if (argc < 2)
        usage();
    O.mode = argv[1];
    O.label = "hsmkeys-master";
    O.module = NSS_MODULE;
    O.n = 100;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls13")) { O.tls13 = 1; continue; }
        if (!strcmp(a, "--no-module-args")) { O.no_args = 1; continue; }
        if (v == NULL) usage();
        if (!strcmp(a, "--nss-dir")) O.nss_dir = v;
        else if (!strcmp(a, "--pin-source")) O.pin_source = v;
        else if (!strcmp(a, "--label")) O.label = v;
        else if (!strcmp(a, "--module")) O.module = v;
        else if (!strcmp(a, "--softhsm-uri")) O.softhsm_uri = v;
        else if (!strcmp(a, "--vectors")) O.vectors = v;
        else if (!strcmp(a, "--sensitive")) O.sensitive = v;
        else if (!strcmp(a, "--extractable")) O.extractable = v;
        else if (!strcmp(a, "--wrap-with-trusted")) O.wwt = v;
        else if (!strcmp(a, "--usages")) O.usages = v;
        else if (!strcmp(a, "--n")) O.n = atoi(v);
        else usage();
        i++;
    }
    if (!O.nss_dir || !O.pin_source || O.n < 1)
        usage();
    nss_init_args();
    if (!strcmp(O.mode, "import")) return cmd_import();
    if (!strcmp(O.mode, "generate")) return cmd_generate();
    if (!strcmp(O.mode, "open")) return cmd_open();
    if (!strcmp(O.mode, "vectors") && O.vectors) return cmd_vectors();
    if (!strcmp(O.mode, "cross") && O.softhsm_uri) return cmd_cross();
    if (!strcmp(O.mode, "bench") && O.softhsm_uri) return cmd_bench();
    usage();
    return 2;
}
