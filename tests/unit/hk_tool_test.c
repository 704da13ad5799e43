/*
 * hk_tool_test.c - the rules hsmkeys-tool now takes from the library
 * (hsmkeys/src/hk_tool.h) instead of its own copies: durations as the
 * servers read them, when a generation may be retired (schedule.c), and
 * URIs built by p11-kit (uri.c, hk_uri_build), read back with hk_uri_parse.
 */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "hk_tool.h"

/* The CLI's arithmetic before it moved to schedule.c, kept here as the
 * reference the library's rule must reproduce exactly. */
static int64_t old_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t old_free_from(int64_t next_activation, int64_t l, int64_t p)
{
    int64_t last = old_floor_div(next_activation, p);
    int64_t past = (l + p - 1) / p;
    return (last + past + 2) * p;
}

/* Build, then parse as the tool does; returns the parsed URI or NULL. */
static hk_uri *build_parse(const hk_uri_parts *parts, char **text)
{
    hk_uri *u = NULL;
    *text = NULL;
    if (hk_uri_build(parts, text) != HSMKEYS_OK)
        return NULL;
    if (hk_uri_parse(*text, &u) != HSMKEYS_OK)
        return NULL;
    return u;
}

int main(void)
{
    int64_t v = -1, last = -1;
    char *text = NULL;
    hk_uri *u;

    T_CASE("durations: the servers' rule, 1h30m included (hkt_parse_duration refused it)") {
        T_RC(hk_parse_duration("epoch", "1h30m", &v), HSMKEYS_OK);
        T_EQ_INT(v, 5400);
        T_RC(hk_parse_duration("epoch", "2d", &v), HSMKEYS_OK);
        T_EQ_INT(v, 172800);
        T_RC(hk_parse_duration("epoch", "90", &v), HSMKEYS_OK);
        T_EQ_INT(v, 90);
        T_RC(hk_parse_duration("--activate-in", "1h-5m", &v), HSMKEYS_E_INVALID);
        T_CONTAINS(hsmkeys_last_error(), "--activate-in");
        T_RC(hk_parse_duration("epoch", "", &v), HSMKEYS_E_INVALID);
    }
    T_CASE("retire time: schedule.c gives exactly the CLI's former arithmetic") {
        static const int64_t p[] = { 1, 60, 3600, 86400 }, l[] = { 1, 59, 3600, 7200, 604800 };
        int bad = 0;
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
            for (size_t j = 0; j < sizeof l / sizeof l[0]; j++)
                for (int64_t a = 0; a < 5 * p[i] + 3; a += p[i] > 7 ? p[i] / 7 : 1)
                    if (hk_retire_time(a, l[j], p[i], NULL) != old_free_from(a, l[j], p[i]))
                        bad++;
        T_EQ_INT(bad, 0);
        /* successor active from 10:00 (on a boundary), epoch 1h, lifetime 2h:
         * last epoch 10 (conservative), decrypting 2 more, 1 for skew */
        T_EQ_INT(hk_retire_time(36000, 7200, 3600, &last), (10 + 2 + 2) * 3600);
        T_EQ_INT(last, 10);
        T_EQ_INT(hk_retire_time(36001, 7200, 3600, &last), (10 + 2 + 2) * 3600);
        T_TRUE(hk_generation_unused(1000 + 3601, 1000, 3600));
        T_TRUE(!hk_generation_unused(1000 + 3600, 1000, 3600));
    }
    T_CASE("URIs: --token T gives token=T with the default object, built by p11-kit") {
        hk_uri_parts parts = { .token = "S1", .default_object = "hsmkeys-master" };
        CK_TOKEN_INFO ti;
        u = build_parse(&parts, &text);
        T_TRUE(u != NULL);
        if (u) {
            T_EQ_STR(hk_uri_object_label(u), "hsmkeys-master");
            memset(&ti, ' ', sizeof ti);
            memcpy(ti.label, "S1", 2);
            T_TRUE(hk_uri_match_token(u, &ti));
            memcpy(ti.label, "S2", 2);
            T_TRUE(!hk_uri_match_token(u, &ti));
        }
        hk_uri_free(u);
        hk_uri_string_free(text);
    }
    T_CASE("URIs: a base keeps its object and query attributes; one without gets the default") {
        hk_uri_parts keep = { .base = "pkcs11:token=A;object=mine?module-path=/x/p11.so&pin-source=/p",
                              .default_object = "hsmkeys-master" };
        hk_uri_parts add = { .base = "pkcs11:token=A?pin-source=/p", .default_object = "dflt" };
        u = build_parse(&keep, &text);
        T_TRUE(u != NULL);
        if (u) {
            T_EQ_STR(hk_uri_object_label(u), "mine");
            T_EQ_STR(hk_uri_module_path(u), "/x/p11.so");
            T_EQ_STR(hk_uri_pin_source(u), "/p");
        }
        hk_uri_free(u);
        hk_uri_string_free(text);
        u = build_parse(&add, &text);
        T_TRUE(u != NULL);
        if (u) {
            T_EQ_STR(hk_uri_object_label(u), "dflt");
            T_EQ_STR(hk_uri_pin_source(u), "/p");
        }
        hk_uri_free(u);
        hk_uri_string_free(text);
    }
    T_CASE("URIs: labels with ; = ? % and spaces, and binary ids, survive the round trip") {
        static const unsigned char id[] = { 0x00, 0x2f, 0xff, 0x3b };
        hk_uri_parts parts = { .object = "a b;c=d?e%f", .id = id, .id_len = sizeof id };
        const unsigned char *got;
        size_t len = 0;
        u = build_parse(&parts, &text);
        T_TRUE(u != NULL);
        if (u) {
            T_EQ_STR(hk_uri_object_label(u), "a b;c=d?e%f");
            got = hk_uri_object_id(u, &len);
            T_EQ_INT(len, sizeof id);
            if (got && len == sizeof id)
                T_EQ_MEM(got, id, sizeof id);
        }
        hk_uri_free(u);
        hk_uri_string_free(text);
    }
    T_CASE("URIs: bad bases are refused with hk_uri_parse's own messages") {
        hk_uri_parts notpk = { .base = "https://x/", .default_object = "m" };
        hk_uri_parts unknown = { .base = "pkcs11:token=A;colour=blue", .default_object = "m" };
        hk_uri_parts longtok = { .token = "a-token-label-longer-than-thirty-two-bytes" };
        T_RC(hk_uri_build(&notpk, &text), HSMKEYS_E_URI);
        T_CONTAINS(hsmkeys_last_error(), "must start with \"pkcs11:\"");
        T_RC(hk_uri_build(&unknown, &text), HSMKEYS_E_URI);
        T_CONTAINS(hsmkeys_last_error(), "does not understand");
        T_RC(hk_uri_build(&longtok, &text), HSMKEYS_E_URI);
        T_CONTAINS(hsmkeys_last_error(), "1 to 32 bytes");
        T_TRUE(text == NULL);
    }
    return t_done();
}
