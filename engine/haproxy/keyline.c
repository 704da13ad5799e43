/*
 * keyline.c - derive an epoch's key and encode it as HAProxy's base64 line
 * (layout in keyline.h).  Threat: key bytes left in memory; the raw record is
 * wiped on every path.
 */
#include <string.h>
#include <openssl/evp.h>
#include "keyline.h"

int hf_keyline(hsmkeys_ctx *ctx, uint64_t epoch, unsigned char *scratch,
               char *line, char *name_hex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *name = scratch;
    unsigned char *aes = scratch + HSMKEYS_KEY_NAME_LEN;
    unsigned char *hmac = aes + HSMKEYS_AES_KEY_LEN;
    int rc, n;

    memset(line, 0, HF_KEYLINE_LEN + 1);
    rc = hsmkeys_epoch_key(ctx, epoch, name, aes, hmac);
    if (rc == HSMKEYS_OK) {
        for (int i = 0; i < HSMKEYS_KEY_NAME_LEN; i++) {
            name_hex[2 * i] = hex[name[i] >> 4];
            name_hex[2 * i + 1] = hex[name[i] & 15];
        }
        name_hex[HF_NAME_HEX_LEN] = '\0';
        n = EVP_EncodeBlock((unsigned char *)line, scratch, HF_KEY_RECORD_LEN);
        if (n != HF_KEYLINE_LEN) { /* cannot happen for 80 bytes; never send a short key */
            hsmkeys_wipe(line, HF_KEYLINE_LEN + 1);
            rc = HSMKEYS_E_INVALID;
        }
    }
    hsmkeys_wipe(scratch, HF_KEY_RECORD_LEN);
    return rc;
}
