/*
 * main.c - hsmkeys-bench: one subcommand per benchmark item; bench/run.sh
 * runs them and prints the table.  Not a test: nothing here checks times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static void usage(void)
{
    fprintf(stderr,
        "usage: hsmkeys-bench resume RUNS          item 1: built-in keys vs callback\n"
        "       hsmkeys-bench full RUNS            item 2: full vs resumed, RSA/EC/token keys\n"
        "       hsmkeys-bench calls N [URI LABEL]  item 3: token calls, N resumed handshakes\n"
        "       hsmkeys-bench boundary RUNS        item 4: latency around an epoch boundary\n"
        "       hsmkeys-bench cg MODE N            item 7: driver for callgrind\n"
        "       hsmkeys-bench erasable RUNS        item 9: cost per epoch, forward-erasable vs static\n"
        "       hsmkeys-bench sesscache RUNS URL PWFILE REDIS_PID  item 8: session IDs via the sealed cache\n"
        "Output: ROW|section|label|min|median|max|unit lines.\n");
}

int main(int argc, char **argv)
{
    int rc;
    if (argc < 3) {
        usage();
        return 2;
    }
    if (strcmp(argv[1], "resume") == 0)
        rc = bench_resume(atoi(argv[2]));
    else if (strcmp(argv[1], "full") == 0)
        rc = bench_full(atoi(argv[2]));
    else if (strcmp(argv[1], "calls") == 0)
        rc = bench_calls(atol(argv[2]), argc > 4 ? argv[3] : NULL, argc > 4 ? argv[4] : "SoftHSM2");
    else if (strcmp(argv[1], "boundary") == 0)
        rc = bench_boundary(atoi(argv[2]));
    else if (strcmp(argv[1], "sesscache") == 0 && argc > 5)
        rc = bench_sesscache(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]));
    else if (strcmp(argv[1], "erasable") == 0)
        rc = bench_erasable(atoi(argv[2]));
    else if (strcmp(argv[1], "cg") == 0 && argc > 3)
        rc = bench_cg(argv[2], atoi(argv[3]));
    else {
        usage();
        return 2;
    }
    return rc == 0 ? 0 : 1;
}
