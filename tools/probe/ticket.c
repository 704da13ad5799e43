/*
 * ticket.c - what the first 16 bytes of a session ticket say.
 *
 * OpenSSL-based servers (nginx, Apache, HAProxy, hsmkeys) start a ticket with
 * its 16-byte key name, sent in the clear.  hsmkeys names are (kdf.h):
 *   byte 0 version 0x01 | bytes 1-9 tag of (master, domain) | bytes 10-15
 *   epoch, big-endian uint48.
 * The probe reimplements this parse so it stays an OpenSSL-only tool that
 * runs anywhere; tests/lab/test_probe.sh checks it against the name and
 * epoch libhsmkeys itself reports.
 *
 * Threat: these bytes come from an untrusted server; a name from a server
 * that is not hsmkeys may happen to parse, so the probe labels the epoch as
 * "if hsmkeys" and never acts on it.
 */
#include "probe.h"

#include <stdio.h>

void probe_name_hex(const unsigned char name[PROBE_NAME_LEN], char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < PROBE_NAME_LEN; i++) {
        out[2 * i] = hex[name[i] >> 4];
        out[2 * i + 1] = hex[name[i] & 15];
    }
    out[32] = '\0';
}

int probe_name_epoch(const unsigned char name[PROBE_NAME_LEN], uint64_t *epoch)
{
    if (name[0] != 0x01)
        return 0;
    uint64_t e = 0;
    for (int i = 10; i < 16; i++)
        e = (e << 8) | name[i];
    *epoch = e;
    return 1;
}
