/*
 * token-check.c - test helper: hsmkeys on any PKCS#11 module named by a URI
 * (tests/modules/test_tpm2_pkcs11.sh; the module reads its configuration
 * from the environment the test sets).
 *
 *   token-check open    --uri URI [--module-args A]
 *       hsmkeys_open; prints "open=CODE" and "message=..." on failure.
 *   token-check vectors --uri URI [--module-args A] --vectors FILE [--seed S]
 *       the published vectors of seed S (default "fleet"), derived by the module.
 *   token-check bench   --uri URI [--module-args A] --what NAME [--n N]
 *       median time of one epoch derivation on the module.
 *
 * Output is "key=value" lines (tests/lib/modcheck.c); key bytes are compared,
 * never printed.  Exit 0 ok, 1 failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "modcheck.h"

static void usage(void)
{
    fprintf(stderr, "usage: token-check open|vectors|bench --uri URI [--module-args A] "
            "[--vectors FILE] [--seed S] [--what NAME] [--n N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *uri = NULL, *args = NULL, *vectors = NULL, *seed = "fleet", *what = "module";
    int n = 100, i, rc;
    if (argc < 2)
        usage();
    for (i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--uri")) uri = v;
        else if (!strcmp(a, "--module-args")) args = v;
        else if (!strcmp(a, "--vectors")) vectors = v;
        else if (!strcmp(a, "--seed")) seed = v;
        else if (!strcmp(a, "--what")) what = v;
        else if (!strcmp(a, "--n")) n = atoi(v);
        else usage();
    }
    if (i != argc || uri == NULL || n < 1)
        usage();
    if (!strcmp(argv[1], "open")) {
        hsmkeys_ctx *ctx = mc_open(uri, args, "www.example.com", NULL, NULL, NULL, &rc);
        printf("open=%s\n", hsmkeys_result_name(rc));
        if (ctx == NULL)
            printf("message=%s\n", hsmkeys_last_error());
        hsmkeys_close(ctx);
        return ctx ? 0 : 1;
    }
    if (!strcmp(argv[1], "vectors") && vectors)
        return mc_vectors(uri, args, vectors, seed);
    if (!strcmp(argv[1], "bench"))
        return mc_bench(what, uri, args, n) ? 0 : 1;
    usage();
    return 2;
}
