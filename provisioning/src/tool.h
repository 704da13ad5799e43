/*
 * tool.h - shared declarations of hsmkeys-tool, the provisioning CLI.
 *
 * Owns: the parsed command line (struct hkt_opts), the open token connection
 * (struct hkt_conn) and the small helpers every subcommand uses.
 * Threat: PINs and master bytes must never reach argv, the environment, a
 * file or a log.  PINs come only from a 0600 pin-source file or the terminal,
 * live in locked memory (hk_secret) for the one login that needs them, and
 * are wiped right after; key material other than public keys and wrapped
 * blobs never leaves the token through this tool.
 */
#ifndef HKT_TOOL_H
#define HKT_TOOL_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include "hk_tool.h" /* the library's internal interface for its tools: the only one */

#define HKT_DEFAULT_MODULE  "/usr/lib/softhsm/libsofthsm2.so"
#define HKT_DEFAULT_LABEL   "hsmkeys-master"
#define HKT_TRANSPORT_LABEL "hsmkeys-transport"
#define HKT_WRAPLOG_LABEL   "hsmkeys-wrap-record"
#define HKT_FP_LEN          32 /* SHA-256 of the SubjectPublicKeyInfo DER */
#define HKT_FP_ID_LEN       16 /* CKA_ID of transport keys: first 16 bytes */

/* Exit codes: 0 ok, 1 operation failed or refused, 2 usage error. */
#define HKT_EXIT_OK    0
#define HKT_EXIT_FAIL  1
#define HKT_EXIT_USAGE 2

struct hkt_opts {
    const char *module;        /* --module, or the URI's module-path */
    const char *module_args;   /* --module-args: C_Initialize pReserved (NSS) */
    const char *uri;           /* --uri */
    const char *token;         /* --token */
    const char *label;         /* --label: master label */
    const char *pin_source;    /* --pin-source */
    const char *so_pin_source; /* --so-pin-source */
    const char *in;            /* --in */
    const char *out;           /* --out */
    const char *to;            /* --to: transport public key file (wrap) */
    const char *expect_kcv;    /* --expect-kcv */
    const char *expect_fp;     /* --expect-fingerprint (trust) */
    const char *domain;        /* --domain */
    const char *format;        /* --format pem|der */
    const char *name;          /* --name: host name recorded on a trusted key */
    const char *key_label;     /* --key-label: adopt: the vendor-made key's label */
    const char *key_id;        /* --key-id: adopt: its CKA_ID in hex */
    int64_t epoch_seconds;     /* --epoch */
    int64_t lifetime_seconds;  /* --lifetime */
    int64_t now;               /* --now (tests and dry runs), else time() */
    int64_t activate_at;       /* --activate-at */
    int have_activate;
    long generation;           /* --generation, -1 if absent */
    int clonable;              /* --clonable */
    int for_tests;             /* --i-understand-this-is-for-tests */
    int no_clone;              /* --no-clone (seal a single-host master) */
    int forward_erasable;      /* --forward-erasable (cmd_chain.c) */
    const char *epoch_arg;     /* --epoch as given: an epoch number for kcv */
    int64_t epoch_length;      /* --epoch-length (kcv --epoch: which generation) */
};

/* An open, logged-in session on the selected token. */
struct hkt_conn {
    hk_module *module;
    hk_uri *uri;          /* token selection */
    hk_uri *master_uri;   /* "pkcs11:object=<label>" for hk_master_find */
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session; /* PKCS#11 calls: HK_FN(c->module, C_Fn)(...) (hk_tool.h) */
    char token_label[33];
    char token_serial[17];
    const char *label;    /* master label */
};

#define HKT_LOGIN_NONE 0
#define HKT_LOGIN_USER 1
#define HKT_LOGIN_SO   2

/* conn.c */
int hkt_conn_open(struct hkt_conn *c, const struct hkt_opts *o, int login);
void hkt_conn_close(struct hkt_conn *c);
int hkt_read_pin(const char *source, const char *prompt, hk_secret *pin);
/* Refuse a URI that carries pin-value (message printed): -1, else 0. */
int hkt_uri_refuse_pin(const char *uri);
const char *hkt_module_path(const struct hkt_opts *o);

/* util.c */
void hkt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hkt_err_lib(const char *what);  /* prints what + hsmkeys_last_error() */
void hkt_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hkt_warn_cb(void *arg, const char *msg); /* hk_master_check_policy's warnings */
void hkt_hex(char *out, const unsigned char *p, size_t len); /* 2*len+1 */
int hkt_unhex(const char *s, unsigned char *out, size_t len);
int hkt_parse_time(const char *s, int64_t *out);     /* unix secs or ISO-8601 Z */
/* 90, 90s, 5m, 1h, 2d, 1h30m: the library's rule (hk_parse_duration), as
 * the servers' epoch= and lifetime=; 0 or -1 (the caller prints). */
int hkt_parse_duration(const char *s, int64_t *out);
void hkt_fmt_time(int64_t t, char *out, size_t outlen);
int64_t hkt_now(const struct hkt_opts *o);
int hkt_write_new_file(const char *path, const unsigned char *p, size_t len, int mode);
int hkt_read_file(const char *path, unsigned char **out, size_t *len, size_t max);
void hkt_label_copy(char *out, const unsigned char *in, size_t n);

