/*
 * t-token - test-only: initialise a SoftHSM2 token and import a known master
 * derived from a seed.  Used by tests/lib/lab.sh.  Never for real tokens:
 * the master's value is public by construction.
 *
 * usage: t-token LABEL PIN_FILE SO_PIN_FILE SEED|none [GENERATION [ACTIVATION]]
 *   (SOFTHSM2_CONF must name the host's config)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "softhsm.h"
#include "p11.h"
#include "pin.h"

int main(int argc, char **argv)
{
    char pin[300], so_pin[300];
    unsigned char master[32];
    t_master_opts o = { 0 };

    if (argc < 5) {
        fprintf(stderr, "usage: t-token LABEL PIN_FILE SO_PIN_FILE SEED|none [GEN [ACTIVATION]]\n");
        return 2;
    }
    if (t_read_pin("t-token", argv[2], pin, sizeof pin) || t_read_pin("t-token", argv[3], so_pin, sizeof so_pin))
        return 1;
    if (t_token_init(T_SOFTHSM_MODULE, argv[1], so_pin, pin) != 0)
        return 1;
    if (strcmp(argv[4], "none") != 0) {
        t_master_from_seed(argv[4], master);
        o.generation = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 1;
        o.activation = argc > 6 ? strtoll(argv[6], NULL, 10) : 0;
        if (t_master_import(T_SOFTHSM_MODULE, argv[1], pin, master, sizeof master, &o) != 0)
            return 1;
    }
    return 0;
}
