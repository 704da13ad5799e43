/*
 * t-chain - test-only: import the known chain state of a seed into a lab
 * token, or list the token's chain states.  The state's value is public by
 * construction (SHA-256("hsmkeys test state:" || seed)): never for real
 * tokens, which start their chain with hsmkeys-tool create --forward-erasable.
 *
 * usage: t-chain import TOKEN PIN_FILE SEED GENERATION EPOCH
 *        t-chain list TOKEN PIN_FILE          (prints "GENERATION EPOCH" lines)
 *   SOFTHSM2_CONF names the host's config; T_MODULE overrides the module
 *   (p11-kit-client.so for a shared token).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "softhsm.h"
#include "p11.h"
#include "pin.h"

int main(int argc, char **argv)
{
    const char *module = getenv("T_MODULE") ? getenv("T_MODULE") : T_SOFTHSM_MODULE;
    char pin[300];
    if (argc >= 4 && t_read_pin("t-chain", argv[3], pin, sizeof pin) != 0)
        return 1;
    if (argc == 7 && strcmp(argv[1], "import") == 0) {
        unsigned char v[32];
        int rc;
        t_state_from_seed(argv[4], v);
        rc = t_chain_import(module, argv[2], pin, v, (uint32_t)strtoul(argv[5], NULL, 10),
                            strtoull(argv[6], NULL, 10));
        return rc == 0 ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "list") == 0) {
        uint32_t g[256];
        uint64_t x[256];
        size_t n = 0, i;
        if (t_chain_list(module, argv[2], pin, g, x, 256, &n) != 0)
            return 1;
        for (i = 0; i < n && i < 256; i++)
            printf("%u %llu\n", g[i], (unsigned long long)x[i]);
        return 0;
    }
    fprintf(stderr, "usage: t-chain import TOKEN PIN_FILE SEED GENERATION EPOCH | "
            "t-chain list TOKEN PIN_FILE\n");
    return 2;
}
