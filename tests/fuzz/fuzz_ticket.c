/*
 * fuzz_ticket.c - the ticket decrypt path end to end: a server SSL_CTX with
 * the hsmkeys callback (hsmkeys_ssl_attach) reads one ClientHello from a
 * memory BIO that carries a hostile ticket, in TLS 1.2 (session_ticket
 * extension) or TLS 1.3 (pre_shared_key identity) form.
 *
 * Input: byte 0 = mode, byte 1 = epoch offset, then the ticket bytes.
 *   bit 0  put a fleet key name of epoch (current - 4 + offset % 8) first
 *   bit 1  TLS 1.3 ClientHello (else TLS 1.2)
 *   bit 2  treat the rest as a session to seal: encrypt and MAC it with the
 *          real key of that epoch, as a server would, so OpenSSL decrypts
 *          and parses fuzzer-chosen session bytes
 * Invariants: ASan/UBSan clean; no sequence of tickets makes the context
 * derive more than the window's epochs (the clock is frozen).
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "fuzz_env.h"
#include "tls.h"

#define MAX_TICKET 4096

static SSL_CTX *sctx;

struct buf { unsigned char p[MAX_TICKET + 1024]; size_t n; };

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n <= sizeof b->p) {
        memcpy(b->p + b->n, p, n);
        b->n += n;
    }
}
static void put8(struct buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put16(struct buf *b, size_t v) { put8(b, (unsigned)(v >> 8) & 255); put8(b, (unsigned)v & 255); }
static void put24(struct buf *b, size_t v) { put8(b, (unsigned)(v >> 16) & 255); put16(b, v & 0xffff); }
static void put32(struct buf *b, uint32_t v) { put16(b, v >> 16); put16(b, v & 0xffff); }

static void ext(struct buf *b, unsigned type, const unsigned char *p, size_t n)
{
    put16(b, type);
    put16(b, n);
    put(b, p, n);
}

/* A ClientHello record offering `ticket` (TLS 1.2 ext 35, or a TLS 1.3 PSK). */
static size_t client_hello(int tls13, const unsigned char *ticket, size_t tlen,
                           unsigned char *out, size_t outlen)
{
    static const unsigned char groups[] = { 0, 4, 0x00, 0x1d, 0x00, 0x17 };
    static const unsigned char points[] = { 1, 0 };
    static const unsigned char sigalgs[] = { 0, 4, 0x04, 0x03, 0x08, 0x04 };
    static struct buf exts, body, rec;
    unsigned char rnd[32] = { 1 }, sid[32] = { 2 };

    exts.n = body.n = rec.n = 0;
    ext(&exts, 10, groups, sizeof groups);
    ext(&exts, 11, points, sizeof points);
    ext(&exts, 13, sigalgs, sizeof sigalgs);
    if (!tls13) {
        ext(&exts, 35, ticket, tlen);
    } else {
        static const unsigned char versions[] = { 2, 0x03, 0x04 };
        static const unsigned char modes[] = { 1, 1 };
        unsigned char ks[2 + 4 + 32] = { 0, 36, 0x00, 0x1d, 0, 32, 9 };
        static struct buf psk;
        ext(&exts, 43, versions, sizeof versions);
        ext(&exts, 51, ks, sizeof ks);
        ext(&exts, 45, modes, sizeof modes);
        psk.n = 0;
        put16(&psk, 2 + tlen + 4);
        put16(&psk, tlen);
        put(&psk, ticket, tlen);
        put32(&psk, 0);
        put16(&psk, 33);
        put8(&psk, 32);
        for (int i = 0; i < 32; i++)
            put8(&psk, 0);
        ext(&exts, 41, psk.p, psk.n); /* pre_shared_key must come last */
    }
    put16(&body, 0x0303);
    put(&body, rnd, sizeof rnd);
    put8(&body, sizeof sid);
    put(&body, sid, sizeof sid);
    put16(&body, 6);
    put16(&body, 0x1301);
    put16(&body, 0xc02b);
    put16(&body, 0xc02f);
    put8(&body, 1);
    put8(&body, 0);
    put16(&body, exts.n);
    put(&body, exts.p, exts.n);

    put8(&rec, 0x16);
    put16(&rec, 0x0301);
    put16(&rec, 4 + body.n);
    put8(&rec, 0x01);
    put24(&rec, body.n);
    put(&rec, body.p, body.n);
    if (rec.n > outlen)
        return 0;
    memcpy(out, rec.p, rec.n);
    return rec.n;
}

/* name || IV || AES-256-CBC(session) || HMAC-SHA256, as OpenSSL seals. */
static size_t seal(const unsigned char name[16], const unsigned char aes[32],
                   const unsigned char hmac[32], const unsigned char *pt, size_t ptlen,
                   unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    unsigned char iv[16] = { 7 };
    int l1 = 0, l2 = 0;
    size_t n = 0, maclen = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    memcpy(out, name, 16);
    memcpy(out + 16, iv, 16);
    if (c && m && EVP_EncryptInit_ex2(c, EVP_aes_256_cbc(), aes, iv, NULL) &&
        EVP_EncryptUpdate(c, out + 32, &l1, pt, (int)ptlen) &&
        EVP_EncryptFinal_ex(c, out + 32 + l1, &l2) &&
        EVP_MAC_init(m, hmac, 32, params) &&
        EVP_MAC_update(m, out, 32 + (size_t)(l1 + l2)) &&
        EVP_MAC_final(m, out + 32 + l1 + l2, &maclen, 32))
        n = 32 + (size_t)(l1 + l2) + maclen;
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char ticket[MAX_TICKET + 64], rec[MAX_TICKET + 1200];
    fz_env *e = fz_env_get();
    size_t tlen, rlen;
    hsmkeys_stats st;
    int mode;
    SSL *s;

    if (!sctx) {
        sctx = t_server_ctx(0, "EC");
        fz_check(sctx && hsmkeys_ssl_attach(sctx, e->ctx) == HSMKEYS_OK, "server SSL_CTX");
    }
    if (size < 2 || size - 2 > MAX_TICKET)
        return 0;
    mode = data[0];
    tlen = size - 2;
    memcpy(ticket, data + 2, tlen);
    if (mode & 5) {
        unsigned char name[16], aes[32], hmac[32];
        uint64_t ep = e->epoch - 4 + (data[1] % 8);
        int renew;
        name[0] = 0x01;
        memcpy(name + 1, e->tag, 9);
        for (int i = 0; i < 6; i++)
            name[10 + i] = (unsigned char)(ep >> (8 * (5 - i)));
        if ((mode & 4) && tlen <= MAX_TICKET - 64 &&
            hsmkeys_decrypt_key(e->ctx, name, aes, hmac, &renew) == HSMKEYS_OK) {
            tlen = seal(name, aes, hmac, data + 2, size - 2, ticket);
        } else if (tlen >= 16) {
            memcpy(ticket, name, 16);
        }
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(hmac, sizeof hmac);
    }
    rlen = client_hello(mode & 2, ticket, tlen, rec, sizeof rec);
    if (rlen == 0)
        return 0;
    s = SSL_new(sctx);
    if (s) {
        BIO *rb = BIO_new_mem_buf(rec, (int)rlen), *wb = BIO_new(BIO_s_mem());
        SSL_set_bio(s, rb, wb);
        SSL_set_accept_state(s);
        (void)SSL_do_handshake(s);
        SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(s);
    }
    ERR_clear_error();
    hsmkeys_get_stats(e->ctx, &st);
    fz_check(st.token_derivations <= e->window + 2 + 2, "derivations bounded by the window");
    return 0;
}
