/*
 * util.c - small helpers of hsmkeys-tool: messages, hex, times, files.
 *
 * Owns: message format ("hsmkeys-tool: ..." on stderr), time and duration
 * parsing, and file creation.  Threat: an output file that already exists
 * could be a symlink planted to make the tool overwrite something else, so
 * new files are created with O_EXCL|O_NOFOLLOW and never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "tool.h"

void hkt_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hsmkeys-tool: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void hkt_err_lib(const char *what)
{
    const char *m = hsmkeys_last_error();
    hkt_err("%s: %s", what, m && *m ? m : "failed");
}

void hkt_warn_cb(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "hsmkeys-tool: warning: %s\n", msg);
}

void hkt_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

void hkt_hex(char *out, const unsigned char *p, size_t len)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * len] = 0;
}

static int nib(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Accepts "0a1b..." and "0a:1b:..."/"0a 1b" separators.  0 or -1. */
int hkt_unhex(const char *s, unsigned char *out, size_t len)
{
    size_t n = 0;
    while (*s) {
        if (*s == ':' || *s == ' ' || *s == '-') { s++; continue; }
        int a = nib(s[0]), b = s[1] ? nib(s[1]) : -1;
        if (a < 0 || b < 0 || n >= len)
            return -1;
        out[n++] = (unsigned char)(a << 4 | b);
        s += 2;
    }
    return n == len ? 0 : -1;
}

int hkt_parse_time(const char *s, int64_t *out)
{
    char *end;
    if (*s == '@')
        s++;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && !errno && v >= 0) {
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int hkt_parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    int64_t mul = 1;
    if (*end) {
        if (end[1])
            return -1;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return -1;
        }
    }
    if (v > INT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

void hkt_fmt_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, outlen, "%lld", (long long)t);
}

int64_t hkt_now(const struct hkt_opts *o)
{
    return o->now >= 0 ? o->now : (int64_t)time(NULL);
}

int hkt_write_new_file(const char *path, const unsigned char *p, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            hkt_err("%s exists: refusing to overwrite it; move it away or pick another --out", path);
        else
            hkt_err("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            hkt_err("cannot write %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        hkt_err("cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int hkt_read_file(const char *path, unsigned char **out, size_t *len, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hkt_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        hkt_err("%s: not a regular file of at most %zu bytes", path, max);
        close(fd);
        return -1;
    }
    unsigned char *buf = malloc(max + 1);
    if (!buf) {
        close(fd);
        hkt_err("out of memory");
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            hkt_err("cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            hkt_err("%s: larger than %zu bytes", path, max);
            free(buf);
            close(fd);
            return -1;
        }
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

/* PKCS#11 labels are blank-padded, not NUL-terminated. */
void hkt_label_copy(char *out, const unsigned char *in, size_t n)
{
    memcpy(out, in, n);
    out[n] = 0;
    for (size_t i = n; i > 0 && out[i - 1] == ' '; i--)
        out[i - 1] = 0;
}
