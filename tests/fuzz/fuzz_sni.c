/*
 * fuzz_sni.c - hk_sni_parse with hostile server_name extensions (the bytes
 * a client sends before any key is chosen).
 *
 * Input: the extension_data.  Invariants (abort = finding): the result is 0
 * or 1; on 1 the name is 1..255 bytes, NUL-free, and equals the bytes at
 * offset 5 of the input; on 0 the output is "".  ASan catches any read
 * past the input.
 */
#include <string.h>
#include "fuzz_env.h"
#include "../../engine/src/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[HK_SNI_MAX + 1];
    int rc = hk_sni_parse(data, size, out);
    size_t n;

    fz_check(rc == 0 || rc == 1, "result is 0 or 1");
    if (rc == 0) {
        fz_check(out[0] == '\0', "no name on failure");
        return 0;
    }
    n = strlen(out);
    fz_check(n >= 1 && n <= HK_SNI_MAX, "name length 1..255");
    fz_check(size >= 5 + n && memcmp(out, data + 5, n) == 0, "name is the input's bytes");
    return 0;
}
