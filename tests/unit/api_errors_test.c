/*
 * api_errors_test.c - the error contract at the public edges (hsmkeys.h,
 * hsmkeys_ssl.h): every failing public function returns its documented code
 * and sets hsmkeys_last_error() to a message of its own.
 *
 * Each case first leaves a known, unrelated message behind (a "sentinel"),
 * then makes the call fail: a function that returned a code without setting
 * the message would leave the sentinel, which is what nginx then logged as
 * a stale error.  The message must also name what is wrong (a word the
 * case gives), so a generic message does not pass either.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "softhsm.h"

#define SENTINEL "sentinel-option-zz"

/* Leave an unrelated message as this thread's last error. */
static void leave_sentinel(void)
{
    hsmkeys_config *c = NULL;
    if (hsmkeys_config_new(&c) != HSMKEYS_OK ||
        hsmkeys_config_set(c, SENTINEL, "x") == HSMKEYS_OK ||
        strstr(hsmkeys_last_error(), SENTINEL) == NULL)
        abort();
    hsmkeys_config_free(c);
}

/* rc is the code wanted; the message is new, non-empty, and says `word`. */
#define T_FAILS(expr, want, word) do {                                      \
        leave_sentinel();                                                  \
        T_RC(expr, want);                                                  \
        T_TRUE(hsmkeys_last_error()[0] != '\0');                           \
        T_TRUE(strstr(hsmkeys_last_error(), SENTINEL) == NULL);            \
        T_CONTAINS(hsmkeys_last_error(), word);                            \
    } while (0)

static void no_token_cases(void)
{
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    hsmkeys_metrics m;
    unsigned char name[HSMKEYS_KEY_NAME_LEN];
    uint64_t e;
    void *p = NULL;

    T_CASE("hsmkeys_config_set: NULL, unknown option, bad duration, bad URI, bad domain") {
        T_RC(hsmkeys_config_new(&c), HSMKEYS_OK);
        T_FAILS(hsmkeys_config_set(NULL, "uri", "pkcs11:"), HSMKEYS_E_INVALID, "NULL");
        T_FAILS(hsmkeys_config_set(c, "colour", "blue"), HSMKEYS_E_INVALID, "colour");
        T_FAILS(hsmkeys_config_set(c, "epoch", "1 fortnight"), HSMKEYS_E_INVALID, "duration");
        T_FAILS(hsmkeys_config_set(c, "lifetime", "30d"), HSMKEYS_E_INVALID, "out of range");
        T_FAILS(hsmkeys_config_set(c, "uri", "https://example.org/"), HSMKEYS_E_URI,
                "PKCS#11 URI");
        T_FAILS(hsmkeys_config_set(c, "domain", ""), HSMKEYS_E_INVALID, "domain");
        T_FAILS(hsmkeys_config_set(c, "session-cache", "maybe"), HSMKEYS_E_INVALID,
                "session-cache");
    }
    T_CASE("hsmkeys_open: NULL, no uri, no domain, a module that is not there") {
        T_FAILS(hsmkeys_open(NULL, &ctx), HSMKEYS_E_INVALID, "hsmkeys_open");
        T_FAILS(hsmkeys_open(c, &ctx), HSMKEYS_E_INVALID, "no uri");
        T_RC(hsmkeys_config_set(c, "uri", "pkcs11:token=none;object=m?module-path=/nonexistent/p11.so"),
             HSMKEYS_OK);
        T_FAILS(hsmkeys_open(c, &ctx), HSMKEYS_E_INVALID, "domain");
        T_RC(hsmkeys_config_set(c, "domain", "errors.example"), HSMKEYS_OK);
        T_FAILS(hsmkeys_open(c, &ctx), HSMKEYS_E_MODULE, "/nonexistent/p11.so");
        T_TRUE(ctx == NULL);
        hsmkeys_config_free(c);
    }
    T_CASE("hsmkeys_start, hsmkeys_name_epoch, hsmkeys_get_metrics without their arguments") {
        T_FAILS(hsmkeys_start(NULL, 0), HSMKEYS_E_INVALID, "hsmkeys_start");
        T_FAILS(hsmkeys_name_epoch(NULL, &e), HSMKEYS_E_INVALID, "hsmkeys_name_epoch");
        memset(name, 0x7f, sizeof name);
        T_FAILS(hsmkeys_name_epoch(name, &e), HSMKEYS_E_MALFORMED, "0x7f");
        T_FAILS(hsmkeys_get_metrics(NULL, &m, sizeof m), HSMKEYS_E_INVALID, "hsmkeys_get_metrics");
    }
    T_CASE("hsmkeys_secure_alloc: no out pointer, zero length") {
        T_FAILS(hsmkeys_secure_alloc(16, NULL), HSMKEYS_E_INVALID, "hsmkeys_secure_alloc");
        T_FAILS(hsmkeys_secure_alloc(0, &p), HSMKEYS_E_INVALID, "length 0");
        T_TRUE(p == NULL);
    }
    T_CASE("hsmkeys_secure_alloc: zeroed, writable, freed; NULL free is ignored") {
        unsigned char zero[300] = { 0 };
        T_RC(hsmkeys_secure_alloc(sizeof zero, &p), HSMKEYS_OK);
        T_TRUE(p != NULL && ((uintptr_t)p % 16) == 0);
        if (p != NULL) {
            T_EQ_MEM(p, zero, sizeof zero);
            memset(p, 0xa5, sizeof zero);
        }
        hsmkeys_secure_free(p);
        hsmkeys_secure_free(NULL);
    }
    T_CASE("hsmkeys_ssl_attach, hsmkeys_ssl_set_selector: NULL SSL_CTX or context") {
        SSL_CTX *s = SSL_CTX_new(TLS_server_method());
        T_TRUE(s != NULL);
        T_FAILS(hsmkeys_ssl_attach(NULL, NULL), HSMKEYS_E_INVALID, "SSL_CTX");
        T_FAILS(hsmkeys_ssl_attach(s, NULL), HSMKEYS_E_INVALID, "hsmkeys context");
        T_TRUE(hsmkeys_ssl_get(s) == NULL); /* a failed attach leaves nothing behind */
        T_FAILS(hsmkeys_ssl_set_selector(NULL, NULL, NULL), HSMKEYS_E_INVALID,
                "hsmkeys_ssl_set_selector");
        SSL_CTX_free(s);
    }
}

