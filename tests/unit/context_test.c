/*
 * context_test.c - hsmkeys_open (hsmkeys/src/context.c, config.c,
 * keysource_token.c, master.c): every bad input is refused with its code
 * and a message that says what is wrong and how to fix it.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include "test.h"
#include "softhsm.h"

static t_hsm h;
static char warned[600];

static void capture_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= HSMKEYS_LOG_WARNING)
        snprintf(warned, sizeof warned, "%s", msg);
}

static int try_open(const char *uri, const char *opt, const char *val, hsmkeys_ctx **out)
{
    hsmkeys_config *c;
    int rc;
    *out = NULL;
    if (hsmkeys_config_new(&c) != HSMKEYS_OK)
        return -100;
    rc = hsmkeys_config_set(c, "uri", uri);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_config_set(c, "domain", "www.example.com");
    if (rc == HSMKEYS_OK && opt != NULL)
        rc = hsmkeys_config_set(c, opt, val);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_open(c, out);
    hsmkeys_config_free(c);
    return rc;
}

static void expect(const char *what, const char *uri, const char *opt, const char *val,
                   int code, const char *msg)
{
    hsmkeys_ctx *ctx;
    T_CASE(what) {
        T_RC(try_open(uri, opt, val, &ctx), code);
        T_CONTAINS(hsmkeys_last_error(), msg);
        T_TRUE((ctx == NULL) == (code != HSMKEYS_OK));
        hsmkeys_close(ctx);
    }
}

static void uri_for(char *out, size_t n, const char *token, const char *object, const char *pin_file)
{
    snprintf(out, n, "pkcs11:token=%s;object=%s?module-path=%s&pin-source=%s",
             token, object, T_SOFTHSM_MODULE, pin_file);
}

int main(void)
{
    char uri[800], wrong_pin[400], open_pin[400], missing_pin[400];
    unsigned char m[32];
    t_master_opts o = { 0 };

    if (t_fleet_setup(&h) != 0 || t_token_init(T_SOFTHSM_MODULE, "S4", T_SO_PIN, T_USER_PIN))
        return 1;
    t_master_from_seed("s4", m);
    o.label = "not-sensitive"; o.not_sensitive = 1;
    t_master_import(T_SOFTHSM_MODULE, "S4", T_USER_PIN, m, 32, &o);
    memset(&o, 0, sizeof o);
    o.label = "extractable-wwt"; o.extractable = 1; o.wrap_with_trusted = 1;
    t_master_import(T_SOFTHSM_MODULE, "S4", T_USER_PIN, m, 32, &o);
    memset(&o, 0, sizeof o);
    o.label = "extractable-plain"; o.extractable = 1;
    t_master_import(T_SOFTHSM_MODULE, "S4", T_USER_PIN, m, 32, &o);
    memset(&o, 0, sizeof o);
    o.label = "vendor"; o.vendor_id = 1;
    t_master_import(T_SOFTHSM_MODULE, "S4", T_USER_PIN, m, 32, &o);

    snprintf(wrong_pin, sizeof wrong_pin, "%s/wrong-pin", h.dir);
    snprintf(open_pin, sizeof open_pin, "%s/open-pin", h.dir);
    snprintf(missing_pin, sizeof missing_pin, "%s/no-such-pin", h.dir);
    t_write_file(wrong_pin, "not-the-pin\n", 0600);
    t_write_file(open_pin, T_USER_PIN, 0644);
    chmod(open_pin, 0644);

    uri_for(uri, sizeof uri, "S1", "hsmkeys-master", h.pin_file);
    expect("a good URI opens", uri, NULL, NULL, HSMKEYS_OK, "");
    uri_for(uri, sizeof uri, "S1", "hsmkeys-master", wrong_pin);
    expect("wrong PIN: login refused, says the PIN is wrong", uri, NULL, NULL, HSMKEYS_E_LOGIN,
           "CKR_PIN_INCORRECT");
    uri_for(uri, sizeof uri, "NOPE", "hsmkeys-master", h.pin_file);
    expect("missing token: names the tokens present", uri, NULL, NULL, HSMKEYS_E_NO_TOKEN,
           "no token matches the URI");
    uri_for(uri, sizeof uri, "S1", "no-such-key", h.pin_file);
    expect("missing object: no master", uri, NULL, NULL, HSMKEYS_E_NO_MASTER,
           "no secret key labelled \"no-such-key\"");
    uri_for(uri, sizeof uri, "S4", "not-sensitive", h.pin_file);
    expect("non-sensitive master refused", uri, NULL, NULL, HSMKEYS_E_UNSAFE_MASTER,
           "is not CKA_SENSITIVE");
    uri_for(uri, sizeof uri, "S4", "extractable-wwt", h.pin_file);
    expect("extractable master refused: says to seal it", uri, NULL, NULL,
           HSMKEYS_E_UNSAFE_MASTER, "hsmkeys-tool seal");
    expect("extractable (wrap-with-trusted) master allowed when explicitly asked", uri,
           "allow-extractable", "yes", HSMKEYS_OK, "");
    uri_for(uri, sizeof uri, "S4", "extractable-plain", h.pin_file);
    expect("extractable master without wrap-with-trusted refused even when allowed", uri,
           "allow-extractable", "yes", HSMKEYS_E_UNSAFE_MASTER, "without CKA_WRAP_WITH_TRUSTED");
    uri_for(uri, sizeof uri, "S4", "vendor", h.pin_file);
    expect("a master made by another tool is adopted as generation 0", uri, NULL, NULL,
           HSMKEYS_OK, "");
    uri_for(uri, sizeof uri, "S1", "hsmkeys-master", open_pin);
    expect("PIN file readable by others refused: says chmod 600", uri, NULL, NULL, HSMKEYS_E_PIN,
           "chmod 600");
    uri_for(uri, sizeof uri, "S1", "hsmkeys-master", missing_pin);
    expect("missing PIN file refused", uri, NULL, NULL, HSMKEYS_E_PIN, "cannot open PIN file");
    expect("no PIN source refused", "pkcs11:token=S1;object=hsmkeys-master?module-path="
           T_SOFTHSM_MODULE, NULL, NULL, HSMKEYS_E_PIN, "no PIN source");
    expect("malformed URI refused", "pkcs11:token=%zz;object=x", NULL, NULL, HSMKEYS_E_URI,
           "malformed PKCS#11 URI");
    expect("non-pkcs11 URI refused", "https://example.com/key", NULL, NULL, HSMKEYS_E_URI,
           "must start with \"pkcs11:\"");
    expect("URI without an object refused", "pkcs11:token=S1", NULL, NULL, HSMKEYS_E_URI,
           "names no master object");
    expect("URI with an unknown attribute refused", "pkcs11:token=S1;object=x;color=red", NULL, NULL,
           HSMKEYS_E_URI, "does not understand");
    expect("missing module refused", "pkcs11:token=S1;object=x?module-path=/nonexistent/p11.so&pin-source=/x",
           NULL, NULL, HSMKEYS_E_MODULE, "cannot load PKCS#11 module /nonexistent/p11.so");
    uri_for(uri, sizeof uri, "S1", "hsmkeys-master", h.pin_file);
    expect("epoch 0 refused", uri, "epoch", "0", HSMKEYS_E_INVALID, "epoch \"0\" is out of range");
    expect("epoch text refused", uri, "epoch", "hourly", HSMKEYS_E_INVALID, "is not a duration");
    expect("lifetime over 7 days refused", uri, "lifetime", "8d", HSMKEYS_E_INVALID, "RFC 8446");
    expect("durations with units accepted", uri, "lifetime", "1h30m", HSMKEYS_OK, "");
    expect("unknown option refused", uri, "colour", "blue", HSMKEYS_E_INVALID, "unknown option");
    {
        hsmkeys_config *c;
        hsmkeys_ctx *ctx = NULL;
        T_CASE("a window of too many epochs is refused: says lengthen the epoch") {
            hsmkeys_config_new(&c);
            hsmkeys_config_set(c, "uri", uri);
            hsmkeys_config_set(c, "domain", "d");
            hsmkeys_config_set(c, "epoch", "1");
            hsmkeys_config_set(c, "lifetime", "1h");
            T_RC(hsmkeys_open(c, &ctx), HSMKEYS_E_INVALID);
            T_CONTAINS(hsmkeys_last_error(), "lengthen the epoch");
            hsmkeys_config_free(c);
        }
        T_CASE("missing domain refused") {
            hsmkeys_config_new(&c);
            hsmkeys_config_set(c, "uri", uri);
            T_RC(hsmkeys_open(c, &ctx), HSMKEYS_E_INVALID);
            T_CONTAINS(hsmkeys_last_error(), "no ticket domain");
            hsmkeys_config_free(c);
        }
    }
    T_CASE("a pin-value in the URI works for tests, with a warning that names pin-source") {
        hsmkeys_config *c;
        hsmkeys_ctx *ctx = NULL;
        snprintf(uri, sizeof uri, "pkcs11:token=S1;object=hsmkeys-master?module-path=%s"
                 "&pin-value=" T_USER_PIN, T_SOFTHSM_MODULE);
        warned[0] = '\0';
        hsmkeys_config_new(&c);
        hsmkeys_config_set(c, "uri", uri);
        hsmkeys_config_set(c, "domain", "d");
        hsmkeys_config_set_log(c, capture_log, NULL);
        T_RC(hsmkeys_open(c, &ctx), HSMKEYS_OK);
        T_CONTAINS(warned, "pin-value");
        T_CONTAINS(warned, "pin-source");
        T_TRUE(strstr(warned, T_USER_PIN) == NULL);
        hsmkeys_close(ctx);
        hsmkeys_config_free(c);
    }
    T_CASE("error messages never contain the PIN") {
        uri_for(uri, sizeof uri, "S1", "hsmkeys-master", wrong_pin);
        hsmkeys_ctx *ctx;
        try_open(uri, NULL, NULL, &ctx);
        T_TRUE(strstr(hsmkeys_last_error(), "not-the-pin") == NULL);
        T_TRUE(strstr(hsmkeys_last_error(), T_USER_PIN) == NULL);
    }
    T_CASE("result names") {
        T_EQ_STR(hsmkeys_result_name(HSMKEYS_E_PIN), "HSMKEYS_E_PIN");
        T_EQ_STR(hsmkeys_version(), HSMKEYS_VERSION_STRING);
    }
    t_hsm_cleanup(&h);
    return t_done();
}
