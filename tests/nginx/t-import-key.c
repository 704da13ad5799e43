/*
 * t-import-key - test-only: store a server's TLS private key (PEM) in a
 * throwaway SoftHSM2 token with libp11, so the nginx engine test can serve
 * with "ssl_certificate_key engine:pkcs11:..." and no key file on disk.
 *
 * Threat handled: the PIN never travels in argv or the environment; it is
 * read from a 0600 file (hsmkeys' own PIN file check) and wiped after login.
 * The key lands SENSITIVE (libp11 sets it for private keys); the caller
 * deletes the PEM afterwards.
 *
 * usage: t-import-key MODULE TOKEN_LABEL PIN_FILE KEY.pem LABEL ID_HEX
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libp11.h>
#include <openssl/pem.h>
#include <hsmkeys/hsmkeys.h>

static int read_pin(const char *path, char *pin, size_t len)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL || fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
        fprintf(stderr, "t-import-key: PIN file %s missing or not 0600\n", path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    n = fread(pin, 1, len - 1, f);
    fclose(f);
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
        n--;
    pin[n] = '\0';
    return n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    PKCS11_CTX *ctx = NULL;
    PKCS11_SLOT *slots = NULL, *slot = NULL;
    unsigned int nslots = 0, i;
    EVP_PKEY *pkey = NULL;
    unsigned char id[64];
    size_t idlen = 0;
    char pin[256];
    FILE *f;
    int rc = 1;

    if (argc != 7 || strlen(argv[6]) % 2 != 0 || strlen(argv[6]) / 2 > sizeof id) {
        fprintf(stderr, "usage: t-import-key MODULE TOKEN_LABEL PIN_FILE KEY.pem LABEL ID_HEX\n");
        return 2;
    }
    for (idlen = 0; idlen < strlen(argv[6]) / 2; idlen++) {
        unsigned int b;
        if (sscanf(argv[6] + 2 * idlen, "%2x", &b) != 1)
            return 2;
        id[idlen] = (unsigned char)b;
    }
    if ((f = fopen(argv[4], "r")) == NULL) {
        perror(argv[4]);
        return 1;
    }
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL) {
        fprintf(stderr, "t-import-key: %s: not a PEM private key\n", argv[4]);
        return 1;
    }
    if (read_pin(argv[3], pin, sizeof pin) != 0)
        goto out;
    if ((ctx = PKCS11_CTX_new()) == NULL || PKCS11_CTX_load(ctx, argv[1]) != 0) {
        fprintf(stderr, "t-import-key: cannot load %s\n", argv[1]);
        goto out;
    }
    if (PKCS11_enumerate_slots(ctx, &slots, &nslots) != 0)
        goto out;
    for (i = 0; i < nslots; i++)
        if (slots[i].token != NULL && strcmp(slots[i].token->label, argv[2]) == 0)
            slot = &slots[i];
    if (slot == NULL) {
        fprintf(stderr, "t-import-key: no token labelled %s\n", argv[2]);
        goto out;
    }
    if (PKCS11_open_session(slot, 1) != 0 || PKCS11_login(slot, 0, pin) != 0) {
        fprintf(stderr, "t-import-key: login to %s failed\n", argv[2]);
        goto out;
    }
    if (PKCS11_store_private_key(slot->token, pkey, argv[5], id, idlen) != 0) {
        fprintf(stderr, "t-import-key: storing the key failed\n");
        goto out;
    }
    rc = 0;
out:
    hsmkeys_wipe(pin, sizeof pin);
    if (slots != NULL)
        PKCS11_release_all_slots(ctx, slots, nslots);
    if (ctx != NULL) {
        PKCS11_CTX_unload(ctx);
        PKCS11_CTX_free(ctx);
    }
    EVP_PKEY_free(pkey);
    return rc;
}
