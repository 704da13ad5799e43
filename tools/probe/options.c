/*
 * options.c - hsmkeys-probe's command line.
 *
 * Threat: bad input from the operator.  Every number is range-checked and a
 * wrong option names itself in the message; nothing is silently defaulted.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void probe_usage(FILE *f)
{
    fputs(
"usage: hsmkeys-probe [options] HOST:PORT\n"
"Reconnect to HOST:PORT again and again, always offering the newest session\n"
"ticket, and report how many connections resumed, per client and per backend.\n"
"\n"
"  -n, --count N          connections per client (default 20)\n"
"  -d, --duration SEC     reconnect for SEC seconds instead of a count\n"
"  -c, --clients N        concurrent clients, each a thread with its own\n"
"                         tickets, named C1..CN (default 1)\n"
"  -p, --parallel N       connections at once per client, sharing its newest\n"
"                         ticket like a connection pool (default 1)\n"
"  -i, --interval MS      pause between a client's connections (default 0),\n"
"                         varied by +-50% unless --no-jitter\n"
"      --no-jitter        keep the interval exact\n"
"      --sni NAME         send NAME as SNI and Host (default: HOST, no SNI\n"
"                         when HOST is an IP address)\n"
"      --tls1.2           only TLS 1.2\n"
"      --tls1.3           only TLS 1.3\n"
"      --path PATH        request path of the HTTP GET (default /)\n"
"      --backend-header H response header that names the backend (default\n"
"                         X-Server; a body line \"server: NAME\" also works)\n"
"      --cafile FILE      verify the server certificate against FILE\n"
"                         (default: no verification; the probe sends nothing\n"
"                         secret)\n"
"      --warmup N         unrecorded connections before the run, so that\n"
"                         OpenSSL's first-use costs in the probe are not\n"
"                         timed (default 1)\n"
"      --timeout SEC      per-connection I/O timeout (default 5)\n"
"      --min-rate PCT     exit 1 unless at least PCT% of the reconnects\n"
"                         resumed (a reconnect: a connection started after\n"
"                         the client had received a session)\n"
"      --csv FILE         write one CSV row per connection (\"-\": stdout)\n"
"      --json FILE        write summary and connections as JSON (\"-\": stdout)\n"
"      --summary FILE     write the run as one key=value line, the format\n"
"                         scripts read (\"-\": stdout; keys: hsmkeys-probe(1))\n"
"      --client-prefix P  client names P1..PN (default C)\n"
"  -q, --quiet            do not print the table\n"
"  -h, --help             this help\n"
"\n"
"Exit status: 0 success; 1 a connection failed or the rate is below\n"
"--min-rate; 2 usage or set-up error.\n", f);
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "hsmkeys-probe: %s: \"%s\" is not a whole number in %ld..%ld\n",
                opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "hsmkeys-probe: %s: \"%s\" is not a number in %g..%g\n",
                opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* HOST:PORT, [V6]:PORT. */
static int parse_target(const char *s, probe_opts *o)
{
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            goto bad;
        hl = (size_t)(close - s - 1);
        memcpy(o->host, s + 1, hl < sizeof o->host ? hl : 0);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        hl = (size_t)(colon - s);
        if (hl >= sizeof o->host)
            goto bad;
        memcpy(o->host, s, hl);
    }
    if (hl == 0 || hl >= sizeof o->host)
        goto bad;
    o->host[hl] = '\0';
    int port;
    if (parse_int("port", colon + 1, 1, 65535, &port))
        return -1;
    snprintf(o->port, sizeof o->port, "%d", port);
    return 0;
bad:
    fprintf(stderr, "hsmkeys-probe: target \"%s\" is not HOST:PORT or [IPV6]:PORT\n", s);
    return -1;
}

enum { O_SNI = 256, O_TLS12, O_TLS13, O_PATH, O_BHDR, O_CAFILE, O_TIMEOUT,
       O_MINRATE, O_CSV, O_JSON, O_SUMMARY, O_PREFIX, O_NOJITTER, O_WARMUP };

