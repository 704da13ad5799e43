/*
 * sc_conf.c - parse the session cache store's address and options.  See
 * sc_conf.h.  Every message says what is wrong and what is accepted; none
 * carries the password.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <hsmkeys/hsmkeys.h>

#include "sc_conf.h"

void sc_conf_init(sc_conf *c)
{
    memset(c, 0, sizeof *c);
    c->port = 6379;
    c->timeout_ms = SC_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = SC_DEFAULT_TIMEOUT_MS;
}

int sc_conf_url(sc_conf *c, const char *url, char *err, size_t errlen)
{
    const char *h, *end, *colon;
    unsigned char buf[16];
    size_t hl;

    if (strncmp(url, "unix:", 5) == 0) {
        const char *p = url + 5;
        if (p[0] != '/' || strlen(p) >= sizeof c->path) {
            snprintf(err, errlen, "\"%s\": a unix socket is unix:/absolute/path "
                     "(at most %zu bytes)", url, sizeof c->path - 1);
            return -1;
        }
        c->unix_socket = 1;
        strcpy(c->path, p);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "\"%s\": expected redis://IP[:PORT] or unix:/PATH", url);
        return -1;
    }
    h = url + 8;
    c->port = 6379;
    if (*h == '[') {
        end = strchr(h, ']');
        if (end == NULL) {
            snprintf(err, errlen, "\"%s\": unterminated [IPv6] address", url);
            return -1;
        }
        h++;
        hl = (size_t)(end - h);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && end[1] != ':' && strcmp(end + 1, "/") != 0) {
            snprintf(err, errlen, "\"%s\": unexpected text after the address", url);
            return -1;
        }
    } else {
        colon = strchr(h, ':');
        hl = colon != NULL ? (size_t)(colon - h) : strcspn(h, "/");
    }
    if (strchr(h, '@') != NULL) {
        snprintf(err, errlen, "\"%s\": no credentials in the URL; use "
                 "password-file=PATH (a file readable by its owner only)", url);
        return -1;
    }
    if (hl == 0 || hl >= sizeof c->host) {
        snprintf(err, errlen, "\"%s\": no host address", url);
        return -1;
    }
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    if (inet_pton(AF_INET, c->host, buf) != 1 && inet_pton(AF_INET6, c->host, buf) != 1) {
        snprintf(err, errlen, "\"%s\": \"%s\" is not an IP address; use one (a "
                 "host name would be resolved inside handshakes)", url, c->host);
        return -1;
    }
    if (colon != NULL) {
        char *e = NULL;
        long p;
        errno = 0;
        p = strtol(colon + 1, &e, 10);
        if (errno != 0 || e == colon + 1 || (*e != '\0' && strcmp(e, "/") != 0) ||
            p < 1 || p > 65535) {
            snprintf(err, errlen, "\"%s\": the port must be a number 1..65535", url);
            return -1;
        }
        c->port = (int)p;
    } else if (h[hl] != '\0' && strcmp(h + hl, "/") != 0) {
        snprintf(err, errlen, "\"%s\": unexpected text after the address", url);
        return -1;
    }
    c->unix_socket = 0;
    return 0;
}

static int parse_ms(const char *v, unsigned *out)
{
    char *e = NULL;
    unsigned long n;

    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    n = strtoul(v, &e, 10);
    if (errno != 0)
        return -1;
    if (strcmp(e, "s") == 0)
        n *= 1000;
    else if (*e != '\0' && strcmp(e, "ms") != 0)
        return -1;
    if (n < 1 || n > SC_MAX_TIMEOUT_MS)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int read_password(sc_conf *c, const char *path, char *err, size_t errlen)
{
    char buf[SC_PASSWORD_MAX + 2];
    struct stat st;
    ssize_t n;
    size_t len;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "password-file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "password-file \"%s\": not a regular file", path);
        return -1;
    }
    if (st.st_mode & 077) {
        close(fd);
        snprintf(err, errlen, "password-file \"%s\" is readable by group or "
                 "others (mode %04o); chmod 600 it", path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "password-file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    len = (size_t)n;
    if (len > SC_PASSWORD_MAX + 1) {
        hsmkeys_wipe(buf, sizeof buf);
        snprintf(err, errlen, "password-file \"%s\": longer than %d bytes", path, SC_PASSWORD_MAX);
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0 || memchr(buf, '\n', len) != NULL) {
        hsmkeys_wipe(buf, sizeof buf);
        snprintf(err, errlen, "password-file \"%s\": expected the password on "
                 "one line", path);
        return -1;
    }
    sc_conf_clear(c);
    c->password = malloc(len + 1);
    if (c->password == NULL) {
        hsmkeys_wipe(buf, sizeof buf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(c->password, buf, len);
    c->password[len] = '\0';
    c->password_len = len;
    hsmkeys_wipe(buf, sizeof buf);
    return 0;
}

int sc_conf_option(sc_conf *c, const char *opt, char *err, size_t errlen)
{
    const char *eq = strchr(opt, '=');
    size_t nl = eq != NULL ? (size_t)(eq - opt) : strlen(opt);
    const char *v = eq != NULL ? eq + 1 : "";

#define IS(name) (nl == strlen(name) && strncmp(opt, name, nl) == 0)
    if (eq == NULL || *v == '\0') {
        snprintf(err, errlen, "\"%s\": expected name=value", opt);
        return -1;
    }
    if (IS("password-file") || IS("password_file"))
        return read_password(c, v, err, errlen);
    if (IS("timeout") || IS("connect-timeout") || IS("connect_timeout")) {
        unsigned ms;
        if (parse_ms(v, &ms) != 0) {
            snprintf(err, errlen, "\"%s\": a duration of 1ms..10s is expected, "
                     "e.g. 5ms", opt);
            return -1;
        }
        if (IS("timeout"))
            c->timeout_ms = ms;
        else
            c->connect_timeout_ms = ms;
        return 0;
    }
#undef IS
    snprintf(err, errlen, "\"%.*s\": unknown option; known: password-file=, "
             "timeout=, connect-timeout=", (int)nl, opt);
    return -1;
}

int sc_conf_copy(sc_conf *dst, const sc_conf *src)
{
    *dst = *src;
    dst->password = NULL;
    if (src->password != NULL) {
        dst->password = malloc(src->password_len + 1);
        if (dst->password == NULL)
            return -1;
        memcpy(dst->password, src->password, src->password_len + 1);
    }
    return 0;
}

void sc_conf_clear(sc_conf *c)
{
    if (c->password != NULL) {
        hsmkeys_wipe(c->password, c->password_len);
        free(c->password);
    }
    c->password = NULL;
    c->password_len = 0;
}

const char *sc_conf_addr(const sc_conf *c, char *buf, size_t buflen)
{
    if (c->unix_socket)
        snprintf(buf, buflen, "unix:%s", c->path);
    else if (strchr(c->host, ':') != NULL)
        snprintf(buf, buflen, "redis://[%s]:%d", c->host, c->port);
    else
        snprintf(buf, buflen, "redis://%s:%d", c->host, c->port);
    return buf;
}
