/*
 * blob.c - encode and check the wrapped-master file (layout in blob.h).
 *
 * Threat: a truncated, corrupted or foreign file must be refused before any
 * token call, with a message that says which check failed; every length is
 * bounded before it is used.
 */
#include <openssl/evp.h>
#include <string.h>
#include "blob.h"

static const unsigned char magic[4] = {'H', 'K', 'W', 'B'};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
    unsigned int l = 0;
    return EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) && l == 32 ? 0 : -1;
}

size_t hkt_blob_encode_body(struct hkt_blob *b, unsigned char *out)
{
    size_t ll = strnlen(b->label, sizeof b->label), n = 0;
    if (ll == 0 || ll > HKT_BLOB_MAX_LABEL || b->wrapped_len == 0 || b->wrapped_len > HKT_BLOB_MAX_WRAPPED)
        return 0;
    memcpy(out, magic, 4); n = 4;
    out[n++] = HKT_BLOB_VERSION;
    out[n++] = b->mech;
    memcpy(out + n, b->target, HKT_FP_LEN); n += HKT_FP_LEN;
    memcpy(out + n, b->id, HK_MASTER_ID_LEN); n += HK_MASTER_ID_LEN;
    put32(out + n, b->key_type); n += 4;
    memcpy(out + n, b->kcv, HK_CHECK_VALUE_LEN); n += HK_CHECK_VALUE_LEN;
    out[n++] = (unsigned char)ll;
    memcpy(out + n, b->label, ll); n += ll;
    out[n++] = (unsigned char)(b->wrapped_len >> 8);
    out[n++] = (unsigned char)b->wrapped_len;
    memcpy(out + n, b->wrapped, b->wrapped_len); n += b->wrapped_len;
    if (sha256(out, n, b->body_digest) != 0)
        return 0;
    return n;
}

size_t hkt_blob_encode(struct hkt_blob *b, unsigned char *out)
{
    size_t n = hkt_blob_encode_body(b, out);
    if (n == 0)
        return 0;
    memcpy(out + n, b->mac, HKT_BLOB_MAC_LEN); n += HKT_BLOB_MAC_LEN;
    if (sha256(out, n, out + n) != 0)
        return 0;
    return n + 32;
}

int hkt_blob_decode(const unsigned char *in, size_t len, struct hkt_blob *b)
{
    const size_t fixed = 4 + 1 + 1 + HKT_FP_LEN + HK_MASTER_ID_LEN + 4 + HK_CHECK_VALUE_LEN + 1;
    const size_t tail = HKT_BLOB_MAC_LEN + 32;
    unsigned char sum[32];
    memset(b, 0, sizeof b[0]);
    if (len < 4 || memcmp(in, magic, 4)) {
        hkt_err("not an hsmkeys wrapped-master blob (bad magic): use the file written by "
                "'hsmkeys-tool wrap' on host A");
        return -1;
    }
    if (len >= 5 && in[4] == 0x01) {
        hkt_err("blob format version 1 (an older hsmkeys-tool) does not authenticate its "
                "header (generation, activation, label, key type): nothing was imported; ask "
                "host A's operator to wrap again with this hsmkeys-tool (format %d)",
                HKT_BLOB_VERSION);
        return -1;
    }
    if (len < 5 || in[4] != HKT_BLOB_VERSION) {
        hkt_err("blob version %d is not supported by this hsmkeys-tool (knows %d)",
                len < 5 ? -1 : in[4], HKT_BLOB_VERSION);
        return -1;
    }
    if (len < fixed + 2 + tail)
        goto corrupt;
    if (sha256(in, len - 32, sum) != 0 || memcmp(sum, in + len - 32, 32))
        goto corrupt;
    size_t n = 5;
    b->mech = in[n++];
    if (b->mech != HKT_BLOB_MECH_OAEP_SHA1) {
        hkt_err("blob uses wrapping mechanism %u, unknown to this hsmkeys-tool", b->mech);
        return -1;
    }
    memcpy(b->target, in + n, HKT_FP_LEN); n += HKT_FP_LEN;
    memcpy(b->id, in + n, HK_MASTER_ID_LEN); n += HK_MASTER_ID_LEN;
    b->key_type = (uint32_t)in[n] << 24 | (uint32_t)in[n + 1] << 16 | (uint32_t)in[n + 2] << 8 | in[n + 3];
    n += 4;
    memcpy(b->kcv, in + n, HK_CHECK_VALUE_LEN); n += HK_CHECK_VALUE_LEN;
    size_t ll = in[n++];
    if (ll == 0 || ll > HKT_BLOB_MAX_LABEL || n + ll + 2 > len - tail)
        goto corrupt;
    memcpy(b->label, in + n, ll); n += ll;
    b->label[ll] = 0;
    if (memchr(b->label, 0, ll))
        goto corrupt;
    b->wrapped_len = (size_t)in[n] << 8 | in[n + 1];
    n += 2;
    if (b->wrapped_len == 0 || b->wrapped_len > HKT_BLOB_MAX_WRAPPED || n + b->wrapped_len != len - tail)
        goto corrupt;
    memcpy(b->wrapped, in + n, b->wrapped_len);
    n += b->wrapped_len;
    if (sha256(in, n, b->body_digest) != 0)
        goto corrupt;
    memcpy(b->mac, in + n, HKT_BLOB_MAC_LEN);
    return 0;
corrupt:
    hkt_err("blob is corrupted or truncated (checksum or length mismatch): ask host A's operator "
            "for a fresh copy (hsmkeys-tool wrap)");
    return -1;
}