int probe_parse_args(int argc, char **argv, probe_opts *o)
{
    static const struct option longs[] = {
        {"count", required_argument, 0, 'n'},
        {"duration", required_argument, 0, 'd'},
        {"clients", required_argument, 0, 'c'},
        {"interval", required_argument, 0, 'i'},
        {"parallel", required_argument, 0, 'p'},
        {"no-jitter", no_argument, 0, O_NOJITTER},
        {"sni", required_argument, 0, O_SNI},
        {"tls1.2", no_argument, 0, O_TLS12},
        {"tls1.3", no_argument, 0, O_TLS13},
        {"path", required_argument, 0, O_PATH},
        {"backend-header", required_argument, 0, O_BHDR},
        {"cafile", required_argument, 0, O_CAFILE},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"warmup", required_argument, 0, O_WARMUP},
        {"min-rate", required_argument, 0, O_MINRATE},
        {"csv", required_argument, 0, O_CSV},
        {"json", required_argument, 0, O_JSON},
        {"summary", required_argument, 0, O_SUMMARY},
        {"client-prefix", required_argument, 0, O_PREFIX},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}
    };
    memset(o, 0, sizeof *o);
    o->path = "/";
    o->backend_header = "X-Server";
    o->client_prefix = "C";
    o->count = 20;
    o->clients = 1;
    o->parallel = 1;
    o->warmup = 1;
    o->jitter = 1;
    o->timeout_s = 5;
    o->min_rate = -1;
    int ch, have_count = 0;
    while ((ch = getopt_long(argc, argv, "n:d:c:i:p:qh", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': if (parse_int("--count", optarg, 1, 1000000, &o->count)) return 2;
                  have_count = 1; break;
        case 'd': if (parse_double("--duration", optarg, 0.001, 86400, &o->duration)) return 2;
                  break;
        case 'c': if (parse_int("--clients", optarg, 1, PROBE_CLIENT_MAX, &o->clients)) return 2;
                  break;
        case 'p': if (parse_int("--parallel", optarg, 1, 64, &o->parallel)) return 2;
                  break;
        case 'i': if (parse_int("--interval", optarg, 0, 3600000, &o->interval_ms)) return 2;
                  break;
        case O_NOJITTER: o->jitter = 0; break;
        case O_SNI: o->sni = optarg; break;
        case O_TLS12: o->tls_version = TLS1_2_VERSION; break;
        case O_TLS13: o->tls_version = TLS1_3_VERSION; break;
        case O_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n")) {
                fprintf(stderr, "hsmkeys-probe: --path must start with / and hold no spaces or newlines\n");
                return 2;
            }
            o->path = optarg; break;
        case O_BHDR:
            if (!optarg[0] || strpbrk(optarg, ": \r\n")) {
                fprintf(stderr, "hsmkeys-probe: --backend-header must be a header name\n");
                return 2;
            }
            o->backend_header = optarg; break;
        case O_CAFILE: o->cafile = optarg; break;
        case O_WARMUP: if (parse_int("--warmup", optarg, 0, 100, &o->warmup)) return 2;
                       break;
        case O_TIMEOUT: if (parse_int("--timeout", optarg, 1, 3600, &o->timeout_s)) return 2;
                        break;
        case O_MINRATE: if (parse_double("--min-rate", optarg, 0, 100, &o->min_rate)) return 2;
                        break;
        case O_CSV: o->csv_path = optarg; break;
        case O_JSON: o->json_path = optarg; break;
        case O_SUMMARY: o->summary_path = optarg; break;
        case O_PREFIX:
            if (!optarg[0] || strlen(optarg) > 8 || strpbrk(optarg, ",\"\r\n ")) {
                fprintf(stderr, "hsmkeys-probe: --client-prefix: 1..8 characters, no commas, quotes or spaces\n");
                return 2;
            }
            o->client_prefix = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': probe_usage(stdout); return 3;
        default: probe_usage(stderr); return 2;
        }
    }
    if (o->duration > 0 && have_count) {
        fprintf(stderr, "hsmkeys-probe: give --count or --duration, not both\n");
        return 2;
    }
    if (o->duration > 0)
        o->count = 0;
    if (optind != argc - 1) {
        fprintf(stderr, "hsmkeys-probe: expected one HOST:PORT argument\n");
        probe_usage(stderr);
        return 2;
    }
    if (parse_target(argv[optind], o))
        return 2;
    unsigned char addr[16];
    if (!o->sni && inet_pton(AF_INET, o->host, addr) != 1 && inet_pton(AF_INET6, o->host, addr) != 1)
        o->sni = o->host; /* a name: send it, as browsers do */
    if (o->sni && (!o->sni[0] || strpbrk(o->sni, " \r\n"))) {
        fprintf(stderr, "hsmkeys-probe: --sni must be a host name\n");
        return 2;
    }
    return 0;
}
