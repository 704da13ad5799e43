/*
 * kdf_test.c - hsmkeys/src/kdf.c and the token derivation against known
 * answers: tests/data/derivation-vectors.txt (made by gen-vectors.py with
 * Python's hmac), the reference SP 800-108 of tests/lib/refkdf.c,
 * and the vectors published in docs/DERIVATION.md.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "test.h"
#include "refkdf.h"
#include "softhsm.h"
#include "kdf.h"

typedef struct vec {
    char seed[32], domain[64];
    uint64_t epoch;
    unsigned char master[32], name[16], aes[32], hmac[32], kcv[8];
} vec;

static size_t load(const char *path, vec *v, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[300], key[32], val[200];
    size_t n = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) && n < max) {
        if (sscanf(line, "%31s = %199s", key, val) != 2)
            continue;
        if (!strcmp(key, "seed")) snprintf(v[n].seed, sizeof v[n].seed, "%.31s", val);
        else if (!strcmp(key, "master")) t_unhex(val, v[n].master, 32);
        else if (!strcmp(key, "domain")) snprintf(v[n].domain, sizeof v[n].domain, "%.63s", val);
        else if (!strcmp(key, "epoch")) v[n].epoch = strtoull(val, NULL, 10);
        else if (!strcmp(key, "name")) t_unhex(val, v[n].name, 16);
        else if (!strcmp(key, "aes")) t_unhex(val, v[n].aes, 32);
        else if (!strcmp(key, "hmac")) t_unhex(val, v[n].hmac, 32);
        else if (!strcmp(key, "kcv")) { t_unhex(val, v[n].kcv, 8); n++; }
    }
    fclose(f);
    return n;
}

/* kdf.c driven by a software PRF (HMAC with the known master). */
static int ossl_prf(void *arg, const unsigned char *m, size_t len, unsigned char out[32])
{
    unsigned int ol = 32;
    return HMAC(EVP_sha256(), arg, 32, m, len, out, &ol) != NULL ? HSMKEYS_OK : HSMKEYS_E_INVALID;
}

static int64_t clock_now;

static int64_t t_clock_read_var(void *arg)
{
    return __atomic_load_n((int64_t *)arg, __ATOMIC_RELAXED);
}

static void check_vector(const t_hsm *h, const vec *v)
{
    char name[160];
    unsigned char seedm[32], n[16], aes[32], mac[32], ind[64], tag[HK_TAG_LEN], kcv[8];
    hsmkeys_ctx *ctx;
    size_t dl = strlen(v->domain);

    snprintf(name, sizeof name, "vector seed=%s domain=%s epoch=%llu: token derivation = OpenSSL HMAC = published",
             v->seed, v->domain, (unsigned long long)v->epoch);
    T_CASE(name) {
        t_master_from_seed(v->seed, seedm);
        T_EQ_MEM(seedm, v->master, 32);
        /* independent computation */
        t_ref_epoch_keys(v->master, v->domain, v->epoch, ind);
        T_EQ_MEM(ind, v->aes, 32);
        T_EQ_MEM(ind + 32, v->hmac, 32);
        t_ref_kdf(v->master, 32, HK_LABEL_NAME, (unsigned char *)v->domain, dl, tag, HK_TAG_LEN);
        T_EQ_MEM(tag, v->name + 1, HK_TAG_LEN);
        /* kdf.c with a software PRF */
        T_RC(hk_kdf_check_value(ossl_prf, (void *)v->master, kcv), HSMKEYS_OK);
        T_EQ_MEM(kcv, v->kcv, 8);
        /* the token */
        __atomic_store_n(&clock_now, (int64_t)(v->epoch * 3600), __ATOMIC_RELAXED);
        ctx = t_open(h, strcmp(v->seed, "fleet") == 0 ? "S1" : "S3", v->domain, NULL, NULL, &clock_now);
        T_TRUE(ctx != NULL);
        if (ctx != NULL) {
            T_RC(hsmkeys_epoch_key(ctx, v->epoch, n, aes, mac), HSMKEYS_OK);
            T_EQ_MEM(n, v->name, 16);
            T_EQ_MEM(aes, v->aes, 32);
            T_EQ_MEM(mac, v->hmac, 32);
            hsmkeys_close(ctx);
        }
    }
}

static void check_published(const vec *v, size_t nv)
{
    char path[512], *doc = NULL, hex[130];
    const char *root = getenv("HSMKEYS_ROOT") ? getenv("HSMKEYS_ROOT") : ".";
    FILE *f = NULL;
    long len;
    size_t i;

    snprintf(path, sizeof path, "%s/docs/DERIVATION.md", root);
    T_CASE("docs/DERIVATION.md exists") {
        f = fopen(path, "r");
        T_TRUE(f != NULL);
    }
    if (f == NULL)
        return;
    T_CASE("docs/DERIVATION.md publishes every vector") {
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        doc = calloc(1, (size_t)len + 1);
        T_EQ_INT(fread(doc, 1, (size_t)len, f), len);
        fclose(f);
        for (i = 0; i < nv; i++) {
            t_hex(hex, sizeof hex, v[i].name, 16);  T_CONTAINS(doc, hex);
            t_hex(hex, sizeof hex, v[i].aes, 32);   T_CONTAINS(doc, hex);
            t_hex(hex, sizeof hex, v[i].hmac, 32);  T_CONTAINS(doc, hex);
        }
        free(doc);
    }
}

