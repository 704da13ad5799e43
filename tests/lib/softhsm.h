/*
 * softhsm.h - throwaway SoftHSM2 tokens for tests.
 *
 * Every test process gets its own token directory under /tmp with its own
 * softhsm2.conf (SOFTHSM2_CONF is set before the module is initialised), so
 * tests never touch a real token or each other.  Masters imported here come
 * from a known value: for tests only, never for a real fleet.
 */
#ifndef HSMKEYS_TEST_SOFTHSM_H
#define HSMKEYS_TEST_SOFTHSM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define T_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define T_SO_PIN   "so-pin-5678"
#define T_USER_PIN "user-pin-1234"

typedef struct t_hsm {
    char dir[256];   /* temp dir: tokens/, softhsm2.conf, pin files */
    char conf[320];
    char pin_file[320];
    char so_pin_file[320];
} t_hsm;

/* Make the directory and conf and set SOFTHSM2_CONF; 0 on success. */
int t_hsm_setup(t_hsm *h);
/* From the next C_Initialize on, SoftHSM2 starts afresh in a fork child
 * (its object handles numbered anew), as the module behind p11-kit
 * remoting does in each new remote process; 0 on success. */
int t_hsm_reset_on_fork(const t_hsm *h);
void t_hsm_cleanup(t_hsm *h);

/* Initialise a token labelled `label` in the first free slot with the test
 * SO and user PINs.  0 on success; prints why on failure. */
int t_token_init(const char *module, const char *label, const char *so_pin, const char *pin);

typedef struct t_master_opts {
    const char *label;      /* default "hsmkeys-master" */
    uint32_t generation;    /* default 1 */
    int64_t activation;     /* default 0 */
    int not_sensitive;      /* import with CKA_SENSITIVE=FALSE (bad-input tests) */
    int extractable;        /* CKA_EXTRACTABLE=TRUE */
    int wrap_with_trusted;  /* CKA_WRAP_WITH_TRUSTED=TRUE */
    int vendor_id;          /* use a non-hsmkeys CKA_ID (adopted master) */
    int modifiable;         /* CKA_MODIFIABLE=TRUE (else TRUE only if extractable) */
} t_master_opts;

/* The known test master of a seed: SHA-256("hsmkeys test master:" || seed). */
void t_master_from_seed(const char *seed, unsigned char out[32]);

/* Import `value` as a master on token `token` (logged in with `pin`). */
int t_master_import(const char *module, const char *token, const char *pin,
                    const unsigned char *value, size_t len, const t_master_opts *o);

/* Forward-erasable chain (label "hsmkeys-master chain"): the known test
 * state of a seed, SHA-256("hsmkeys test state:" || seed); import it as
 * S(generation, epoch); list the states (sorted by generation, epoch). */
void t_state_from_seed(const char *seed, unsigned char out[32]);
int t_chain_import(const char *module, const char *token, const char *pin,
                   const unsigned char value[32], uint32_t generation, uint64_t epoch);
int t_chain_list(const char *module, const char *token, const char *pin, uint32_t *gens,
                 uint64_t *epochs, size_t max, size_t *n);
/* The nonces of the copies of state (generation, epoch), smallest first;
 * settle them as a server would (chain.c). */
int t_chain_copies(const char *module, const char *token, const char *pin, uint32_t generation,
                   uint64_t epoch, uint64_t *nonces, size_t max, size_t *n);
int t_chain_settle(const char *module, const char *token, const char *pin, uint32_t generation,
                   uint64_t epoch);
/* Finalize and initialize the module in this process (a test's fork child
 * only: it ends every session of the process); 0 on success. */
int t_module_restart(const char *module);

/* Read a PIN file through the library's checks into out (NUL-terminated);
 * 0, or -1 with the reason on stderr prefixed by `who`. */
int t_read_pin(const char *who, const char *path, char *out, size_t len);

/* Write a PIN file with the given mode; 0 on success. */
int t_write_file(const char *path, const char *content, mode_t mode);

/* "pkcs11:token=<token>;object=hsmkeys-master?module-path=...&pin-source=<pin_file>" */
void t_uri(char *out, size_t len, const char *token, const char *pin_file);

#endif

#include <hsmkeys/hsmkeys.h>

/* Before fork() with maintainers running: let each context's maintainer
 * (NULL: none) finish a cycle and go to sleep.  GCC 12's ASan allocator is
 * not fork-safe: a child forked while another thread allocates can hang on
 * the allocator's lock at its first malloc (glibc's malloc is fork-safe, so
 * servers are not affected). */
void t_quiesce(hsmkeys_ctx *a, hsmkeys_ctx *b);
/* Open a context on `token` of this test's SoftHSM2 dir with the test PIN
 * file.  clock_var (may be NULL): the context's clock reads *clock_var.
 * epoch/lifetime may be NULL for defaults.  NULL on failure (printed). */
hsmkeys_ctx *t_open(const t_hsm *h, const char *token, const char *domain,
                    const char *epoch, const char *lifetime, int64_t *clock_var);
/* The same with an explicit URI and clock (fn may be NULL: real time). */
hsmkeys_ctx *t_open_uri(const char *uri, const char *domain, const char *epoch,
                        const char *lifetime, hsmkeys_clock_fn clock, void *clock_arg);
/* The same in the forward-erasable mode when forward_erasable is 1. */
hsmkeys_ctx *t_open_uri_fe(const char *uri, const char *domain, const char *epoch,
                           const char *lifetime, int forward_erasable, hsmkeys_clock_fn clock,
                           void *clock_arg);
/* Set up `dir` + tokens S1 and S2 holding the master of seed "fleet" and S3
 * holding the master of seed "other".  0 on success. */
int t_fleet_setup(t_hsm *h);
