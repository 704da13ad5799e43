/*
 * keyline.h - one epoch's ticket key in HAProxy's format.
 *
 * Layout: HAProxy's struct tls_sess_key_256, the 80 bytes
 *     name(16) | AES-256 key(32) | HMAC-SHA256 key(32)
 * encoded as one base64 line (108 characters), which is what both the
 * `tls-ticket-keys` file and `set ssl tls-key` take.  The name is the
 * hsmkeys key name, so HAProxy, nginx and Apache fed by the same master and
 * domain resume each other's tickets.
 *
 * Threat: key bytes outliving their use.  The raw record lives only in the
 * caller's locked scratch and is wiped before return; the base64 line goes to
 * the caller's locked buffer, which the caller wipes once sent.
 */
#ifndef HSMKEYS_FEEDER_KEYLINE_H
#define HSMKEYS_FEEDER_KEYLINE_H

#include <stdint.h>
#include <hsmkeys/hsmkeys.h>

#define HF_KEY_RECORD_LEN (HSMKEYS_KEY_NAME_LEN + HSMKEYS_AES_KEY_LEN + HSMKEYS_HMAC_KEY_LEN)
#define HF_KEYLINE_LEN    (4 * ((HF_KEY_RECORD_LEN + 2) / 3)) /* 108, without NUL */
#define HF_NAME_HEX_LEN   (2 * HSMKEYS_KEY_NAME_LEN)

/*
 * Write epoch's key as base64 into line[HF_KEYLINE_LEN + 1] (NUL-terminated)
 * and its public name as hex into name_hex[HF_NAME_HEX_LEN + 1].  scratch
 * must be HF_KEY_RECORD_LEN bytes of locked memory; it is wiped on return.
 * Returns what hsmkeys_epoch_key returns (HSMKEYS_OK, HSMKEYS_E_EXPIRED,
 * HSMKEYS_E_UNAVAILABLE, HSMKEYS_E_TOKEN); on failure line is zeroed.
 */
int hf_keyline(hsmkeys_ctx *ctx, uint64_t epoch, unsigned char *scratch,
               char *line, char *name_hex);

#endif
