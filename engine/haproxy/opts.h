/*
 * opts.h - command line of hsmkeys-haproxy-feeder.
 *
 * Threat: secrets on the command line, visible to every local user in
 * /proc/PID/cmdline.  The PIN is only ever named by a file (pin-source in the
 * URI or --pin-source); a URI carrying pin-value= is refused.
 */
#ifndef HSMKEYS_FEEDER_OPTS_H
#define HSMKEYS_FEEDER_OPTS_H

#include <stddef.h>
#include "feeder.h"

typedef struct hf_opts {
    const char *uri, *domain, *epoch, *lifetime, *module, *module_args, *pin_source;
    const char *sockets[HF_MAX_SOCKETS];
    int n_sockets;
    const char *fifos[HF_MAX_FIFOS];
    int n_fifos;
    const char *keys_id;
    const char *pidfile;
    const char *metrics;  /* loopback ADDR:PORT serving GET /metrics */
    int once, foreground, verbose;
    int forward_erasable; /* --forward-erasable */
    int interval_ms;      /* how often each HAProxy is checked for a restart */
    int max_backoff_ms;
    int timeout_ms;
} hf_opts;

/* Parse argv.  Returns 0 (run), 1 (--help/--version printed: exit 0) or
 * -1 (exit 2): err says what is wrong and how to fix it, or is empty when
 * getopt has printed its own message and the usage. */
int hf_opts_parse(hf_opts *o, int argc, char **argv, char *err, size_t err_len);

#endif
