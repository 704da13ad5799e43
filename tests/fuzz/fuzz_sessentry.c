/*
 * fuzz_sessentry.c - the sealed session cache's parsers of outside input:
 * entries read from the store (sc_open, sc_entry_header) and, with mode
 * bit 1, the store address and options of a server directive (sc_conf_url,
 * sc_conf_option).
 *
 * Input: byte 0 = mode, then the entry (or the text).  Mode bit 0 splices a
 * valid version and the binding's epoch into the header, so the fuzzer
 * reaches the tag check instead of stopping at the version.
 * Invariants (abort = finding): only the documented codes come back; an
 * entry that opens re-seals to itself under its own nonce (nothing but our
 * own seal can be accepted); a refused entry leaves no plaintext behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sc_conf.h"
#include "sc_seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_sessentry: invariant broken: %s\n", what);
        abort();
    }
}

static void fuzz_conf(const uint8_t *d, size_t n)
{
    char s[600], err[300];
    sc_conf c;

    if (n >= sizeof s)
        n = sizeof s - 1;
    memcpy(s, d, n);
    s[n] = '\0';
    sc_conf_init(&c);
    if (sc_conf_url(&c, s, err, sizeof err) == 0)
        check(c.unix_socket ? c.path[0] == '/' : (c.port >= 1 && c.port <= 65535), "address");
    else
        check(err[0] != '\0', "a message for a refused address");
    /* options that name files are left out: the fuzzer must not read them */
    if (strncmp(s, "password", 8) != 0 && sc_conf_option(&c, s, err, sizeof err) == 0)
        check(c.timeout_ms >= 1 && c.timeout_ms <= SC_MAX_TIMEOUT_MS &&
              c.connect_timeout_ms >= 1 && c.connect_timeout_ms <= SC_MAX_TIMEOUT_MS, "timeouts bounded");
    sc_conf_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[32] = { 0x42 };
    static unsigned char e[SC_ENTRY_MAX + 64], pt[SC_ENTRY_MAX], re[SC_ENTRY_MAX + 64];
    unsigned char id[SC_ID_LEN] = { SC_ID_VERSION, 0, 0, 0, 0, 0, 0, 0x12, 0x34 };
    sc_binding b = { id, sizeof id, "fleet.hsmkeys.test", 18, 0x1234, 0 };
    size_t n, plen = 0, rlen = 0;
    uint64_t ep;
    int64_t ex;
    int rc;

    if (size < 1)
        return 0;
    if (data[0] & 2) {
        fuzz_conf(data + 1, size - 1);
        return 0;
    }
    n = size - 1 > sizeof e ? sizeof e : size - 1;
    memcpy(e, data + 1, n);
    if ((data[0] & 1) && n >= 9) {
        e[0] = SC_ENTRY_VERSION;
        memset(e + 1, 0, 8);
        e[7] = 0x12;
        e[8] = 0x34;
    }
    rc = sc_entry_header(e, n, &ep, &ex);
    check(rc == SC_OK || rc == SC_E_MALFORMED, "header: documented code");
    memset(pt, 0, sizeof pt);
    rc = sc_open(key, &b, 1000, e, n, pt, sizeof pt, &plen);
    check(rc == SC_OK || rc == SC_E_MALFORMED || rc == SC_E_EPOCH || rc == SC_E_EXPIRED ||
          rc == SC_E_AUTH, "open: documented code");
    if (rc == SC_OK) {
        b.expiry = ex;
        check(sc_seal(key, &b, e + 17, pt, plen, re, sizeof re, &rlen) == SC_OK &&
              rlen == n && memcmp(re, e, n) == 0, "an opened entry is our own seal");
    } else {
        for (size_t i = 0; i < sizeof pt; i++)
            check(pt[i] == 0, "no plaintext after a refusal");
    }
    return 0;
}
