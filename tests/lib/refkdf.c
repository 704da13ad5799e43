/* refkdf.c - reference derivation for tests (see refkdf.h). */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include "refkdf.h"

static void ref_hmac(const unsigned char *k, size_t klen, const unsigned char *m, size_t len,
                     unsigned char out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                       OSSL_PARAM_construct_end() };
    size_t ol = 32;
    EVP_MAC_init(c, k, klen, p);
    EVP_MAC_update(c, m, len);
    EVP_MAC_final(c, out, &ol, 32);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

void t_ref_kdf(const unsigned char *key, size_t key_len, const char *label,
               const unsigned char *ctx, size_t clen, unsigned char *out, size_t n)
{
    unsigned char msg[400], block[32];
    size_t ll = strlen(label), pos, off = 0;
    uint32_t i, bits = (uint32_t)n * 8;
    for (i = 1; off < n; i++) {
        pos = 0;
        msg[pos++] = (unsigned char)(i >> 24); msg[pos++] = (unsigned char)(i >> 16);
        msg[pos++] = (unsigned char)(i >> 8); msg[pos++] = (unsigned char)i;
        memcpy(msg + pos, label, ll); pos += ll;
        msg[pos++] = 0;
        if (clen > 0)
            memcpy(msg + pos, ctx, clen);
        pos += clen;
        msg[pos++] = (unsigned char)(bits >> 24); msg[pos++] = (unsigned char)(bits >> 16);
        msg[pos++] = (unsigned char)(bits >> 8); msg[pos++] = (unsigned char)bits;
        ref_hmac(key, key_len, msg, pos, block);
        memcpy(out + off, block, n - off < 32 ? n - off : 32);
        off += 32;
    }
}

void t_ref_epoch_keys(const unsigned char master[32], const char *domain, uint64_t epoch,
                      unsigned char out[64])
{
    unsigned char ctx[300];
    size_t dl = strlen(domain);
    int i;
    memcpy(ctx, domain, dl);
    for (i = 0; i < 8; i++)
        ctx[dl + i] = (unsigned char)(epoch >> (8 * (7 - i)));
    t_ref_kdf(master, 32, "hsmkeys ticket key v1", ctx, dl + 8, out, 64);
}
