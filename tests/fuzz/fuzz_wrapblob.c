/*
 * fuzz_wrapblob.c - the provisioning tool's wrapped-master file parser
 * (hkt_blob_decode, provisioning/src/blob.h): the file travels by mail and
 * is hostile until its checks pass (format 2: header MAC, then checksum).
 *
 * Input: byte 0 = mode, then the file.  Mode bit 0 rewrites the trailing
 * SHA-256 to match, so the fuzzer gets past the checksum into the field
 * checks.  Invariant: a file that decodes encodes back to the same bytes.
 */
#include <string.h>
#include <openssl/evp.h>
#include "blob.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[HKT_BLOB_MAX + 64], again[HKT_BLOB_MAX];
    struct hkt_blob b;
    size_t n, m;

    if (size < 1 || size - 1 > sizeof buf)
        return 0;
    n = size - 1;
    memcpy(buf, data + 1, n);
    if ((data[0] & 1) && n >= 32) {
        unsigned int l = 0;
        EVP_Digest(buf, n - 32, buf + n - 32, &l, EVP_sha256(), NULL);
    }
    memset(&b, 0, sizeof b);
    if (hkt_blob_decode(buf, n, &b) != 0)
        return 0;
    fz_check(b.wrapped_len >= 1 && b.wrapped_len <= HKT_BLOB_MAX_WRAPPED, "wrapped length bounded");
    fz_check(strlen(b.label) >= 1 && strlen(b.label) <= HKT_BLOB_MAX_LABEL, "label bounded");
    fz_check(n >= HKT_BLOB_MAC_LEN + 32 + b.wrapped_len, "MAC and checksum inside the file");
    fz_check(memcmp(b.mac, buf + n - 32 - HKT_BLOB_MAC_LEN, HKT_BLOB_MAC_LEN) == 0,
             "the MAC is the one before the checksum");
    m = hkt_blob_encode(&b, again);
    fz_check(m == n && memcmp(again, buf, n) == 0, "decode then encode gives the same file");
    return 0;
}

/* blob.c reports through the tool's hkt_err (util.c, which pulls in the
 * whole tool); the fuzzer only needs it to exist. */
void hkt_err(const char *fmt, ...)
{
    (void)fmt;
}
