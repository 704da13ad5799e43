/*
 * modcheck.c - module-independent checks for the helpers of tests/modules
 * (see modcheck.h).  The published vectors are derived through
 * hsmkeys_open + hsmkeys_epoch_key with the clock set to each vector's
 * epoch; the bench measures one token derivation per sample (counted in
 * hsmkeys_get_stats, so a cached epoch is never timed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "modcheck.h"
#include "test.h"

static int64_t clock_read(void *arg) { return *(const int64_t *)arg; }
static void quiet_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= HSMKEYS_LOG_WARNING)
        fprintf(stderr, "# hsmkeys log: %s\n", msg);
}

hsmkeys_ctx *mc_open(const char *uri, const char *module_args, const char *domain,
                     const char *epoch, const char *lifetime, int64_t *clock, int *rc)
{
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    *rc = hsmkeys_config_new(&c);
    if (*rc == HSMKEYS_OK) *rc = hsmkeys_config_set(c, "uri", uri);
    if (*rc == HSMKEYS_OK) *rc = hsmkeys_config_set(c, "domain", domain);
    if (*rc == HSMKEYS_OK && module_args) *rc = hsmkeys_config_set(c, "module-args", module_args);
    if (*rc == HSMKEYS_OK && epoch) *rc = hsmkeys_config_set(c, "epoch", epoch);
    if (*rc == HSMKEYS_OK && lifetime) *rc = hsmkeys_config_set(c, "lifetime", lifetime);
    if (*rc == HSMKEYS_OK) {
        hsmkeys_config_set_log(c, quiet_log, NULL);
        if (clock)
            hsmkeys_config_set_clock(c, clock_read, clock);
        *rc = hsmkeys_open(c, &ctx);
    }
    hsmkeys_config_free(c);
    return *rc == HSMKEYS_OK ? ctx : NULL;
}

/* ---- published vectors ------------------------------------------------------- */

struct vec {
    char seed[32], domain[64];
    uint64_t epoch;
    unsigned char name[16], aes[32], hmac[32];
};

static int check_vector(const char *uri, const char *args, const struct vec *v)
{
    unsigned char n[16], aes[32], mac[32];
    int64_t clock = (int64_t)(v->epoch * 3600);
    int rc, ok;
    hsmkeys_ctx *ctx = mc_open(uri, args, v->domain, NULL, NULL, &clock, &rc);
    if (ctx == NULL) {
        printf("vector domain=%s epoch=%llu open failed: %s\n", v->domain,
               (unsigned long long)v->epoch, hsmkeys_last_error());
        return 0;
    }
    rc = hsmkeys_epoch_key(ctx, v->epoch, n, aes, mac);
    ok = rc == HSMKEYS_OK && !memcmp(n, v->name, 16) && !memcmp(aes, v->aes, 32) &&
         !memcmp(mac, v->hmac, 32);
    printf("vector domain=%s epoch=%llu %s%s%s%s\n", v->domain, (unsigned long long)v->epoch,
           ok ? "ok" : "MISMATCH", rc != HSMKEYS_OK ? " (no key)" : "",
           rc == HSMKEYS_OK && memcmp(aes, v->aes, 32) ? " aes" : "",
           rc == HSMKEYS_OK && memcmp(mac, v->hmac, 32) ? " hmac" : "");
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(mac, sizeof mac);
    hsmkeys_close(ctx);
    return ok;
}

int mc_vectors(const char *uri, const char *module_args, const char *file, const char *seed)
{
    FILE *f = fopen(file, "r");
    char line[300], key[32], val[200];
    struct vec v;
    int checked = 0, good = 0;
    if (f == NULL) {
        perror(file);
        return 1;
    }
    memset(&v, 0, sizeof v);
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%31s = %199s", key, val) != 2)
            continue;
        if (!strcmp(key, "seed")) snprintf(v.seed, sizeof v.seed, "%.31s", val);
        else if (!strcmp(key, "domain")) snprintf(v.domain, sizeof v.domain, "%.63s", val);
        else if (!strcmp(key, "epoch")) v.epoch = strtoull(val, NULL, 10);
        else if (!strcmp(key, "name")) t_unhex(val, v.name, 16);
        else if (!strcmp(key, "aes")) t_unhex(val, v.aes, 32);
        else if (!strcmp(key, "hmac")) t_unhex(val, v.hmac, 32);
        else if (!strcmp(key, "kcv")) {
            if (!strcmp(v.seed, seed)) {
                checked++;
                good += check_vector(uri, module_args, &v);
            }
            memset(&v, 0, sizeof v);
        }
    }
    fclose(f);
    printf("vectors=%d/%d\n", good, checked);
    return checked > 0 && good == checked ? 0 : 1;
}

/* ---- derivation cost -------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int mc_bench(const char *what, const char *uri, const char *args, int n)
{
    int64_t clock = 1700000000;
    int rc, i, used = 0;
    double *t;
    unsigned char name[16], aes[32], mac[32];
    hsmkeys_stats s0, s1, start, end;
    hsmkeys_ctx *ctx;
    if (n > 300)
        n = 300;
    t = calloc((size_t)n, sizeof *t);
    /* 1 s epochs, 1 s lifetime, a clock the test moves: each step asks for
     * the new next epoch, which the maintainer derives (one derivation) */
    ctx = mc_open(uri, args, "www.example.com", "1s", "1s", &clock, &rc);
    if (ctx == NULL || t == NULL) {
        printf("bench %s: open failed: %s\n", what, hsmkeys_last_error());
        free(t);
        hsmkeys_close(ctx);
        return 0;
    }
    hsmkeys_get_stats(ctx, &start);
    for (i = 0; i < n; i++) {
        hsmkeys_get_stats(ctx, &s0);
        clock++;
        double a = now_us();
        rc = hsmkeys_epoch_key(ctx, (uint64_t)clock + 1, name, aes, mac);
        double b = now_us();
        hsmkeys_get_stats(ctx, &s1);
        if (rc == HSMKEYS_OK && s1.token_derivations - s0.token_derivations == 1)
            t[used++] = b - a;
    }
    hsmkeys_get_stats(ctx, &end);
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(mac, sizeof mac);
    qsort(t, (size_t)used, sizeof *t, cmp_double);
    if (used > 0)
        printf("bench %s samples=%d median_us=%.1f p10_us=%.1f p90_us=%.1f token_calls_per_epoch=%.1f\n",
               what, used, t[used / 2], t[used / 10], t[used * 9 / 10],
               (double)(end.token_calls - start.token_calls) / used);
    free(t);
    hsmkeys_close(ctx);
    return used == n;
}
