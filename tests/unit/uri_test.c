/* uri_test.c - hsmkeys/src/uri.c: RFC 7512 URIs through p11-kit. */
#include "test.h"
#include "p11.h"

int main(void)
{
    hk_uri *u;
    hk_secret pin;
    size_t n;
    const unsigned char *id;

    T_CASE("token, object, module-path and pin-source are read") {
        T_RC(hk_uri_parse("pkcs11:token=S1;object=hsmkeys-master?module-path=/m.so&pin-source=/etc/pin", &u), HSMKEYS_OK);
        T_EQ_STR(hk_uri_object_label(u), "hsmkeys-master");
        T_EQ_STR(hk_uri_module_path(u), "/m.so");
        T_EQ_STR(hk_uri_pin_source(u), "/etc/pin");
        T_EQ_INT(hk_uri_has_pin_value(u), 0);
        hk_uri_free(u);
    }
    T_CASE("percent-encoded ids and type=secret-key are accepted") {
        T_RC(hk_uri_parse("pkcs11:token=S1;id=%48%4b%01;type=secret-key", &u), HSMKEYS_OK);
        id = hk_uri_object_id(u, &n);
        T_EQ_INT(n, 3);
        T_EQ_MEM(id, "HK\x01", 3);
        hk_uri_free(u);
    }
    T_CASE("pin-value is copied into locked memory") {
        T_RC(hk_uri_parse("pkcs11:token=S1;object=k?pin-value=9876", &u), HSMKEYS_OK);
        T_EQ_INT(hk_uri_has_pin_value(u), 1);
        T_RC(hk_uri_pin_value(u, &pin), HSMKEYS_OK);
        T_EQ_MEM(pin.data, "9876", 4);
        hk_secret_free(&pin);
        hk_uri_free(u);
    }
    T_CASE("bad URIs are refused with a reason") {
        T_RC(hk_uri_parse("pkcs11:token=S1;object=k;type=private", &u), HSMKEYS_E_URI);
        T_CONTAINS(hsmkeys_last_error(), "secret-key");
        T_RC(hk_uri_parse("pkcs11:token=S1", &u), HSMKEYS_E_URI);
        T_RC(hk_uri_parse("pkcs11:token=%G1;object=k", &u), HSMKEYS_E_URI);
        T_RC(hk_uri_parse("pkcs11:object=k;bogus=1", &u), HSMKEYS_E_URI);
        T_RC(hk_uri_parse(NULL, &u), HSMKEYS_E_URI);
        T_RC(hk_uri_parse("pkcs12:object=k", &u), HSMKEYS_E_URI);
    }
    return t_done();
}
