/* config_test.c - hsmkeys/src/config.c: durations and option checks. */
#include "test.h"
#include "config.h"

int main(void)
{
    int64_t s;
    hsmkeys_config *c;

    T_CASE("durations: seconds and s/m/h/d, combined") {
        T_RC(hk_parse_duration("epoch", "3600", &s), HSMKEYS_OK); T_EQ_INT(s, 3600);
        T_RC(hk_parse_duration("epoch", "90s", &s), HSMKEYS_OK); T_EQ_INT(s, 90);
        T_RC(hk_parse_duration("epoch", "15m", &s), HSMKEYS_OK); T_EQ_INT(s, 900);
        T_RC(hk_parse_duration("epoch", "1h30m", &s), HSMKEYS_OK); T_EQ_INT(s, 5400);
        T_RC(hk_parse_duration("epoch", "2d", &s), HSMKEYS_OK); T_EQ_INT(s, 172800);
    }
    T_CASE("bad durations are refused with the option's name") {
        T_RC(hk_parse_duration("epoch", "", &s), HSMKEYS_E_INVALID);
        T_RC(hk_parse_duration("lifetime", "1w", &s), HSMKEYS_E_INVALID);
        T_CONTAINS(hsmkeys_last_error(), "lifetime \"1w\" is not a duration");
        T_RC(hk_parse_duration("epoch", "-5", &s), HSMKEYS_E_INVALID);
        T_RC(hk_parse_duration("epoch", "h", &s), HSMKEYS_E_INVALID);
        T_RC(hk_parse_duration("epoch", "99999999999999", &s), HSMKEYS_E_INVALID);
    }
    T_CASE("options are checked as they are set") {
        T_RC(hsmkeys_config_new(&c), HSMKEYS_OK);
        T_EQ_INT(c->epoch_seconds, HSMKEYS_DEFAULT_EPOCH_SECONDS);
        T_EQ_INT(c->lifetime_seconds, HSMKEYS_DEFAULT_LIFETIME_SECONDS);
        T_RC(hsmkeys_config_set(c, "domain", ""), HSMKEYS_E_INVALID);
        T_RC(hsmkeys_config_set(c, "domain", "bad\x01name"), HSMKEYS_E_INVALID);
        T_RC(hsmkeys_config_set(c, "uri", "file:///etc/key"), HSMKEYS_E_URI);
        T_RC(hsmkeys_config_set(c, "allow-extractable", "maybe"), HSMKEYS_E_INVALID);
        T_RC(hsmkeys_config_set(c, "lifetime", "7d"), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(c, "lifetime", "7d1s"), HSMKEYS_E_INVALID);
        T_RC(hsmkeys_config_set(NULL, "uri", "x"), HSMKEYS_E_INVALID);
        T_RC(hk_config_validate(c), HSMKEYS_E_INVALID);
        T_CONTAINS(hsmkeys_last_error(), "no uri configured");
        T_RC(hsmkeys_config_set(c, "uri", "pkcs11:token=a;object=b"), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(c, "uri", "pkcs11:token=a;object=b?pin-value=1234"), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(c, "domain", "www.example.com"), HSMKEYS_OK);
        T_RC(hk_config_validate(c), HSMKEYS_OK);
        hsmkeys_config_free(c);
    }
    return t_done();
}
