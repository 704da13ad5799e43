/*
 * p11_hmac.c - HMAC-SHA256 on the token (C_SignInit + C_Sign): the only
 * operation the serving key derivation asks of the token.
 *
 * No state.  Threat: a partial or wrong-length MAC used as key material:
 * the output is wiped unless the token returned exactly 32 bytes with CKR_OK.
 */
#include <stdint.h>
#include "p11.h"

int hk_hmac_sha256(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                   const unsigned char *data, size_t len, unsigned char out[32], CK_RV *rv_out)
{
    CK_MECHANISM mech = { CKM_SHA256_HMAC, NULL, 0 };
    CK_ULONG olen = 32;
    CK_RV rv;

    rv = HK_FN(m, C_SignInit)(s, &mech, key);
    if (rv == CKR_OK) {
        rv = HK_FN(m, C_Sign)(s, (CK_BYTE_PTR)(uintptr_t)data, len, out, &olen);
        if (rv == CKR_OK && olen != 32)
            rv = CKR_FUNCTION_FAILED;
        if (rv != CKR_OK)
            hsmkeys_wipe(out, 32);
        *rv_out = rv;
        return hk_p11_check(rv, "C_Sign (HMAC-SHA256)");
    }
    *rv_out = rv;
    return hk_p11_check(rv, "C_SignInit (HMAC-SHA256)");
}