/* tests/data/cache-key-vectors.txt: the session cache keys through a token
 * context opened with session-cache=yes, against the file (Python's hmac)
 * and the published document. */
static void check_cache_vectors(const t_hsm *h, const char *root)
{
    char path[512], line[300], key[32], val[200], seed[32] = "", domain[64] = "", uri[700];
    char *doc = NULL;
    unsigned char seal[32], idk[32], want_seal[32], want_id[32];
    uint64_t epoch = 0;
    int n = 0, ok = 0;
    long len;
    FILE *f, *d;

    snprintf(path, sizeof path, "%s/docs/DERIVATION.md", root);
    if ((d = fopen(path, "r")) != NULL) {
        fseek(d, 0, SEEK_END);
        len = ftell(d);
        rewind(d);
        doc = calloc(1, (size_t)len + 1);
        if (doc == NULL || fread(doc, 1, (size_t)len, d) != (size_t)len)
            doc[0] = '\0';
        fclose(d);
    }
    snprintf(path, sizeof path, "%s/tests/data/cache-key-vectors.txt", root);
    f = fopen(path, "r");
    T_CASE("session cache key vectors: token = Python's hmac = published") {
        T_TRUE(f != NULL && doc != NULL);
        while (f != NULL && fgets(line, sizeof line, f)) {
            if (sscanf(line, "%31s = %199s", key, val) != 2)
                continue;
            if (!strcmp(key, "seed")) snprintf(seed, sizeof seed, "%.31s", val);
            else if (!strcmp(key, "domain")) snprintf(domain, sizeof domain, "%.63s", val);
            else if (!strcmp(key, "epoch")) epoch = strtoull(val, NULL, 10);
            else if (!strcmp(key, "seal")) t_unhex(val, want_seal, 32);
            else if (!strcmp(key, "id_key")) {
                hsmkeys_config *c;
                hsmkeys_ctx *ctx = NULL;
                t_unhex(val, want_id, 32);
                n++;
                if (doc != NULL)
                    T_CONTAINS(doc, val);
                __atomic_store_n(&clock_now, (int64_t)(epoch * 3600), __ATOMIC_RELAXED);
                t_uri(uri, sizeof uri, strcmp(seed, "fleet") == 0 ? "S1" : "S3", h->pin_file);
                T_RC(hsmkeys_config_new(&c), HSMKEYS_OK);
                hsmkeys_config_set(c, "uri", uri);
                hsmkeys_config_set(c, "domain", domain);
                T_RC(hsmkeys_config_set(c, "session-cache", "yes"), HSMKEYS_OK);
                hsmkeys_config_set_clock(c, t_clock_read_var, &clock_now);
                T_RC(hsmkeys_open(c, &ctx), HSMKEYS_OK);
                hsmkeys_config_free(c);
                if (ctx == NULL)
                    continue;
                T_RC(hsmkeys_cache_key(ctx, epoch, seal, idk), HSMKEYS_OK);
                if (!memcmp(seal, want_seal, 32) && !memcmp(idk, want_id, 32))
                    ok++;
                T_EQ_MEM(seal, want_seal, 32);
                T_EQ_MEM(idk, want_id, 32);
                hsmkeys_wipe(seal, sizeof seal);
                hsmkeys_wipe(idk, sizeof idk);
                hsmkeys_close(ctx);
            }
        }
        T_EQ_INT(n, 5);
        T_EQ_INT(ok, 5);
    }
    if (f != NULL)
        fclose(f);
    free(doc);
}

static void check_names(void)
{
    unsigned char tag[HK_TAG_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, out[HK_TAG_LEN], name[16];
    uint64_t e;
    T_CASE("key names round-trip; an unknown version is malformed") {
        hk_name_encode(tag, UINT64_C(0x123456789abc), name);
        T_EQ_INT(name[0], HK_NAME_VERSION);
        T_RC(hk_name_decode(name, out, &e), HSMKEYS_OK);
        T_EQ_MEM(out, tag, HK_TAG_LEN);
        T_EQ_INT(e, UINT64_C(0x123456789abc));
        T_RC(hsmkeys_name_epoch(name, &e), HSMKEYS_OK);
        name[0] = 0x02;
        T_RC(hsmkeys_name_epoch(name, &e), HSMKEYS_E_MALFORMED);
        T_CONTAINS(hsmkeys_last_error(), "not an hsmkeys v1 key name");
    }
}

int main(void)
{
    vec v[16];
    char path[512];
    const char *root = getenv("HSMKEYS_ROOT") ? getenv("HSMKEYS_ROOT") : ".";
    size_t n, i;
    t_hsm h;

    snprintf(path, sizeof path, "%s/tests/data/derivation-vectors.txt", root);
    n = load(path, v, 16);
    T_CASE("the vector file loads") { T_EQ_INT(n, 6); }
    if (t_fleet_setup(&h) != 0)
        return 1;
    for (i = 0; i < n; i++)
        check_vector(&h, &v[i]);
    check_published(v, n);
    check_cache_vectors(&h, root);
    check_names();
    t_hsm_cleanup(&h);
    return t_done();
}
