/* master_test.c - hsmkeys/src/master.c: CKA_ID format and the master policy. */
#include "test.h"
#include "master.h"

int main(void)
{
    unsigned char id[HK_MASTER_ID_LEN];
    uint32_t g;
    int64_t a;
    hk_master m;

    T_CASE("generation and activation round-trip through CKA_ID") {
        hk_master_id_encode(7, 1800000000, id);
        T_EQ_MEM(id, "HK\x01", 3);
        T_RC(hk_master_id_decode(id, sizeof id, &g, &a), HSMKEYS_OK);
        T_EQ_INT(g, 7);
        T_EQ_INT(a, 1800000000);
        T_RC(hk_master_id_decode(id, 14, &g, &a), HSMKEYS_E_MALFORMED);
        id[2] = 2;
        T_RC(hk_master_id_decode(id, sizeof id, &g, &a), HSMKEYS_E_MALFORMED);
    }
    T_CASE("policy: sensitive and sealed passes; the rest are refused with the fix") {
        memset(&m, 0, sizeof m);
        m.key_type = CKK_GENERIC_SECRET;
        m.sensitive = 1; m.extractable = 0;
        T_RC(hk_master_check_policy(&m, 0), HSMKEYS_OK);
        m.key_type = CKK_SHA256_HMAC;
        T_RC(hk_master_check_policy(&m, 0), HSMKEYS_OK);
        m.key_type = CKK_AES;
        T_RC(hk_master_check_policy(&m, 0), HSMKEYS_E_NO_MASTER);
        m.key_type = CKK_GENERIC_SECRET;
        m.sensitive = -1; /* unreadable attribute: not trusted */
        T_RC(hk_master_check_policy(&m, 0), HSMKEYS_E_UNSAFE_MASTER);
        m.sensitive = 1; m.extractable = -1;
        T_RC(hk_master_check_policy(&m, 1), HSMKEYS_E_UNSAFE_MASTER);
        m.extractable = 1; m.wrap_with_trusted = 1;
        T_RC(hk_master_check_policy(&m, 0), HSMKEYS_E_UNSAFE_MASTER);
        T_CONTAINS(hsmkeys_last_error(), "seal");
        T_RC(hk_master_check_policy(&m, 1), HSMKEYS_OK);
    }
    return t_done();
}
