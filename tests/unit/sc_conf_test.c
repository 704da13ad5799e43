/*
 * sc_conf_test.c - engine/sesscache/sc_conf.c: store addresses, options,
 * and the password file rules (mode, one line, size), with their messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "test.h"
#include "sc_conf.h"

static char dir[64];

static const char *file_with(const char *name, const char *content, mode_t mode)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

int main(void)
{
    char err[400], opt[300];
    sc_conf c;

    snprintf(dir, sizeof dir, "/tmp/sc_conf_test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;

    T_CASE("addresses: IPv4, IPv6, default port, unix socket") {
        char a[160];
        sc_conf_init(&c);
        T_EQ_INT(sc_conf_url(&c, "redis://127.0.0.1:6380", err, sizeof err), 0);
        T_EQ_STR(c.host, "127.0.0.1");
        T_EQ_INT(c.port, 6380);
        T_EQ_INT(sc_conf_url(&c, "redis://10.1.2.3", err, sizeof err), 0);
        T_EQ_INT(c.port, 6379);
        T_EQ_INT(sc_conf_url(&c, "redis://[::1]:7000/", err, sizeof err), 0);
        T_EQ_STR(c.host, "::1");
        T_EQ_STR(sc_conf_addr(&c, a, sizeof a), "redis://[::1]:7000");
        T_EQ_INT(sc_conf_url(&c, "unix:/run/redis/redis.sock", err, sizeof err), 0);
        T_EQ_INT(c.unix_socket, 1);
        T_EQ_STR(sc_conf_addr(&c, a, sizeof a), "unix:/run/redis/redis.sock");
        T_EQ_INT(c.timeout_ms, SC_DEFAULT_TIMEOUT_MS);
    }

    T_CASE("bad addresses are refused with what is accepted") {
        sc_conf_init(&c);
        T_EQ_INT(sc_conf_url(&c, "http://127.0.0.1", err, sizeof err), -1);
        T_CONTAINS(err, "expected redis://IP[:PORT] or unix:/PATH");
        T_EQ_INT(sc_conf_url(&c, "redis://cache.example:6379", err, sizeof err), -1);
        T_CONTAINS(err, "is not an IP address");
        T_EQ_INT(sc_conf_url(&c, "redis://127.0.0.1:0", err, sizeof err), -1);
        T_CONTAINS(err, "1..65535");
        T_EQ_INT(sc_conf_url(&c, "redis://127.0.0.1:99999", err, sizeof err), -1);
        T_EQ_INT(sc_conf_url(&c, "redis://127.0.0.1:63x", err, sizeof err), -1);
        T_EQ_INT(sc_conf_url(&c, "redis://:secret@127.0.0.1", err, sizeof err), -1);
        T_CONTAINS(err, "no credentials in the URL");
        T_EQ_INT(sc_conf_url(&c, "redis://[::1", err, sizeof err), -1);
        T_EQ_INT(sc_conf_url(&c, "redis://", err, sizeof err), -1);
        T_EQ_INT(sc_conf_url(&c, "unix:relative.sock", err, sizeof err), -1);
        T_CONTAINS(err, "unix:/absolute/path");
    }

    T_CASE("timeouts: ms and s, bounded to 1ms..10s") {
        sc_conf_init(&c);
        T_EQ_INT(sc_conf_option(&c, "timeout=7ms", err, sizeof err), 0);
        T_EQ_INT(c.timeout_ms, 7);
        T_EQ_INT(sc_conf_option(&c, "connect_timeout=2s", err, sizeof err), 0);
        T_EQ_INT(c.connect_timeout_ms, 2000);
        T_EQ_INT(sc_conf_option(&c, "connect-timeout=3", err, sizeof err), 0);
        T_EQ_INT(c.connect_timeout_ms, 3);
        T_EQ_INT(sc_conf_option(&c, "timeout=0ms", err, sizeof err), -1);
        T_EQ_INT(sc_conf_option(&c, "timeout=11s", err, sizeof err), -1);
        T_CONTAINS(err, "1ms..10s");
        T_EQ_INT(sc_conf_option(&c, "timeout=-5", err, sizeof err), -1);
        T_EQ_INT(sc_conf_option(&c, "timeout=5min", err, sizeof err), -1);
        T_EQ_INT(sc_conf_option(&c, "timeout", err, sizeof err), -1);
        T_CONTAINS(err, "expected name=value");
        T_EQ_INT(sc_conf_option(&c, "db=3", err, sizeof err), -1);
        T_CONTAINS(err, "unknown option");
    }

    T_CASE("password file: 0600, one line, trailing newline dropped, copied and wiped") {
        sc_conf d;
        sc_conf_init(&c);
        snprintf(opt, sizeof opt, "password-file=%s", file_with("pw", "s3cret\n", 0600));
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), 0);
        T_EQ_INT(c.password_len, 6);
        T_EQ_MEM(c.password, "s3cret", 7);
        T_EQ_INT(sc_conf_copy(&d, &c), 0);
        T_TRUE(d.password != c.password);
        T_EQ_MEM(d.password, "s3cret", 7);
        sc_conf_clear(&c);
        T_TRUE(c.password == NULL && c.password_len == 0);
        sc_conf_clear(&d);
    }

    T_CASE("password file: refused when readable by others, empty, two lines, missing, too long") {
        char big[SC_PASSWORD_MAX + 10];
        sc_conf_init(&c);
        snprintf(opt, sizeof opt, "password_file=%s", file_with("open", "pw\n", 0644));
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), -1);
        T_CONTAINS(err, "readable by group or others (mode 0644); chmod 600");
        T_TRUE(strstr(err, "pw\n") == NULL);
        snprintf(opt, sizeof opt, "password-file=%s", file_with("empty", "\n", 0600));
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), -1);
        T_CONTAINS(err, "one line");
        snprintf(opt, sizeof opt, "password-file=%s", file_with("two", "a\nb\n", 0600));
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), -1);
        T_CONTAINS(err, "one line");
        T_TRUE(strstr(err, "a\nb") == NULL);
        snprintf(opt, sizeof opt, "password-file=%s/absent", dir);
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), -1);
        T_CONTAINS(err, "No such file");
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        snprintf(opt, sizeof opt, "password-file=%s", file_with("big", big, 0600));
        T_EQ_INT(sc_conf_option(&c, opt, err, sizeof err), -1);
        T_CONTAINS(err, "longer than");
        T_TRUE(c.password == NULL);
    }

    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return t_done();
}
