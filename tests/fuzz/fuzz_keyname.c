/*
 * fuzz_keyname.c - hsmkeys_decrypt_key with hostile key names (the 16 bytes
 * a client sends in the clear).
 *
 * Input: byte 0 = mode, then 16 name bytes.  Mode bit 0 splices the fleet's
 * version and tag into the name, so the fuzzer reaches the epoch checks and
 * derivations instead of stopping at the tag.
 * Invariants (abort = finding): only the documented codes come back; no name
 * makes the calling thread call the token (the maintainer thread owns all
 * token work); refused names (malformed, foreign, expired) cause no
 * derivation; an accepted name
 * is the fleet's and inside the window, with renew set exactly when it is
 * not the current epoch; and no sequence of names makes the context derive
 * more than the window's epochs (the clock is frozen).
 */
#include <string.h>
#include "fuzz_env.h"
#include "p11.h" /* hk_p11_thread_calls: PKCS#11 calls made by this thread */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_env *e = fz_env_get();
    unsigned char name[16], aes[32], hmac[32];
    hsmkeys_stats before, after;
    uint64_t ep = 0, calls_before;
    int renew = -1, rc;

    if (size < 17)
        return 0;
    memcpy(name, data + 1, 16);
    if (data[0] & 1) {
        name[0] = 0x01;
        memcpy(name + 1, e->tag, 9);
    }
    hsmkeys_get_stats(e->ctx, &before);
    calls_before = hk_p11_thread_calls;
    rc = hsmkeys_decrypt_key(e->ctx, name, aes, hmac, &renew);
    fz_check(hk_p11_thread_calls == calls_before, "a handshake made a token call");
    hsmkeys_get_stats(e->ctx, &after);
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);

    fz_check(rc == HSMKEYS_OK || rc == HSMKEYS_E_MALFORMED || rc == HSMKEYS_E_FOREIGN ||
             rc == HSMKEYS_E_EXPIRED || rc == HSMKEYS_E_UNAVAILABLE, "documented result code");
    if (rc == HSMKEYS_E_MALFORMED || rc == HSMKEYS_E_FOREIGN || rc == HSMKEYS_E_EXPIRED)
        fz_check(after.token_derivations == before.token_derivations,
                 "refused name made a derivation");
    if (rc == HSMKEYS_OK) {
        fz_check(hsmkeys_name_epoch(name, &ep) == HSMKEYS_OK, "accepted name parses");
        fz_check(memcmp(name + 1, e->tag, 9) == 0, "accepted name has the fleet tag");
        fz_check(ep + e->window >= e->epoch && ep <= e->epoch + 1, "accepted epoch in window");
        fz_check(renew == (ep != e->epoch), "renew exactly for non-current epochs");
    }
    fz_check(after.token_derivations <= e->window + 2 + 2, "derivations bounded by the window");
    return 0;
}
