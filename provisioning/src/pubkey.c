/*
 * pubkey.c - transport public keys: fingerprints and the file B mails to A.
 *
 * Owns: turning an RSA (modulus, exponent) into a SubjectPublicKeyInfo (PEM
 * or DER), its SHA-256 fingerprint, and finding transport keys by it.
 * A transport key's CKA_ID is the first 16 bytes of that fingerprint.
 * Threat: a public key swapped in transit would let an attacker receive the
 * master; the fingerprint is printed on both hosts so the operators compare
 * it over a second channel, and keys under 2048 bits are refused.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static EVP_PKEY *rsa_from(const unsigned char *mod, size_t mod_len,
                          const unsigned char *exp, size_t exp_len)
{
    EVP_PKEY *pk = NULL;
    BIGNUM *n = BN_bin2bn(mod, (int)mod_len, NULL), *e = BN_bin2bn(exp, (int)exp_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (n && e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) > 0)
        if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pk = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(n);
    BN_free(e);
    return pk;
}

static int spki_fingerprint(EVP_PKEY *pk, unsigned char fp[HKT_FP_LEN])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pk, &der);
    unsigned int fl = 0;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, fp, &fl, EVP_sha256(), NULL) && fl == HKT_FP_LEN;
    OPENSSL_free(der);
    return ok ? 0 : -1;
}

int hkt_rsa_fingerprint(const unsigned char *mod, size_t mod_len,
                        const unsigned char *exp, size_t exp_len,
                        unsigned char fp[HKT_FP_LEN])
{
    EVP_PKEY *pk = rsa_from(mod, mod_len, exp, exp_len);
    int rc = pk ? spki_fingerprint(pk, fp) : -1;
    EVP_PKEY_free(pk);
    if (rc)
        hkt_err("cannot encode the RSA public key (OpenSSL failed)");
    return rc;
}

int hkt_pubkey_fingerprint(struct hkt_conn *c, CK_OBJECT_HANDLE pub, unsigned char fp[HKT_FP_LEN])
{
    unsigned char *mod = NULL, *exp = NULL;
    size_t ml = 0, el = 0;
    int rc = -1;
    if (hkt_get_bytes(c, pub, CKA_MODULUS, &mod, &ml) == 0 &&
        hkt_get_bytes(c, pub, CKA_PUBLIC_EXPONENT, &exp, &el) == 0)
        rc = hkt_rsa_fingerprint(mod, ml, exp, el, fp);
    free(mod);
    free(exp);
    return rc;
}

int hkt_pubkey_write(const char *path, const char *format,
                     const unsigned char *mod, size_t mod_len,
                     const unsigned char *exp, size_t exp_len)
{
    int der = format && !strcmp(format, "der");
    if (format && !der && strcmp(format, "pem")) {
        hkt_err("--format %s: use pem or der", format);
        return -1;
    }
    EVP_PKEY *pk = rsa_from(mod, mod_len, exp, exp_len);
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;
    if (pk && bio && (der ? i2d_PUBKEY_bio(bio, pk) : PEM_write_bio_PUBKEY(bio, pk)) > 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        rc = hkt_write_new_file(path, (unsigned char *)p, (size_t)n, 0644);
    } else {
        hkt_err("cannot encode the public key (OpenSSL failed)");
    }
    BIO_free(bio);
    EVP_PKEY_free(pk);
    return rc;
}

static unsigned char *bn_bytes(const EVP_PKEY *pk, const char *name, size_t *len)
{
    BIGNUM *bn = NULL;
    unsigned char *out = NULL;
    if (EVP_PKEY_get_bn_param(pk, name, &bn) && (out = malloc((size_t)BN_num_bytes(bn) + 1)))
        *len = (size_t)BN_bn2bin(bn, out);
    BN_free(bn);
    return out;
}

int hkt_pubkey_read(const char *path, unsigned char **mod, size_t *mod_len,
                    unsigned char **exp, size_t *exp_len, unsigned char fp[HKT_FP_LEN])
{
    unsigned char *buf = NULL;
    size_t len = 0;
    *mod = *exp = NULL;
    if (hkt_read_file(path, &buf, &len, 64 * 1024) != 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (!pk) {
        const unsigned char *p = buf;
        pk = d2i_PUBKEY(NULL, &p, (long)len);
    }
    BIO_free(bio);
    free(buf);
    int rc = -1;
    if (!pk) {
        hkt_err("%s: not a public key file (expected the PEM or DER file written by "
                "'hsmkeys-tool transport-export' on host B)", path);
    } else if (!EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_get_bits(pk) < 2048) {
        hkt_err("%s: transport keys must be RSA of at least 2048 bits", path);
    } else if (!(*mod = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_N, mod_len)) ||
               !(*exp = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_E, exp_len)) ||
               spki_fingerprint(pk, fp) != 0) {
        hkt_err("%s: cannot decode the RSA public key", path);
    } else {
        rc = 0;
    }
    if (rc) {
        free(*mod);
        free(*exp);
        *mod = *exp = NULL;
    }
    EVP_PKEY_free(pk);
    return rc;
}

int hkt_find_transport(struct hkt_conn *c, CK_OBJECT_CLASS cls,
                       const unsigned char fp[HKT_FP_LEN], CK_OBJECT_HANDLE *out)
{
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_ID, (void *)fp, HKT_FP_ID_LEN},
    };
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    if (hkt_find(c, t, 3, h, 8, &n) != 0)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        unsigned char got[HKT_FP_LEN];
        if (cls != CKO_PUBLIC_KEY) {
            *out = h[i]; /* private keys: matched by CKA_ID; the public half is checked */
            return 1;
        }
        if (hkt_pubkey_fingerprint(c, h[i], got) == 0 && !memcmp(got, fp, HKT_FP_LEN)) {
            *out = h[i];
            return 1;
        }
    }
    return 0;
}
