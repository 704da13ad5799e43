/*
 * main.c - hsmkeys-tool: command line, subcommand table and --help.
 *
 * Owns: parsing argv into struct hkt_opts and dispatching.  Threat: a PIN or
 * key on the command line would leak through /proc/PID/cmdline and shell
 * history, so no option takes a PIN or key value: only file paths
 * (pin-source files are permission-checked where they are read).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

struct hkt_cmd {
    const char *name;
    int (*run)(struct hkt_opts *o);
    const char *summary;
    const char *usage;   /* synopsis line(s), then indented notes; NULL: an alias */
    const char *opts;    /* the long options it takes besides the common ones
                          * (optable.c): the rest are refused, and its --help
                          * lists exactly these */
};

/* Every command that opens the token takes its selection. */
#define SEL "token uri label "
#define KCV_OPTS SEL "pin-source generation expect-kcv epoch domain epoch-length forward-erasable"
#define DESTROY_OPTS SEL "pin-source generation epoch lifetime"

static const struct hkt_cmd cmds[] = {
    {"init", hkt_cmd_init, "initialise a SoftHSM2 token (SO PIN and user PIN)",
     "--token LABEL --so-pin-source FILE --pin-source FILE\n"
     "  Initialises a free SoftHSM2 slot as token LABEL and sets its user PIN.\n"
     "  A hardware HSM is initialised with its vendor's tools instead.\n",
     "token so-pin-source pin-source"},
    {"create", hkt_cmd_create, "generate the first master generation inside the token",
     "--token LABEL|--uri URI --pin-source FILE [--clonable] [--generation N]\n"
     "       [--activate-at TIME] [--label LABEL]\n"
     "  Generates a 32-byte master in the token (never from given bytes).\n"
     "  --clonable: EXTRACTABLE + WRAP_WITH_TRUSTED so it can be wrapped to\n"
     "  trusted transport keys of other tokens; seal it when cloning is done.\n"
     "  Default generation 1, active since time 0.\n"
     "  --forward-erasable [--epoch DUR]: also start the generation's chain of\n"
     "  per-epoch states (generated inside the token) at the current epoch.\n",
     SEL "pin-source clonable generation activate-at forward-erasable epoch"},
    {"import-test-master", hkt_cmd_import_test, "TEST ONLY: import a known master from a file",
     "--i-understand-this-is-for-tests --in FILE --token LABEL|--uri URI\n"
     "       --pin-source FILE [--generation N] [--activate-at TIME]\n"
     "  Imports 32..64 bytes from FILE as a master, for test vectors only.\n",
     SEL "pin-source in generation activate-at activate-in"},
    {"rotate", hkt_cmd_rotate, "add the next master generation, active at a future time",
     "--token LABEL|--uri URI --pin-source FILE (--activate-at TIME|--activate-in DUR)\n"
     "       [--generation N] [--clonable]\n"
     "  Activation must be in the future and after every other generation's.\n"
     "  --forward-erasable [--epoch DUR]: also start the new generation's chain.\n",
     SEL "pin-source activate-at activate-in generation clonable forward-erasable epoch"},
    {"adopt", hkt_cmd_adopt, "make a key the token's own tool created a master generation",
     "--token LABEL|--uri URI --pin-source FILE (--key-label L|--key-id HEX)\n"
     "       [--generation N] [--activate-at TIME|--activate-in DUR] [--label LABEL]\n"
     "  For tokens that make secret keys only with their own tools (tpm2-pkcs11,\n"
     "  many HSMs).  Checks the key against the master policy, then sets its\n"
     "  CKA_LABEL to the master label and its CKA_ID to the generation and\n"
     "  activation.  First generation: default 1, active since time 0; later\n"
     "  ones follow the rules of rotate (activation in the future).\n",
     SEL "pin-source key-label key-id generation activate-at activate-in"},
    {"transport-keygen", hkt_cmd_transport_keygen, "host B: make an RSA-2048 transport key pair",
     "--token LABEL|--uri URI --pin-source FILE [--out PUBFILE] [--format pem|der]\n"
     "  The private key is UNWRAP-only and never extractable.\n",
     SEL "pin-source out format"},
    {"transport-export", hkt_cmd_transport_export, "host B: write the transport public key to a file",
     "--token LABEL|--uri URI --pin-source FILE --out PUBFILE [--format pem|der]\n"
     "  The file holds only a public key and its fingerprint is printed:\n"
     "  safe to send by mail; read the fingerprint to host A's operator.\n",
     SEL "pin-source out format"},
    {"trust", hkt_cmd_trust, "host A (security officer): import B's public key as trusted",
     "--token LABEL|--uri URI --so-pin-source FILE --in PUBFILE\n"
     "       --expect-fingerprint HEX [--name HOST]\n"
     "  Creates a CKA_TRUSTED, WRAP-only public key object, only if the file's\n"
     "  fingerprint equals the one host B's operator read out (--expect-fingerprint,\n"
     "  or typed in on the terminal when the option is absent).\n",
     SEL "so-pin-source in expect-fingerprint name"},
    {"wrap", hkt_cmd_wrap, "host A: wrap a master generation for a trusted transport key",
     "--token LABEL|--uri URI --pin-source FILE --to PUBFILE --out BLOB [--generation N]\n"
     "  RSA-OAEP(SHA-1) wrap; the blob names the target key's fingerprint and\n"
     "  the generation; only the target token can open it.\n"
     "  --forward-erasable: wrap the generation's newest chain state instead (a\n"
     "  host joining a running fleet); unwrap takes either kind of blob.\n",
     SEL "pin-source to out generation forward-erasable"},
    {"unwrap", hkt_cmd_unwrap, "host B: import a wrapped master blob",
     "--token LABEL|--uri URI --pin-source FILE --in BLOB --expect-kcv HEX\n"
     "  Unwraps as SENSITIVE, non-extractable; refuses blobs for another\n"
     "  token and masters whose check value differs from host A's.\n",
     SEL "pin-source in expect-kcv"},
    {"seal", hkt_cmd_seal, "host A: make the master non-extractable (one way)",
     "--token LABEL|--uri URI --pin-source FILE [--generation N] [--no-clone]\n"
     "  Refused while a trusted transport key has not received the generation,\n"
     "  or when no clone was made at all unless --no-clone.\n",
     SEL "pin-source generation no-clone"},
    {"verify", hkt_cmd_kcv, "print the key check value of each generation",
     "--token LABEL|--uri URI --pin-source FILE [--generation N] [--expect-kcv HEX]\n"
     "  Equal values on two hosts mean the same master; reveals nothing of it.\n"
     "  --epoch E --domain D [--epoch-length DUR] [--forward-erasable]: the check\n"
     "  value of epoch E's ticket key instead (equal on servers that agree);\n"
     "  fails with \"erased\" once E's chain state is gone (forward-erasable).\n",
     KCV_OPTS},
    {"kcv", hkt_cmd_kcv, "same as verify", NULL,
     KCV_OPTS},
    {"destroy", hkt_cmd_destroy, "destroy a generation whose last epoch left the window",
     "--token LABEL|--uri URI --pin-source FILE --generation N\n"
     "       [--epoch DUR] [--lifetime DUR]\n"
     "  Use the servers' epoch and lifetime (defaults 1h and 2h).  Also erases\n"
     "  the generation's forward-erasable chain states.\n",
     DESTROY_OPTS},
    {"retire", hkt_cmd_destroy, "same as destroy", NULL,
     DESTROY_OPTS},
    {"status", hkt_cmd_status, "show tokens, masters, generations and current key names",
     "[--token LABEL|--uri URI] [--pin-source FILE] [--domain D] [--epoch DUR]\n"
     "       [--lifetime DUR]\n"
     "  Without a token: lists the module's tokens.  With --domain and a\n"
     "  pin-source file: also the key names the fleet uses now.\n",
     SEL "pin-source domain epoch lifetime"},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static void usage_all(FILE *f)
{
    fprintf(f, "usage: hsmkeys-tool COMMAND [OPTIONS]   (hsmkeys-tool COMMAND --help)\n\n"
               "Provision the hsmkeys master secret in PKCS#11 tokens.\n\ncommands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  %-19s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\ncommon options:\n"
               "  --module PATH         PKCS#11 module [" HKT_DEFAULT_MODULE "]\n"
               "  --module-args STR     module init args (C_Initialize pReserved; NSS softokn)\n"
               "  --token LABEL         token label, or\n"
               "  --uri URI             pkcs11: URI (token, object, module-path, pin-source)\n"
               "  --label LABEL         master object label [" HKT_DEFAULT_LABEL "]\n"
               "  --pin-source FILE     user PIN file (mode 0600 or stricter); else prompt\n"
               "  --so-pin-source FILE  security officer PIN file; else prompt\n"
               "  --now TIME            pretend the time is TIME (status; elsewhere tests only)\n"
               "PINs are never accepted in arguments or the environment.\n"
               "TIME: unix seconds or YYYY-MM-DDTHH:MM:SSZ.  DUR: 90, 90s, 15m, 1h, 2d, 1h30m.\n"
               "See hsmkeys-tool(1) and docs/PROVISIONING.md.\n");
}


enum {
    O_MODULE = 256, O_MODARGS, O_URI, O_TOKEN, O_LABEL, O_PIN, O_SOPIN, O_IN, O_OUT, O_TO,
    O_KCV, O_DOMAIN, O_FORMAT, O_NAME, O_EPOCH, O_LIFETIME, O_NOW, O_ACT_AT,
    O_ACT_IN, O_GEN, O_CLONABLE, O_TESTS, O_NOCLONE, O_KEYLABEL, O_KEYID, O_HELP, O_FE,
    O_EPOCHLEN, O_FP
};

static const struct option longopts[] = {
    {"module", required_argument, NULL, O_MODULE},
    {"module-args", required_argument, NULL, O_MODARGS},
    {"uri", required_argument, NULL, O_URI},
    {"token", required_argument, NULL, O_TOKEN},
    {"label", required_argument, NULL, O_LABEL},
    {"pin-source", required_argument, NULL, O_PIN},
    {"so-pin-source", required_argument, NULL, O_SOPIN},
    {"in", required_argument, NULL, O_IN},
    {"out", required_argument, NULL, O_OUT},
    {"to", required_argument, NULL, O_TO},
    {"expect-kcv", required_argument, NULL, O_KCV},
    {"expect-fingerprint", required_argument, NULL, O_FP},
    {"domain", required_argument, NULL, O_DOMAIN},
    {"format", required_argument, NULL, O_FORMAT},
    {"name", required_argument, NULL, O_NAME},
    {"epoch", required_argument, NULL, O_EPOCH},
    {"lifetime", required_argument, NULL, O_LIFETIME},
    {"now", required_argument, NULL, O_NOW},
    {"activate-at", required_argument, NULL, O_ACT_AT},
    {"activate-in", required_argument, NULL, O_ACT_IN},
    {"generation", required_argument, NULL, O_GEN},
    {"clonable", no_argument, NULL, O_CLONABLE},
    {"i-understand-this-is-for-tests", no_argument, NULL, O_TESTS},
    {"no-clone", no_argument, NULL, O_NOCLONE},
    {"key-label", required_argument, NULL, O_KEYLABEL},
    {"key-id", required_argument, NULL, O_KEYID},
    {"help", no_argument, NULL, O_HELP},
    {"forward-erasable", no_argument, NULL, O_FE},
    {"epoch-length", required_argument, NULL, O_EPOCHLEN},
    {NULL, 0, NULL, 0},
};

static void usage_cmd(FILE *f, const struct hkt_cmd *c)
{
    fprintf(f, "usage: hsmkeys-tool %s %s\n%s\n", c->name, c->usage ? c->usage : "", c->summary);
    hkt_print_cmd_opts(f, c->opts, longopts); /* generated from the command's table */
    fprintf(f, "\nTIME: unix seconds or YYYY-MM-DDTHH:MM:SSZ.  DUR: 90, 90s, 15m, 1h, 2d, 1h30m.\n"
               "Any other option is refused.  All commands: hsmkeys-tool --help\n");
}

/* Options that would carry a secret: refused with a pointer to the safe way. */
static int refuse_secret_option(const char *arg)
{
    static const char *bad[] = {"--pin", "--so-pin", "--pin-value", "--key", "--value", NULL};
    for (int i = 0; bad[i]; i++) {
        size_t n = strlen(bad[i]);
        if (!strncmp(arg, bad[i], n) && (arg[n] == 0 || arg[n] == '=')) {
            hkt_err("%s: secrets are never taken from the command line (they leak through "
                    "/proc and shell history); use --pin-source FILE / --so-pin-source FILE "
                    "(mode 0600) or let the tool prompt", bad[i]);
            return 1;
        }
    }
    return 0;
}

/* The long options parse() saw, by name, for the command's table (optable.c). */
#define MAX_SEEN 64
static const char *seen_opts[MAX_SEEN];
static size_t n_seen;

/* epoch_number: the command (kcv) reads --epoch as an epoch number. */
static int parse(int argc, char **argv, struct hkt_opts *o, int *help, int epoch_number)
{
    int64_t in_dur = -1;
    for (int i = 1; i < argc; i++)
        if (refuse_secret_option(argv[i]))
            return -1;
    opterr = 0;
    optind = 1;
    int c;
    int li = -1;
    while ((c = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
        if ((c == 'h' || (c >= O_MODULE && li >= 0)) && n_seen < MAX_SEEN)
            seen_opts[n_seen++] = c == 'h' ? "help" : longopts[li].name;
        li = -1;
        switch (c) {
        case O_MODULE: o->module = optarg; break;
        case O_MODARGS: o->module_args = optarg; break;
        case O_URI: o->uri = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_LABEL: o->label = optarg; break;
        case O_PIN: o->pin_source = optarg; break;
        case O_SOPIN: o->so_pin_source = optarg; break;
        case O_IN: o->in = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_TO: o->to = optarg; break;
        case O_KCV: o->expect_kcv = optarg; break;
        case O_FP: o->expect_fp = optarg; break;
        case O_DOMAIN: o->domain = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_EPOCH:
            o->epoch_arg = optarg;
            if (epoch_number)
                break; /* checked by kcv itself */
            if (hkt_parse_duration(optarg, &o->epoch_seconds) || o->epoch_seconds <= 0) {
                hkt_err("--epoch %s: not a duration (e.g. 3600, 1h)", optarg);
                return -1;
            }
            break;
        case O_LIFETIME:
            if (hkt_parse_duration(optarg, &o->lifetime_seconds) || o->lifetime_seconds <= 0 ||
                o->lifetime_seconds > HSMKEYS_MAX_LIFETIME_SECONDS) {
                hkt_err("--lifetime %s: not a duration of at most 7d", optarg);
                return -1;
            }
            break;
        case O_NOW:
            if (hkt_parse_time(optarg, &o->now)) {
                hkt_err("--now %s: not a time (unix seconds or YYYY-MM-DDTHH:MM:SSZ)", optarg);
                return -1;
            }
            break;
        case O_ACT_AT:
            if (hkt_parse_time(optarg, &o->activate_at)) {
                hkt_err("--activate-at %s: not a time (unix seconds or YYYY-MM-DDTHH:MM:SSZ)", optarg);
                return -1;
            }
            o->have_activate = 1;
            break;
        case O_ACT_IN:
            if (hkt_parse_duration(optarg, &in_dur) || in_dur < 0) {
                hkt_err("--activate-in %s: not a duration (e.g. 90, 15m, 1d)", optarg);
                return -1;
            }
            break;
        case O_GEN: {
            char *end;
            long g = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || g < 0 || g > 0x7fffffffL) {
                hkt_err("--generation %s: not a generation number (0..2147483647)", optarg);
                return -1;
            }
            o->generation = g;
            break;
        }
        case O_CLONABLE: o->clonable = 1; break;
        case O_FE: o->forward_erasable = 1; break;
        case O_EPOCHLEN:
            if (hkt_parse_duration(optarg, &o->epoch_length) || o->epoch_length <= 0) {
                hkt_err("--epoch-length %s: not a duration (e.g. 3600, 1h)", optarg);
                return -1;
            }
            break;
        case O_TESTS: o->for_tests = 1; break;
        case O_NOCLONE: o->no_clone = 1; break;
        case O_KEYLABEL: o->key_label = optarg; break;
        case O_KEYID: o->key_id = optarg; break;
        case 'h':
        case O_HELP: *help = 1; break;
        default:
            hkt_err("unknown or incomplete option %s (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        hkt_err("unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (in_dur >= 0) {
        if (o->have_activate) {
            hkt_err("give --activate-at or --activate-in, not both");
            return -1;
        }
        o->activate_at = hkt_now(o) + in_dur;
        o->have_activate = 1;
    }
    if (o->token && o->uri) {
        hkt_err("give --token or --uri, not both");
        return -1;
    }
    return hkt_uri_refuse_pin(o->uri);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        if (argc >= 3 && !strcmp(argv[1], "help")) {
            for (size_t i = 0; i < NCMDS; i++)
                if (!strcmp(cmds[i].name, argv[2])) {
                    usage_cmd(stdout, &cmds[i]);
                    return HKT_EXIT_OK;
                }
        }
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? HKT_EXIT_USAGE : HKT_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("hsmkeys-tool %s\n", hsmkeys_version());
        return HKT_EXIT_OK;
    }
    const struct hkt_cmd *cmd = NULL;
    for (size_t i = 0; i < NCMDS; i++)
        if (!strcmp(cmds[i].name, argv[1]))
            cmd = &cmds[i];
    if (!cmd) {
        hkt_err("unknown command '%s'; commands: see hsmkeys-tool --help", argv[1]);
        return HKT_EXIT_USAGE;
    }
    struct hkt_opts o;
    memset(&o, 0, sizeof o);
    o.generation = -1;
    o.now = -1;
    o.epoch_seconds = HSMKEYS_DEFAULT_EPOCH_SECONDS;
    o.lifetime_seconds = HSMKEYS_DEFAULT_LIFETIME_SECONDS;
    o.epoch_length = HSMKEYS_DEFAULT_EPOCH_SECONDS;
    int help = 0;
    if (parse(argc - 1, argv + 1, &o, &help, cmd->run == hkt_cmd_kcv) != 0 ||
        hkt_check_cmd_opts(cmd->name, cmd->opts, longopts, seen_opts, n_seen) != 0)
        return HKT_EXIT_USAGE;
    if (help) {
        const struct hkt_cmd *c = cmd;
        if (!c->usage) /* alias: show the command it names */
            for (size_t i = 0; i < NCMDS; i++)
                if (cmds[i].run == c->run && cmds[i].usage)
                    c = &cmds[i];
        usage_cmd(stdout, c);
        return HKT_EXIT_OK;
    }
    /* --now moves the clock the safety checks of rotate and destroy use. */
    if (o.now >= 0 && !o.for_tests && strcmp(cmd->name, "status") && strcmp(cmd->name, "verify") &&
        strcmp(cmd->name, "kcv")) {
        hkt_err("--now with '%s' would bypass its time checks; it is for tests and dry runs of "
                "status only: add --i-understand-this-is-for-tests if that is what you want", cmd->name);
        return HKT_EXIT_USAGE;
    }
    return cmd->run(&o);
}
