/*
 * opts.c - parse and check the feeder's command line (see opts.h).  Threat:
 * secrets in argv: a URI with pin-value= is refused; PINs come from files.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "opts.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: hsmkeys-haproxy-feeder --uri URI --domain NAME [--socket PATH]... [--fifo PATH]...\n"
"                              [--ticket-keys-id ID] [options]\n"
"Feed HAProxy the fleet's TLS ticket keys, derived in a PKCS#11 token, through its\n"
"runtime API: HAProxy's ring is kept at [e-1, e, e+1] so it encrypts with epoch e.\n"
"\n"
"  --uri URI             pkcs11: URI of the master (pin-source=FILE, never pin-value)\n"
"  --domain NAME         ticket domain shared by the servers that resume each other\n"
"  --epoch T             epoch length (s, m, h, d suffixes) [1h]\n"
"  --lifetime T          ticket lifetime, at most 7d [2h]\n"
"  --forward-erasable    epoch keys also depend on per-epoch states the token erases\n"
"                        after the window (the same on every server of the fleet)\n"
"  --pin-source FILE     PIN file (mode 600), overrides the URI's pin-source\n"
"  --module PATH         PKCS#11 module, overrides the URI's module-path\n"
"  --module-args STR     module init arguments (NSS softokn)\n"
"  --socket PATH         HAProxy admin socket (level admin); once per HAProxy instance\n"
"  --ticket-keys-id ID   the keys' reference in HAProxy: the bind line's tls-ticket-keys\n"
"                        path or #N from `show tls-keys` [the --fifo path if only one]\n"
"  --fifo PATH           serve HAProxy's start-up tls-ticket-keys on this FIFO (created\n"
"                        mode 600); point `tls-ticket-keys` at it\n"
"  --interval SECONDS    check each HAProxy for a restart this often [5]\n"
"  --max-backoff SECONDS longest wait between retries of an unreachable HAProxy [10]\n"
"  --once                push the ring to every socket once and exit (status 1 on failure)\n"
"  --foreground          do not detach; log to stderr (default: daemon, syslog)\n"
"  --pidfile PATH        write the daemon's PID here\n"
"  --metrics ADDR:PORT   serve Prometheus metrics (GET /metrics) on this loopback address\n"
"  --verbose             log every check, not only changes\n"
"  --help, --version\n"
"Signals: TERM/INT exit cleanly, HUP pushes the whole ring again.\n");
}

static int seconds_ms(const char *opt, const char *v, int *out, char *err, size_t err_len)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d > 0) || d > 86400) {
        snprintf(err, err_len, "%s %s: expected seconds, > 0 and <= 86400", opt, v);
        return -1;
    }
    *out = (int)(d * 1000);
    if (*out < 10)
        *out = 10;
    return 0;
}

static int check(hf_opts *o, char *err, size_t err_len)
{
    /* empty counts as missing: the systemd unit passes ${HSMKEYS_URI} and
     * ${HSMKEYS_DOMAIN} from /etc/default/hsmkeys-haproxy-feeder */
    if (!o->uri || !*o->uri || !o->domain || !*o->domain) {
        snprintf(err, err_len, "--uri and --domain are required (see --help; for the systemd "
                "unit: HSMKEYS_URI and HSMKEYS_DOMAIN in /etc/default/hsmkeys-haproxy-feeder)");
        return -1;
    }
    if (strstr(o->uri, "pin-value=")) {
        snprintf(err, err_len, "--uri carries pin-value=, which every local user can read in the "
                "process list; put the PIN in a mode 600 file and use pin-source=FILE");
        return -1;
    }
    if (o->n_sockets == 0 && o->n_fifos == 0) {
        snprintf(err, err_len, "nothing to feed: give --socket (HAProxy admin socket) and/or --fifo");
        return -1;
    }
    if (o->once && o->n_fifos) {
        snprintf(err, err_len, "--once pushes over sockets only; --fifo needs a running feeder");
        return -1;
    }
    if (o->once && o->n_sockets == 0) {
        snprintf(err, err_len, "--once needs at least one --socket");
        return -1;
    }
    if (!o->keys_id && o->n_fifos == 1)
        o->keys_id = o->fifos[0];
    if (o->n_sockets && !o->keys_id) {
        snprintf(err, err_len, "--ticket-keys-id is required with --socket: the tls-ticket-keys path "
                "of the bind line, or #N as listed by `show tls-keys`");
        return -1;
    }
    if (o->keys_id && (strlen(o->keys_id) == 0 || strlen(o->keys_id) > HF_MAX_ID_LEN ||
                       strpbrk(o->keys_id, " \t\r\n;\\"))) {
        snprintf(err, err_len, "--ticket-keys-id must be 1..%d characters without blanks, ';' or '\\'",
                HF_MAX_ID_LEN);
        return -1;
    }
    return 0;
}

