/*
 * t-procscan.c - test helper: count the ticket keys of a fleet found in the
 * memory of other processes (a server's master, its workers).
 *
 *   t-procscan URI DOMAIN EPOCH LIFETIME PID...
 *       opens its own context on the token (same master, domain and
 *       schedule as the servers), takes the AES and HMAC keys of every epoch
 *       of the window around now (current - window - 1 .. current + 1), and
 *       prints "PID HITS" for each PID: how many of those keys occur in the
 *       process's writable private memory (/proc/PID/maps, /proc/PID/mem;
 *       needs root or ptrace rights).  Exit 0, or 2 on a usage or set-up
 *       error.
 *
 * Threat it lets the suites show absent: key bytes held by a process that
 * serves nothing (nginx's master, Apache's parent) after hsmkeys_forget.  A
 * worker of the same server is the positive control.  The needles are kept
 * masked (each byte XOR 0xA5) while scanning, so this process's own copies
 * are not what it counts; the keys are wiped before exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys.h>

#define MASK 0xA5
#define MAX_NEEDLES 64
#define CHUNK (1UL << 20)

typedef struct needle {
    unsigned char m[HSMKEYS_AES_KEY_LEN]; /* masked */
} needle;

static int count_in(const unsigned char *p, size_t n, const needle *nd, int nn)
{
    int hits = 0;
    for (size_t i = 0; i + HSMKEYS_AES_KEY_LEN <= n; i++)
        for (int k = 0; k < nn; k++) {
            size_t j = 0;
            while (j < HSMKEYS_AES_KEY_LEN && (unsigned char)(p[i + j] ^ MASK) == nd[k].m[j])
                j++;
            if (j == HSMKEYS_AES_KEY_LEN)
                hits++;
        }
    return hits;
}

static int scan_pid(long pid, const needle *nd, int nn)
{
    char path[64], line[512];
    unsigned char *buf = malloc(CHUNK + HSMKEYS_AES_KEY_LEN);
    FILE *maps;
    int fd, hits = 0;

    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    maps = fopen(path, "r");
    snprintf(path, sizeof path, "/proc/%ld/mem", pid);
    fd = open(path, O_RDONLY);
    if (!buf || !maps || fd < 0) {
        fprintf(stderr, "t-procscan: pid %ld: %s\n", pid, strerror(errno));
        if (maps)
            fclose(maps);
        if (fd >= 0)
            close(fd);
        free(buf);
        return -1;
    }
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
            continue;
        for (unsigned long at = lo; at < hi;) {
            size_t want = hi - at > CHUNK + HSMKEYS_AES_KEY_LEN ? CHUNK + HSMKEYS_AES_KEY_LEN : hi - at;
            ssize_t got = pread(fd, buf, want, (off_t)at);
            if (got <= 0)
                break;
            hits += count_in(buf, (size_t)got, nd, nn);
            if ((size_t)got < want || at + (size_t)got >= hi)
                break;
            at += CHUNK; /* chunks overlap by one key length */
        }
    }
    hsmkeys_wipe(buf, CHUNK + HSMKEYS_AES_KEY_LEN);
    free(buf);
    fclose(maps);
    close(fd);
    return hits;
}

int main(int argc, char **argv)
{
    hsmkeys_config *cfg = NULL;
    hsmkeys_ctx *ctx = NULL;
    needle nd[MAX_NEEDLES];
    unsigned char name[HSMKEYS_KEY_NAME_LEN], aes[HSMKEYS_AES_KEY_LEN], hmac[HSMKEYS_HMAC_KEY_LEN];
    int nn = 0, rc;
    uint64_t e, w;

    if (argc < 6) {
        fprintf(stderr, "usage: t-procscan URI DOMAIN EPOCH LIFETIME PID...\n");
        return 2;
    }
    if (hsmkeys_config_new(&cfg) != HSMKEYS_OK || hsmkeys_config_set(cfg, "uri", argv[1]) ||
        hsmkeys_config_set(cfg, "domain", argv[2]) || hsmkeys_config_set(cfg, "epoch", argv[3]) ||
        hsmkeys_config_set(cfg, "lifetime", argv[4]) || (rc = hsmkeys_open(cfg, &ctx)) != HSMKEYS_OK) {
        fprintf(stderr, "t-procscan: %s\n", hsmkeys_last_error());
        hsmkeys_config_free(cfg);
        return 2;
    }
    hsmkeys_config_free(cfg);
    e = hsmkeys_current_epoch(ctx);
    w = hsmkeys_window_past(ctx);
    for (uint64_t x = e - w; x <= e + 1 && nn + 2 <= MAX_NEEDLES; x++) {
        if (hsmkeys_epoch_key(ctx, x, name, aes, hmac) != HSMKEYS_OK)
            continue;
        for (int i = 0; i < HSMKEYS_AES_KEY_LEN; i++) {
            nd[nn].m[i] = aes[i] ^ MASK;
            nd[nn + 1].m[i] = hmac[i] ^ MASK;
        }
        nn += 2;
    }
    hsmkeys_wipe(aes, sizeof aes);
    hsmkeys_wipe(hmac, sizeof hmac);
    hsmkeys_close(ctx);
    if (nn == 0) {
        fprintf(stderr, "t-procscan: no epoch key: %s\n", hsmkeys_last_error());
        return 2;
    }
    for (int i = 5; i < argc; i++)
        printf("%s %d\n", argv[i], scan_pid(strtol(argv[i], NULL, 10), nd, nn));
    hsmkeys_wipe(nd, sizeof nd);
    return 0;
}