/* objects.c: finding objects and reading attributes */
int hkt_find(struct hkt_conn *c, CK_ATTRIBUTE *tmpl, CK_ULONG n,
             CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found);
int hkt_get_bytes(struct hkt_conn *c, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
                  unsigned char **out, size_t *len);
/* Every generation of the master label, sorted by activation; n may be 0.
 * hkt_masters refuses (error printed) two keys of one generation;
 * hkt_masters_all lists them (status shows them so one can be removed) and
 * hkt_report_duplicate prints that error, returning 1, if there are. */
int hkt_masters(struct hkt_conn *c, hk_master **out, size_t *n);
int hkt_masters_all(struct hkt_conn *c, hk_master **out, size_t *n);
int hkt_report_duplicate(struct hkt_conn *c, const hk_master *m, size_t n, uint32_t *gen);
const hk_master *hkt_master_gen(const hk_master *m, size_t n, uint32_t gen);
int hkt_kcv(struct hkt_conn *c, CK_OBJECT_HANDLE key, unsigned char kcv[HK_CHECK_VALUE_LEN]);
int hkt_destroy(struct hkt_conn *c, CK_OBJECT_HANDLE o, const char *what);

/* pubkey.c: transport public keys and their fingerprints */
int hkt_rsa_fingerprint(const unsigned char *mod, size_t mod_len,
                        const unsigned char *exp, size_t exp_len,
                        unsigned char fp[HKT_FP_LEN]);
int hkt_pubkey_fingerprint(struct hkt_conn *c, CK_OBJECT_HANDLE pub,
                           unsigned char fp[HKT_FP_LEN]);
int hkt_pubkey_write(const char *path, const char *format,
                     const unsigned char *mod, size_t mod_len,
                     const unsigned char *exp, size_t exp_len);
/* Reads PEM or DER SubjectPublicKeyInfo (RSA); malloc'd modulus/exponent. */
int hkt_pubkey_read(const char *path, unsigned char **mod, size_t *mod_len,
                    unsigned char **exp, size_t *exp_len, unsigned char fp[HKT_FP_LEN]);
int hkt_find_transport(struct hkt_conn *c, CK_OBJECT_CLASS cls,
                       const unsigned char fp[HKT_FP_LEN], CK_OBJECT_HANDLE *out);

/* optable.c: the options each command takes (a space-separated list of long
 * option names in main.c's command table, plus the common ones).
 * hkt_check_cmd_opts: 0, or -1 (error printed) for the first of the n seen
 * options the command does not take; hkt_print_cmd_opts: the options part
 * of the command's --help, from the same list. */
struct option;
int hkt_cmd_takes(const char *cmd_opts, const char *name);
int hkt_check_cmd_opts(const char *cmd, const char *cmd_opts, const struct option *lo,
                       const char *const *seen, size_t n);
void hkt_print_cmd_opts(FILE *f, const char *cmd_opts, const struct option *lo);

/* Subcommands: each returns an HKT_EXIT_* code. */
int hkt_cmd_init(struct hkt_opts *o);
int hkt_cmd_create(struct hkt_opts *o);
int hkt_cmd_import_test(struct hkt_opts *o);
int hkt_cmd_rotate(struct hkt_opts *o);
int hkt_cmd_adopt(struct hkt_opts *o);

/* cmd_master.c: the schedule rules for a new generation of an existing
 * master (rotate, adopt).  hkt_rotation_time_ok returns an HKT_EXIT_* code;
 * hkt_next_generation 0 and the generation to take, or -1 (error printed). */
int hkt_rotation_time_ok(const struct hkt_opts *o);
int hkt_next_generation(const struct hkt_opts *o, struct hkt_conn *c, const hk_master *m,
                        size_t n, uint32_t *gen);
int hkt_cmd_transport_keygen(struct hkt_opts *o);
int hkt_cmd_transport_export(struct hkt_opts *o);
int hkt_cmd_trust(struct hkt_opts *o);
int hkt_cmd_wrap(struct hkt_opts *o);
int hkt_cmd_unwrap(struct hkt_opts *o);
int hkt_cmd_seal(struct hkt_opts *o);
int hkt_cmd_destroy(struct hkt_opts *o);
int hkt_cmd_kcv(struct hkt_opts *o);
int hkt_cmd_status(struct hkt_opts *o);

/* cmd_chain.c: the forward-erasable mode (hkt_chain_* return 0 or -1 with
 * the error printed; the commands an HKT_EXIT_* code). */
int hkt_chain_start(struct hkt_conn *c, const struct hkt_opts *o, uint32_t gen,
                    int64_t activation);
int hkt_cmd_kcv_epoch(struct hkt_opts *o);
void hkt_chain_status(struct hkt_conn *c, const struct hkt_opts *o, const hk_master *m, size_t n);
int hkt_chain_destroy_generation(struct hkt_conn *c, uint32_t gen);
int hkt_chain_wrap(struct hkt_conn *c, const struct hkt_opts *o, CK_OBJECT_HANDLE wk,
                   const unsigned char fp[HKT_FP_LEN], uint32_t gen);

#endif /* HKT_TOOL_H */
