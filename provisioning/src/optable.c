/*
 * optable.c - which options each hsmkeys-tool command takes, and the help
 * text of every option: the command table in main.c names a command's
 * options (a space-separated list), this file checks a command line against
 * it and prints the options part of each command's --help from it, so the
 * help and what is accepted cannot differ.
 *
 * Data: hkt_optdocs[], one row per long option (name, argument, help);
 * HKT_COMMON_OPTS, taken by every command.  An option a command does not
 * take is refused (exit 2) rather than silently ignored: `kcv --to x
 * --format der --clonable` looked like it did something.
 * Threat: none beyond main.c's (no option carries a secret).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "tool.h"

struct hkt_optdoc {
    const char *name, *arg, *help;
};

static const struct hkt_optdoc hkt_optdocs[] = {
    {"token", "LABEL", "token label"},
    {"uri", "URI", "pkcs11: URI (token, object, module-path, pin-source)"},
    {"label", "LABEL", "master object label [" HKT_DEFAULT_LABEL "]"},
    {"pin-source", "FILE", "user PIN file (mode 0600 or stricter); else prompt"},
    {"so-pin-source", "FILE", "security officer PIN file; else prompt"},
    {"module", "PATH", "PKCS#11 module [" HKT_DEFAULT_MODULE "]"},
    {"module-args", "STR", "module init args (C_Initialize pReserved; NSS softokn)"},
    {"in", "FILE", "input file"},
    {"out", "FILE", "output file (created, never overwritten)"},
    {"to", "PUBFILE", "the trusted transport public key to wrap for"},
    {"format", "pem|der", "public key file format [pem]"},
    {"expect-kcv", "HEX", "refuse unless the key check value is this"},
    {"expect-fingerprint", "HEX", "refuse unless the public key's fingerprint is this"},
    {"name", "HOST", "host name recorded on the trusted key"},
    {"domain", "D", "the servers' ticket domain"},
    {"epoch", "DUR", "the servers' epoch [1h] (kcv --epoch: an epoch number)"},
    {"epoch-length", "DUR", "the servers' epoch length [1h]"},
    {"lifetime", "DUR", "the servers' ticket lifetime [2h]"},
    {"generation", "N", "master generation"},
    {"activate-at", "TIME", "when the generation becomes active"},
    {"activate-in", "DUR", "... or how long from now"},
    {"clonable", NULL, "EXTRACTABLE + WRAP_WITH_TRUSTED, to clone to other tokens"},
    {"forward-erasable", NULL, "the generation's chain of per-epoch states (forward erasure)"},
    {"no-clone", NULL, "seal a master that was never cloned"},
    {"key-label", "L", "label of the key the token's own tool made"},
    {"key-id", "HEX", "... or its CKA_ID"},
    {"now", "TIME", "pretend the time is TIME (status; elsewhere tests only)"},
    {"i-understand-this-is-for-tests", NULL, "allow test-only operations"},
    {"help", NULL, "this help"},
};
#define HKT_NOPTDOCS (sizeof hkt_optdocs / sizeof hkt_optdocs[0])

/* Taken by every command. */
#define HKT_COMMON_OPTS "module module-args now i-understand-this-is-for-tests help"

/* 1 if the space-separated list has `name` as a whole word. */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && !strncmp(p, name, n))
            return 1;
        p += w;
        p += strspn(p, " ");
    }
    return 0;
}

int hkt_cmd_takes(const char *cmd_opts, const char *name)
{
    return in_list(cmd_opts, name) || in_list(HKT_COMMON_OPTS, name);
}

/* 1 if this build's parser has the option (a table may name one that a
 * branch adds: it is then neither listed nor accepted). */
static int known(const struct option *lo, const char *name, size_t len)
{
    for (const struct option *o = lo; o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len))
            return 1;
    return 0;
}

int hkt_check_cmd_opts(const char *cmd, const char *cmd_opts, const struct option *lo,
                       const char *const *seen, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hkt_cmd_takes(cmd_opts, seen[i]))
            continue;
        char list[1024];
        size_t off = 0;
        for (const char *p = cmd_opts; *p && off < sizeof list - 1;) {
            size_t w = strcspn(p, " ");
            if (known(lo, p, w))
                off += (size_t)snprintf(list + off, sizeof list - off, "%s--%.*s",
                                        off ? " " : "", (int)w, p);
            p += w;
            p += strspn(p, " ");
        }
        hkt_err("'%s' does not take --%s: its options are %s (and --module, --module-args; "
                "see hsmkeys-tool %s --help)", cmd, seen[i], off ? list : "none", cmd);
        return -1;
    }
    return 0;
}

static const struct hkt_optdoc *doc_of(const char *name)
{
    for (size_t i = 0; i < HKT_NOPTDOCS; i++)
        if (!strcmp(hkt_optdocs[i].name, name))
            return &hkt_optdocs[i];
    return NULL;
}

static void print_list(FILE *f, const char *list, const struct option *lo)
{
    for (const char *p = list; *p;) {
        char name[64];
        size_t w = strcspn(p, " ");
        snprintf(name, sizeof name, "%.*s", (int)(w < sizeof name ? w : sizeof name - 1), p);
        p += w;
        p += strspn(p, " ");
        const struct hkt_optdoc *d = doc_of(name);
        if (!d || !known(lo, name, strlen(name)))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        fprintf(f, "  %-24s %s\n", left, d->help);
    }
}

void hkt_print_cmd_opts(FILE *f, const char *cmd_opts, const struct option *lo)
{
    fprintf(f, "\noptions:\n");
    print_list(f, cmd_opts, lo);
    print_list(f, HKT_COMMON_OPTS, lo);
}
