/*
 * kdf.c - SP 800-108 counter-mode KDF and the key-name format (see kdf.h
 * and docs/DERIVATION.md).
 *
 * The PRF is supplied by the caller (the token's HMAC in production, so the
 * master never leaves the token).  Every PRF output and input that could
 * hold key material is wiped before return.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "kdf.h"

/* [i]32 || Label || 0x00 || Context || [L]32 fits in this with the largest
 * label, a 255-byte domain and an 8-byte epoch. */
#define HK_KDF_MSG_MAX (4 + 64 + 1 + HK_DOMAIN_MAX + 8 + 4)

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

int hk_kdf_counter(hk_prf_fn prf, void *arg, const char *label,
                   const unsigned char *context, size_t context_len,
                   unsigned char *out, size_t out_len)
{
    unsigned char msg[HK_KDF_MSG_MAX], block[32];
    size_t label_len = strlen(label), pos, off = 0;
    uint32_t i;
    int rc = HSMKEYS_OK;

    if (out_len == 0 || out_len > 255 * 32 || label_len > 64 ||
        context_len > HK_KDF_MSG_MAX - 4 - 64 - 1 - 4)
        return hk_fail(HSMKEYS_E_INVALID, "KDF input out of range");
    pos = 4;
    memcpy(msg + pos, label, label_len); pos += label_len;
    msg[pos++] = 0x00;
    if (context_len > 0)
        memcpy(msg + pos, context, context_len);
    pos += context_len;
    put_be32(msg + pos, (uint32_t)(out_len * 8)); pos += 4;
    for (i = 1; off < out_len; i++) {
        size_t take = out_len - off < 32 ? out_len - off : 32;
        put_be32(msg, i);
        rc = prf(arg, msg, pos, block);
        if (rc != HSMKEYS_OK) {
            hsmkeys_wipe(out, out_len);
            break;
        }
        memcpy(out + off, block, take);
        off += take;
    }
    hsmkeys_wipe(block, sizeof block);
    hsmkeys_wipe(msg, sizeof msg);
    return rc;
}

static int domain_context(const char *domain, unsigned char *ctx, size_t *len)
{
    size_t n = domain != NULL ? strlen(domain) : 0;
    if (n == 0 || n > HK_DOMAIN_MAX)
        return hk_fail(HSMKEYS_E_INVALID, "ticket domain must be 1..%d bytes", HK_DOMAIN_MAX);
    memcpy(ctx, domain, n);
    *len = n;
    return HSMKEYS_OK;
}

int hk_kdf_epoch_keys(hk_prf_fn prf, void *arg, const char *label, const char *domain,
                      uint64_t epoch, unsigned char out[HK_EPOCH_KEYS_LEN])
{
    unsigned char ctx[HK_DOMAIN_MAX + 8];
    size_t n = 0;
    int i;
    HK_TRY(domain_context(domain, ctx, &n));
    for (i = 7; i >= 0; i--)
        ctx[n++] = (unsigned char)(epoch >> (8 * i));
    return hk_kdf_counter(prf, arg, label, ctx, n, out, HK_EPOCH_KEYS_LEN);
}

int hk_kdf_name_tag_label(hk_prf_fn prf, void *arg, const char *label, const char *domain,
                          unsigned char tag[HK_TAG_LEN])
{
    unsigned char ctx[HK_DOMAIN_MAX];
    size_t n = 0;
    HK_TRY(domain_context(domain, ctx, &n));
    return hk_kdf_counter(prf, arg, label, ctx, n, tag, HK_TAG_LEN);
}

int hk_kdf_name_tag(hk_prf_fn prf, void *arg, const char *domain, unsigned char tag[HK_TAG_LEN])
{
    return hk_kdf_name_tag_label(prf, arg, HK_LABEL_NAME, domain, tag);
}

int hk_epoch_check_value(const unsigned char keys[HK_EPOCH_KEYS_LEN],
                         unsigned char kcv[HK_CHECK_VALUE_LEN])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    if (HMAC(EVP_sha256(), keys, HK_EPOCH_KEYS_LEN, (const unsigned char *)HK_LABEL_EPOCH_KCV,
             strlen(HK_LABEL_EPOCH_KCV), mac, &len) == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "HMAC for the epoch check value failed");
    memcpy(kcv, mac, HK_CHECK_VALUE_LEN);
    hsmkeys_wipe(mac, sizeof mac);
    return HSMKEYS_OK;
}

int hk_kdf_check_value(hk_prf_fn prf, void *arg, unsigned char kcv[HK_CHECK_VALUE_LEN])
{
    return hk_kdf_counter(prf, arg, HK_LABEL_CHECK, NULL, 0, kcv, HK_CHECK_VALUE_LEN);
}

void hk_name_encode(const unsigned char tag[HK_TAG_LEN], uint64_t epoch, unsigned char name[16])
{
    int i;
    name[0] = HK_NAME_VERSION;
    memcpy(name + 1, tag, HK_TAG_LEN);
    for (i = 0; i < 6; i++)
        name[10 + i] = (unsigned char)(epoch >> (8 * (5 - i)));
}

int hk_name_decode(const unsigned char name[16], unsigned char tag[HK_TAG_LEN], uint64_t *epoch)
{
    uint64_t e = 0;
    int i;
    if (name[0] != HK_NAME_VERSION)
        return HSMKEYS_E_MALFORMED; /* hot path: no message formatting */
    memcpy(tag, name + 1, HK_TAG_LEN);
    for (i = 0; i < 6; i++)
        e = (e << 8) | name[10 + i];
    *epoch = e;
    return HSMKEYS_OK;
}

int hsmkeys_name_epoch(const unsigned char name[HSMKEYS_KEY_NAME_LEN], uint64_t *epoch)
{
    unsigned char tag[HK_TAG_LEN];
    if (name == NULL || epoch == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_name_epoch: NULL argument");
    if (hk_name_decode(name, tag, epoch) != HSMKEYS_OK)
        return hk_fail(HSMKEYS_E_MALFORMED, "not an hsmkeys v%d key name (first byte 0x%02x)",
                       HK_NAME_VERSION, name[0]);
    return HSMKEYS_OK;
}
