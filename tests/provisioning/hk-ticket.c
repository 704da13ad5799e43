/*
 * hk-ticket.c - test helper: issue a TLS session ticket with one hsmkeys
 * context and resume it with another, over in-memory BIO pairs.
 *
 *   hk-ticket issue  --uri URI --domain D [--at T] [--epoch S] [--lifetime S] [--tls13]
 *                    [--forward-erasable]
 *       full handshake; the client's session (PEM) goes to stdout, to be
 *       piped into "resume" running with another host's SOFTHSM2_CONF.
 *   hk-ticket resume --uri URI --domain D [--at T] ... < session.pem
 *       offers the session; prints "resumed NAME" (exit 0) or "full NAME"
 *       (exit 3), NAME being the hex key name of the ticket offered.
 *   hk-ticket pair   --uri URI --uri2 URI2 --domain D ...
 *       two server contexts in one process (shared token): a ticket from
 *       each must resume on the other.  Prints "pair ok" (exit 0).
 *
 * Owns nothing of the product; it exercises the public API and
 * hsmkeys_ssl_attach the way a server does.  The session travels through a
 * pipe only, never a file.  Exit 1 on setup errors.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "softhsm.h"
#include "tls.h"

struct opts {
    const char *mode, *uri, *uri2, *domain, *epoch, *lifetime;
    int64_t at;
    int tls13, fe;
};

static int64_t fixed_clock(void *arg)
{
    return *(const int64_t *)arg;
}

static void die(const char *what)
{
    fprintf(stderr, "hk-ticket: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static hsmkeys_ctx *open_hk(const struct opts *o, const char *uri, int64_t *clock)
{
    hsmkeys_ctx *hk;
    *clock = o->at;
    hk = t_open_uri_fe(uri, o->domain, o->epoch, o->lifetime, o->fe,
                       o->at >= 0 ? fixed_clock : NULL, clock);
    if (hk == NULL)
        die("cannot open the hsmkeys context");
    return hk;
}

static SSL_CTX *server_ctx(const struct opts *o, hsmkeys_ctx *hk)
{
    SSL_CTX *s = t_server_ctx(o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION, "EC");
    if (s == NULL)
        die("cannot make the server context");
    if (hsmkeys_ssl_attach(s, hk) != HSMKEYS_OK) {
        fprintf(stderr, "hk-ticket: attach: %s\n", hsmkeys_last_error());
        exit(1);
    }
    return s;
}

/* One connection; returns the client's newest session (caller frees). */
static SSL_SESSION *handshake(SSL_CTX *cc, SSL_CTX *sc, SSL_SESSION *offer, int *resumed)
{
    t_hs h;
    SSL_SESSION *newest;
    if (t_handshake(cc, sc, offer, &h) != 0)
        die("handshake failed");
    *resumed = h.resumed;
    newest = h.session;
    h.session = NULL;
    t_hs_clear(&h);
    if (newest == NULL && offer != NULL && SSL_SESSION_up_ref(offer))
        newest = offer; /* no new ticket: the offered session is still the newest */
    return newest;
}

static void ticket_name(const SSL_SESSION *s, char hex[33])
{
    const unsigned char *t = NULL;
    size_t len = 0;
    if (s != NULL)
        SSL_SESSION_get0_ticket(s, &t, &len);
    strcpy(hex, "none");
    if (t && len >= 16)
        for (int i = 0; i < 16; i++)
            sprintf(hex + 2 * i, "%02x", t[i]);
}

static int pair_once(const struct opts *o, SSL_CTX *cc, SSL_CTX *a, SSL_CTX *b, const char *what)
{
    int resumed = 0;
    char name[33];
    SSL_SESSION *s1 = handshake(cc, a, NULL, &resumed);
    ticket_name(s1, name);
    SSL_SESSION *s2 = handshake(cc, b, s1, &resumed);
    printf("%s %s %s\n", what, resumed ? "resumed" : "full", name);
    (void)o;
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
    return resumed;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    o.at = -1;
    if (argc < 2)
        die("usage: hk-ticket issue|resume|pair --uri URI [--uri2 URI] --domain D [--at T] "
            "[--epoch S] [--lifetime S] [--tls13] [--forward-erasable]");
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls13")) { o.tls13 = 1; continue; }
        if (!strcmp(a, "--forward-erasable")) { o.fe = 1; continue; }
        if (!v) die("option without value");
        if (!strcmp(a, "--uri")) o.uri = v;
        else if (!strcmp(a, "--uri2")) o.uri2 = v;
        else if (!strcmp(a, "--domain")) o.domain = v;
        else if (!strcmp(a, "--epoch")) o.epoch = v;
        else if (!strcmp(a, "--lifetime")) o.lifetime = v;
        else if (!strcmp(a, "--at")) o.at = strtoll(v, NULL, 10);
        else die("unknown option");
        i++;
    }
    if (!o.uri || !o.domain)
        die("--uri and --domain are required");
    int64_t clock1 = 0, clock2 = 0;
    hsmkeys_ctx *hk = open_hk(&o, o.uri, &clock1);
    SSL_CTX *sc = server_ctx(&o, hk), *cc = t_client_ctx(o.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    int resumed = 0;
    char name[33];
    if (!strcmp(o.mode, "issue")) {
        SSL_SESSION *s = handshake(cc, sc, NULL, &resumed);
        ticket_name(s, name);
        if (!strcmp(name, "none"))
            die("the server issued no ticket");
        fprintf(stderr, "issued %s\n", name);
        PEM_write_SSL_SESSION(stdout, s);
        SSL_SESSION_free(s);
    } else if (!strcmp(o.mode, "resume")) {
        SSL_SESSION *offer = PEM_read_SSL_SESSION(stdin, NULL, NULL, NULL);
        if (!offer)
            die("no session on stdin");
        ticket_name(offer, name);
        SSL_SESSION *s = handshake(cc, sc, offer, &resumed);
        printf("%s %s\n", resumed ? "resumed" : "full", name);
        SSL_SESSION_free(offer);
        SSL_SESSION_free(s);
    } else if (!strcmp(o.mode, "pair")) {
        if (!o.uri2)
            die("pair needs --uri2");
        hsmkeys_ctx *hk2 = open_hk(&o, o.uri2, &clock2);
        SSL_CTX *sc2 = server_ctx(&o, hk2);
        int ok = pair_once(&o, cc, sc, sc2, "1->2") & pair_once(&o, cc, sc2, sc, "2->1");
        if (ok)
            printf("pair ok\n");
        resumed = ok;
        SSL_CTX_free(sc2);
        hsmkeys_close(hk2);
    } else {
        die("mode must be issue, resume or pair");
    }
    SSL_CTX_free(sc);
    SSL_CTX_free(cc);
    hsmkeys_close(hk);
    if (!strcmp(o.mode, "issue"))
        return 0;
    return resumed ? 0 : 3;
}
