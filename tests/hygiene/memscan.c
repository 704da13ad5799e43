/*
 * memscan.c - scan this process's memory for a (masked) secret (memscan.h).
 *
 * Threat it lets tests show absent: key bytes left in swappable or dumpable
 * memory, or left behind after expiry or close.  Reads memory directly (the
 * scan must not copy what it scans), so it is exempt from ASan/TSan: it
 * reads redzones and other threads' memory on purpose.
 */
#include "memscan.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HY_MAX_MAPPING (512UL << 20)

__attribute__((no_sanitize_address, no_sanitize_thread, noinline))
static int hy_count(const volatile unsigned char *p, size_t n,
                    const unsigned char *masked, size_t len)
{
    int hits = 0;
    unsigned char first = (unsigned char)(masked[0] ^ HY_MASK);
    for (size_t i = 0; i + len <= n; i++) {
        if (p[i] != first)
            continue;
        size_t j = 1;
        while (j < len && (unsigned char)(p[i + j] ^ HY_MASK) == masked[j])
            j++;
        if (j == len)
            hits++;
    }
    return hits;
}

struct hy_map {
    uintptr_t lo, hi;
    char perms[8];
    char path[256];
    long rss_kb;
    int locked, nodump;
};

static void hy_visit(struct hy_map *m, const unsigned char *masked, size_t len, hy_hits *out)
{
    int n;
    if (m->perms[0] != 'r' || m->rss_kb == 0 || m->hi - m->lo > HY_MAX_MAPPING)
        return;
    if (!strcmp(m->path, "[vvar]") || !strcmp(m->path, "[vsyscall]") || !strcmp(m->path, "[vdso]"))
        return;
    if (m->path[0] == '/' && m->perms[1] != 'w')
        return; /* read-only file text: no secrets, and may be truncated (SIGBUS) */
    n = hy_count((const volatile unsigned char *)m->lo, m->hi - m->lo, masked, len);
    if (n == 0)
        return;
    out->total += n;
    if (m->nodump)
        out->nodump += n;
    if (m->locked && m->nodump) {
        out->protected_ += n;
    } else {
        size_t l = strlen(out->where);
        snprintf(out->where + l, sizeof out->where - l, "%s%d in %lx-%lx %s %s (lo=%d dd=%d)",
                 l ? "; " : "", n, (unsigned long)m->lo, (unsigned long)m->hi, m->perms,
                 m->path[0] ? m->path : "[anon]", m->locked, m->nodump);
    }
}

int hy_scan(const unsigned char *masked, size_t len, hy_hits *out)
{
    FILE *fp = fopen("/proc/self/smaps", "r");
    char line[512];
    struct hy_map m;
    int have = 0;

    memset(out, 0, sizeof *out);
    if (!fp)
        return -1;
    /* Read the whole description first: scanning while reading would
     * scan stdio's own buffer. */
    static struct hy_map maps[4096];
    size_t nmaps = 0;
    while (fgets(line, sizeof line, fp)) {
        unsigned long lo, hi;
        char perms[8] = "", path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) >= 3 &&
            strchr(line, '-') < strchr(line, ' ')) {
            if (have && nmaps < 4096)
                maps[nmaps++] = m;
            memset(&m, 0, sizeof m);
            m.lo = lo;
            m.hi = hi;
            snprintf(m.perms, sizeof m.perms, "%s", perms);
            snprintf(m.path, sizeof m.path, "%s", path);
            have = 1;
        } else if (!strncmp(line, "Rss:", 4)) {
            m.rss_kb = strtol(line + 4, NULL, 10);
        } else if (!strncmp(line, "VmFlags:", 8)) {
            m.locked = strstr(line, " lo") != NULL;
            m.nodump = strstr(line, " dd") != NULL;
        }
    }
    if (have && nmaps < 4096)
        maps[nmaps++] = m;
    fclose(fp);
    for (size_t i = 0; i < nmaps; i++)
        hy_visit(&maps[i], masked, len, out);
    return 0;
}
