/*
 * cmd_transport.c - "transport-keygen", "transport-export" (host B) and
 * "trust" (host A's security officer).
 *
 * Owns: the RSA-2048 transport key pair (label hsmkeys-transport, CKA_ID =
 * first 16 bytes of the public key's SHA-256 fingerprint) and the trusted
 * copy of its public half on host A (label hsmkeys-trusted:<name>).
 * Threat: B's private key must never leave B (UNWRAP-only, SENSITIVE,
 * non-extractable) and A must wrap only to keys its security officer has
 * vouched for: CKA_TRUSTED can only be set by the SO, and a master marked
 * WRAP_WITH_TRUSTED can only be wrapped by such keys.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

/* The token's own transport pair, found by label.  1 found, 0 none, -1 error. */
static int own_transport(struct hkt_conn *c, CK_OBJECT_HANDLE *pub)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, HKT_TRANSPORT_LABEL, strlen(HKT_TRANSPORT_LABEL)},
    };
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    if (hkt_find(c, t, 2, h, 2, &n) != 0)
        return -1;
    if (n > 1) {
        hkt_err("token '%s' holds several '%s' public keys: remove the stale ones", c->token_label,
                HKT_TRANSPORT_LABEL);
        return -1;
    }
    if (n == 1)
        *pub = h[0];
    return (int)n;
}

static int export_pub(struct hkt_conn *c, CK_OBJECT_HANDLE pub, const char *out, const char *format)
{
    unsigned char *mod = NULL, *exp = NULL, fp[HKT_FP_LEN];
    size_t ml = 0, el = 0;
    char hex[2 * HKT_FP_LEN + 1];
    int rc = -1;
    if (hkt_get_bytes(c, pub, CKA_MODULUS, &mod, &ml) == 0 &&
        hkt_get_bytes(c, pub, CKA_PUBLIC_EXPONENT, &exp, &el) == 0 &&
        hkt_rsa_fingerprint(mod, ml, exp, el, fp) == 0 &&
        (!out || hkt_pubkey_write(out, format, mod, ml, exp, el) == 0)) {
        hkt_hex(hex, fp, sizeof fp);
        if (out)
            hkt_info("wrote transport public key of token '%s' to %s (public: safe to mail)",
                     c->token_label, out);
        hkt_info("fingerprint %s", hex);
        rc = 0;
    }
    free(mod);
    free(exp);
    return rc;
}

int hkt_cmd_transport_keygen(struct hkt_opts *o)
{
    struct hkt_conn c;
    int ret = HKT_EXIT_FAIL;
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    int have = own_transport(&c, &pub);
    if (have < 0)
        goto out;
    if (have) {
        hkt_err("token '%s' already has a transport key: export it with 'hsmkeys-tool "
                "transport-export --out FILE' instead of making another", c.token_label);
        goto out;
    }
    CK_ULONG bits = 2048;
    unsigned char e[] = {0x01, 0x00, 0x01};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const char *lab = HKT_TRANSPORT_LABEL;
    CK_ATTRIBUTE pt[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_MODULUS_BITS, &bits, sizeof bits},
        {CKA_PUBLIC_EXPONENT, e, sizeof e},
        {CKA_ENCRYPT, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},
        {CKA_LABEL, (void *)lab, strlen(lab)},
    };
    CK_ATTRIBUTE st[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_UNWRAP, &yes, sizeof yes},
        {CKA_DECRYPT, &no, sizeof no},
        {CKA_SIGN, &no, sizeof no},
        {CKA_LABEL, (void *)lab, strlen(lab)},
    };
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    if (hk_p11_check(c.f->C_GenerateKeyPair(c.session, &mech, pt, 8, st, 8, &pub, &priv),
                     "C_GenerateKeyPair") != HSMKEYS_OK) {
        hkt_err_lib("generating the transport key pair");
        goto out;
    }
    unsigned char fp[HKT_FP_LEN];
    CK_ATTRIBUTE id = {CKA_ID, fp, HKT_FP_ID_LEN};
    if (hkt_pubkey_fingerprint(&c, pub, fp) != 0 ||
        hk_p11_check(c.f->C_SetAttributeValue(c.session, pub, &id, 1), "C_SetAttributeValue") != HSMKEYS_OK ||
        hk_p11_check(c.f->C_SetAttributeValue(c.session, priv, &id, 1), "C_SetAttributeValue") != HSMKEYS_OK) {
        hkt_err_lib("labelling the transport key pair; it was removed");
        (void)hkt_destroy(&c, pub, "the transport public key");
        (void)hkt_destroy(&c, priv, "the transport private key");
        goto out;
    }
    hkt_info("generated RSA-2048 transport key pair on token '%s' (private key: unwrap only, "
             "never extractable)", c.token_label);
    if (export_pub(&c, pub, o->out, o->format) == 0)
        ret = HKT_EXIT_OK;
out:
    hkt_conn_close(&c);
    return ret;
}

int hkt_cmd_transport_export(struct hkt_opts *o)
{
    struct hkt_conn c;
    int ret = HKT_EXIT_FAIL;
    if (!o->out) {
        hkt_err("transport-export needs --out FILE for the public key");
        return HKT_EXIT_USAGE;
    }
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    CK_OBJECT_HANDLE pub;
    int have = own_transport(&c, &pub);
    if (have == 0)
        hkt_err("token '%s' has no transport key: make one with 'hsmkeys-tool transport-keygen'",
                c.token_label);
    else if (have == 1 && export_pub(&c, pub, o->out, o->format) == 0)
        ret = HKT_EXIT_OK;
    hkt_conn_close(&c);
    return ret;
}