static void context_cases(void)
{
    static t_hsm h;
    static int64_t clock_now = 1700000000;
    hsmkeys_ctx *ctx;
    unsigned char name[HSMKEYS_KEY_NAME_LEN], aes[32], hmac[32], seal[32], id[32];
    int renew = 0;

    if (t_fleet_setup(&h) != 0) {
        t_skip("a context's failing calls", "SoftHSM2 set-up failed");
        return;
    }
    ctx = t_open(&h, "S1", "errors.example", "1h", "2h", &clock_now);
    if (ctx == NULL) {
        t_skip("a context's failing calls", "opening the context failed");
        return;
    }
    T_CASE("a context's calls: malformed, foreign and expired names, window, session cache") {
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        T_RC(hsmkeys_encrypt_key(ctx, name, aes, hmac), HSMKEYS_OK);
        name[0] ^= 0xff;
        T_FAILS(hsmkeys_decrypt_key(ctx, name, aes, hmac, &renew), HSMKEYS_E_MALFORMED,
                "not an hsmkeys v1 name");
        name[0] ^= 0xff;
        name[3] ^= 0x55;
        T_FAILS(hsmkeys_decrypt_key(ctx, name, aes, hmac, &renew), HSMKEYS_E_FOREIGN,
                "another master or domain");
        name[3] ^= 0x55;
        __atomic_store_n(&clock_now, clock_now + 10 * 3600, __ATOMIC_RELAXED);
        T_FAILS(hsmkeys_decrypt_key(ctx, name, aes, hmac, &renew), HSMKEYS_E_EXPIRED, "window");
        T_FAILS(hsmkeys_epoch_key(ctx, 3, name, aes, hmac), HSMKEYS_E_EXPIRED,
                "epoch 3 is outside the window");
        T_FAILS(hsmkeys_cache_key(ctx, hsmkeys_current_epoch(ctx), seal, id), HSMKEYS_E_INVALID,
                "session-cache=yes");
    }
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    hsmkeys_close(ctx);
    t_hsm_cleanup(&h);
}

int main(void)
{
    no_token_cases();
    context_cases();
    return t_done();
}