int hf_opts_parse(hf_opts *o, int argc, char **argv, char *err, size_t err_len)
{
    enum { O_URI = 256, O_DOMAIN, O_EPOCH, O_LIFETIME, O_PIN, O_MODULE, O_MARGS, O_SOCKET,
           O_ID, O_FIFO, O_INTERVAL, O_BACKOFF, O_ONCE, O_FG, O_PIDFILE, O_VERBOSE, O_HELP, O_VERSION, O_METRICS,
           O_FE };
    static const struct option lo[] = {
        { "uri", 1, 0, O_URI }, { "domain", 1, 0, O_DOMAIN }, { "epoch", 1, 0, O_EPOCH },
        { "lifetime", 1, 0, O_LIFETIME }, { "pin-source", 1, 0, O_PIN }, { "module", 1, 0, O_MODULE },
        { "module-args", 1, 0, O_MARGS }, { "socket", 1, 0, O_SOCKET },
        { "ticket-keys-id", 1, 0, O_ID }, { "fifo", 1, 0, O_FIFO }, { "interval", 1, 0, O_INTERVAL },
        { "max-backoff", 1, 0, O_BACKOFF }, { "once", 0, 0, O_ONCE }, { "foreground", 0, 0, O_FG },
        { "pidfile", 1, 0, O_PIDFILE }, { "verbose", 0, 0, O_VERBOSE }, { "help", 0, 0, O_HELP },
        { "version", 0, 0, O_VERSION }, { "metrics", 1, 0, O_METRICS },
        { "forward-erasable", 0, 0, O_FE }, { 0, 0, 0, 0 } };
    int c;

    memset(o, 0, sizeof *o);
    err[0] = '\0'; /* stays empty when getopt has reported the error itself */
    o->interval_ms = 5000;
    o->max_backoff_ms = 10000;
    o->timeout_ms = 3000;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_URI: o->uri = optarg; break;
        case O_DOMAIN: o->domain = optarg; break;
        case O_EPOCH: o->epoch = optarg; break;
        case O_LIFETIME: o->lifetime = optarg; break;
        case O_PIN: o->pin_source = optarg; break;
        case O_MODULE: o->module = optarg; break;
        case O_MARGS: o->module_args = optarg; break;
        case O_SOCKET:
            if (o->n_sockets == HF_MAX_SOCKETS) {
                snprintf(err, err_len, "at most %d --socket", HF_MAX_SOCKETS);
                return -1;
            }
            o->sockets[o->n_sockets++] = optarg;
            break;
        case O_FIFO:
            if (o->n_fifos == HF_MAX_FIFOS) {
                snprintf(err, err_len, "at most %d --fifo", HF_MAX_FIFOS);
                return -1;
            }
            o->fifos[o->n_fifos++] = optarg;
            break;
        case O_ID: o->keys_id = optarg; break;
        case O_INTERVAL: if (seconds_ms("--interval", optarg, &o->interval_ms, err, err_len)) return -1; break;
        case O_BACKOFF: if (seconds_ms("--max-backoff", optarg, &o->max_backoff_ms, err, err_len)) return -1; break;
        case O_ONCE: o->once = 1; break;
        case O_FG: o->foreground = 1; break;
        case O_PIDFILE: o->pidfile = optarg; break;
        case O_METRICS: o->metrics = optarg; break;
        case O_VERBOSE: o->verbose = 1; break;
        case O_FE: o->forward_erasable = 1; break;
        case O_HELP: usage(stdout); return 1;
        case O_VERSION: printf("hsmkeys-haproxy-feeder %s\n", hsmkeys_version()); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, err_len, "unexpected argument \"%s\" (see --help)", argv[optind]);
        return -1;
    }
    return check(o, err, err_len);
}