/* Hex digits only, lower case: how operators read a fingerprint out. */
static int fp_normalise(const char *in, char out[2 * HKT_FP_LEN + 1])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == ':' || *p == '-' || *p == '\t')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 2 * HKT_FP_LEN)
            return -1;
        out[n++] = (char)tolower((unsigned char)*p);
    }
    out[n] = 0;
    return n == 2 * HKT_FP_LEN ? 0 : -1;
}

/* The fingerprint host B's operator read out, from --expect-fingerprint or
 * typed on the terminal, must equal the file's before anything is created.
 * Returns 0, or an HKT_EXIT_* code (message printed). */
static int confirm_fingerprint(const struct hkt_opts *o, const char *hex)
{
    char want[2 * HKT_FP_LEN + 1], line[256];
    size_t n = 0;
    if (o->expect_fp) {
        if (fp_normalise(o->expect_fp, want) != 0) {
            hkt_err("--expect-fingerprint %s: not a SHA-256 fingerprint (64 hex digits, as "
                    "'hsmkeys-tool transport-export' prints it on host B)", o->expect_fp);
            return HKT_EXIT_USAGE;
        }
    } else {
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            hkt_err("trust needs --expect-fingerprint HEX: the fingerprint host B's operator "
                    "read out to you over another channel (there is no terminal to type it "
                    "on). Nothing was trusted");
            return HKT_EXIT_USAGE;
        }
        dprintf(fd, "%s holds a public key with fingerprint\n  %s\nType the fingerprint "
                "host B's operator read out to you: ", o->in, hex);
        char ch;
        ssize_t r;
        while ((r = read(fd, &ch, 1)) == 1 || (r < 0 && errno == EINTR)) {
            if (r < 0)
                continue;
            if (ch == '\n' || ch == '\r')
                break;
            if (n < sizeof line - 1)
                line[n++] = ch;
        }
        line[n] = 0;
        close(fd);
        if (fp_normalise(line, want) != 0) {
            hkt_err("what was typed is not a fingerprint (64 hex digits): nothing was trusted");
            return HKT_EXIT_FAIL;
        }
    }
    if (strcmp(want, hex) != 0) {
        hkt_err("%s has fingerprint %s, not %s as host B's operator read out: this is not "
                "host B's key (swapped or mistyped). Nothing was trusted", o->in, hex, want);
        return HKT_EXIT_FAIL;
    }
    return 0;
}

int hkt_cmd_trust(struct hkt_opts *o)
{
    struct hkt_conn c;
    unsigned char *mod = NULL, *exp = NULL, fp[HKT_FP_LEN];
    size_t ml = 0, el = 0;
    char hex[2 * HKT_FP_LEN + 1], label[128];
    int ret = HKT_EXIT_FAIL;
    if (!o->in) {
        hkt_err("trust needs --in PUBFILE: the transport public key written on host B by "
                "'hsmkeys-tool transport-export'");
        return HKT_EXIT_USAGE;
    }
    if (hkt_pubkey_read(o->in, &mod, &ml, &exp, &el, fp) != 0)
        return HKT_EXIT_FAIL;
    hkt_hex(hex, fp, sizeof fp);
    if ((ret = confirm_fingerprint(o, hex)) != 0)
        goto done;
    ret = HKT_EXIT_FAIL;
    if (hkt_conn_open(&c, o, HKT_LOGIN_SO) != 0)
        goto done;
    CK_OBJECT_HANDLE h;
    int found = hkt_find_transport(&c, CKO_PUBLIC_KEY, fp, &h);
    if (found < 0)
        goto out;
    if (found && hk_attr_bool(c.module, c.session, h, CKA_TRUSTED) == 1) {
        hkt_info("key %s is already trusted on token '%s'", hex, c.token_label);
        ret = HKT_EXIT_OK;
        goto out;
    }
    if (found) {
        hkt_err("token '%s' holds this public key but not as trusted: remove that object "
                "(pkcs11-tool --delete-object --type pubkey --id %.32s) and run trust again",
                c.token_label, hex);
        goto out;
    }
    snprintf(label, sizeof label, "hsmkeys-trusted:%s", o->name ? o->name : "clone");
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_TRUSTED, &yes, sizeof yes},
        {CKA_WRAP, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
        {CKA_MODULUS, mod, ml},
        {CKA_PUBLIC_EXPONENT, exp, el},
        {CKA_LABEL, label, strlen(label)},
        {CKA_ID, fp, HKT_FP_ID_LEN},
    };
    if (hk_p11_check(c.f->C_CreateObject(c.session, t, sizeof t / sizeof t[0], &h), "C_CreateObject") != HSMKEYS_OK) {
        hkt_err_lib("importing the trusted transport key (only the security officer may)");
        goto out;
    }
    hkt_info("trusted transport key '%s' on token '%s'", label, c.token_label);
    hkt_info("fingerprint %s", hex);
    ret = HKT_EXIT_OK;
out:
    hkt_conn_close(&c);
done:
    free(mod);
    free(exp);
    return ret;
}
