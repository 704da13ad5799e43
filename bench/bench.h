/*
 * bench.h - shared pieces of hsmkeys-bench, the in-process benchmark driver
 * (items 1-4 and 7 of docs/BENCHMARKS.md): timers, statistics, result rows,
 * contexts on throwaway SoftHSM2 tokens with an injectable clock, and a
 * resumed-handshake loop over memory BIOs (tests/lib/tls.c).
 *
 * Output contract: every figure is one line
 *   ROW|<section>|<label>|<min>|<median>|<max>|<unit>
 * on stdout; bench/run.sh collects them into the table.  Nothing printed
 * contains key bytes or PINs.
 */
#ifndef HSMKEYS_BENCH_H
#define HSMKEYS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <hsmkeys/hsmkeys.h>
#include "softhsm.h"

/* ---- time and statistics (stats.c) ---- */
int64_t b_cpu_ns(void);   /* process CPU time */
int64_t b_mono_ns(void);  /* monotonic wall time */
int64_t b_real_ns(void);  /* CLOCK_REALTIME */
void b_sort(double *v, size_t n);
/* Value at quantile q in [0, 1] of sorted v (nearest rank). */
double b_quantile(const double *sorted, size_t n, double q);
/* Print one ROW line with min/median/max of v (sorts v). */
void b_row(const char *section, const char *label, double *v, size_t n, const char *unit);
void b_row1(const char *section, const char *label, double value, const char *unit);

/* ---- contexts (setup.c) ---- */
/* The injected clock: unix seconds = (realtime + b_clock_offset_ns) / 1e9
 * when b_clock_follow is set, else b_clock_fixed. */
extern volatile int64_t b_clock_fixed;
extern volatile int64_t b_clock_offset_ns;
extern volatile int b_clock_follow;

/* Open a context on `uri` with the bench clock; epoch/lifetime may be NULL.
 * NULL on failure (printed). */
hsmkeys_ctx *b_open_uri(const char *uri, const char *domain, const char *epoch,
                        const char *lifetime);
/* The same in the forward-erasable mode when forward_erasable is 1. */
hsmkeys_ctx *b_open_uri_fe(const char *uri, const char *domain, const char *epoch,
                           const char *lifetime, int forward_erasable);
/* Same on token `token` of the fleet dir made by t_fleet_setup. */
hsmkeys_ctx *b_open(const t_hsm *h, const char *token, const char *epoch, const char *lifetime);
uint64_t b_token_calls(const hsmkeys_ctx *hk);
/* A TLS server context of `version` (key "EC" or "RSA"), hsmkeys attached
 * if hk is not NULL, else OpenSSL's built-in ticket keys. Aborts on error. */
SSL_CTX *b_server(int version, const char *key_type, hsmkeys_ctx *hk);

/* ---- handshakes (loop.c) ---- */
typedef struct b_client {
    SSL_CTX *ctx;
    SSL_SESSION *offer;   /* newest session, offered on the next connection */
    uint64_t tickets;     /* new-session tickets received */
} b_client;

int b_client_init(b_client *c, int version);
void b_client_free(b_client *c);
/* One handshake against `server`; offer the newest session if `resume`.
 * Returns 1 resumed, 0 full, -1 failed. */
int b_connect(b_client *c, SSL_CTX *server, int resume);
/* Resumed handshakes against servers[i % nservers] until `cpu_ns` of CPU
 * time passed.  Returns handshakes per CPU second, or -1 if one failed or
 * did not resume.  *tickets_per_hs (may be NULL): tickets received per
 * handshake. */
double b_resume_rate(b_client *c, SSL_CTX **servers, int nservers, int64_t cpu_ns,
                     double *tickets_per_hs);
/* The same, adding to *handshakes and *spent_ns; 0 or -1. */
int b_resume_batch(b_client *c, SSL_CTX **servers, int nservers, int64_t cpu_ns,
                   uint64_t *handshakes, int64_t *spent_ns);
/* Full handshakes (no ticket offered) until `cpu_ns`; handshakes per CPU s. */
double b_full_rate(b_client *c, SSL_CTX *server, int64_t cpu_ns);

/* ---- items ---- */
int bench_resume(int runs);                    /* item 1 */
int bench_full(int runs);                      /* item 2 */
int bench_erasable(int runs);                  /* item 9 */
int bench_calls(long handshakes, const char *uri, const char *label); /* item 3 */
int bench_boundary(int runs);                  /* item 4 */
int bench_cg(const char *mode, int n);         /* item 7 driver */
int bench_sesscache(int runs, const char *url, const char *pwfile, int redis_pid); /* item 8 */

/* Token-held TLS keys through libp11's engine (engine_key.c). */
int b_token_tls_keys(const char *token);
SSL_CTX *b_engine_server(int version, const char *key_type, const char *token,
                         const char *pin_file, hsmkeys_ctx *hk);

#endif
