/*
 * fuzz_metrics_request.c - hkm_request_kind (engine/metrics/hkm_http.c), the
 * parser of what a local client sends to the feeder's and demo server's
 * /metrics endpoint.
 *
 * Invariants (abort = finding): no read outside the buffer (ASan); the
 * answer is -1, 0 or 1; -1 exactly when there is no newline; 1 only for a
 * request line that starts with "GET /metrics" or "HEAD /metrics" followed
 * by the end of the line, a space, '?' or '\r'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hkm_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    const char *p;
    int k;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    k = hkm_request_kind(buf, size);
    if (k < -1 || k > 1)
        abort();
    if ((k == -1) != (memchr(buf, '\n', size) == NULL))
        abort();
    if (k == 1) {
        p = strncmp(buf, "GET ", 4) == 0 ? buf + 4 : buf + 5;
        if (strncmp(buf, "GET ", 4) != 0 && strncmp(buf, "HEAD ", 5) != 0)
            abort();
        if (memcmp(p, "/metrics", 8) != 0)
            abort();
        if (!(p[8] == '\n' || p[8] == ' ' || p[8] == '?' || p[8] == '\r'))
            abort();
    }
    free(buf);
    return 0;
}
