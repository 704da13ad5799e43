/*
 * memscan.h - find secret bytes in this process's own memory, and say which
 * mapping holds them and with which VmFlags (/proc/self/smaps).
 *
 * The needle is given masked (each byte XOR HY_MASK) so that the scanner
 * never puts an unmasked copy of the secret into memory itself.
 */
#ifndef HSMKEYS_MEMSCAN_H
#define HSMKEYS_MEMSCAN_H

#include <stddef.h>

#define HY_MASK 0xA5

typedef struct hy_hits {
    int total;        /* occurrences found */
    int protected_;   /* ... in mappings flagged both "lo" and "dd" */
    int nodump;       /* ... in mappings flagged "dd" */
    char where[512];  /* description of the unprotected ones */
} hy_hits;

/* Scan every resident, readable, private mapping.  Returns 0, -1 if smaps
 * cannot be read. */
int hy_scan(const unsigned char *masked, size_t len, hy_hits *out);

#endif
