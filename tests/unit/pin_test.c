/* pin_test.c - hsmkeys/src/pin.c: PIN files and the checks on them, and the
 * terminal prompt (on a pseudo-terminal this test opens: echo off, and no
 * copy of the PIN left in the process's heap once the secret is freed). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "test.h"
#include "softhsm.h"
#include "p11.h"

/* Child: make the pty slave its controlling terminal, prompt, send the PIN
 * it got back over `out`, free it, then report over `out` whether the tail
 * of that PIN (bytes 20..39: glibc overwrites the first 16 of a freed
 * chunk) is still anywhere in its heap. */
static int ioctl_tty(int fd)
{
    return ioctl(fd, TIOCSCTTY, 0);
}

static void prompt_child(const char *slave, int out)
{
    hk_secret pin;
    char line[512], tail[20];
    unsigned char found = 0;
    int fd;
    setsid();
    fd = open(slave, O_RDWR);
    if (fd < 0 || ioctl_tty(fd) != 0)
        _exit(3);
    if (hk_pin_prompt("PIN: ", &pin) != HSMKEYS_OK)
        _exit(4);
    if (write(out, pin.data, pin.len) != (ssize_t)pin.len || pin.len < 40)
        _exit(5);
    memcpy(tail, pin.data + 20, sizeof tail);
    hk_secret_free(&pin);
    /* read(2), not stdio: a FILE buffer would reuse the freed chunk. */
    static char mapbuf[65536];
    ssize_t got = 0, r;
    int mf = open("/proc/self/maps", O_RDONLY);
    while (mf >= 0 && (r = read(mf, mapbuf + got, sizeof mapbuf - 1 - (size_t)got)) > 0)
        got += r;
    if (mf >= 0)
        close(mf);
    mapbuf[got] = 0;
    for (char *l = mapbuf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        unsigned long lo, hi;
        char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        if (len >= sizeof line)
            continue;
        memcpy(line, l, len);
        line[len] = 0;
        if (!strstr(line, "[heap]") || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
            continue;
        for (unsigned long a = lo; a + sizeof tail <= hi; a++)
            if (memcmp((const void *)a, tail, sizeof tail) == 0)
                found = 1;
    }
    hsmkeys_wipe(tail, sizeof tail);
    if (write(out, &found, 1) != 1)
        _exit(6);
    _exit(0);
}

int main(void)
{
    char dir[] = "/tmp/hsmkeys-pin-XXXXXX", p[300], link[300], big[400];
    hk_secret pin;

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(p, sizeof p, "%s/pin", dir);
    snprintf(link, sizeof link, "%s/pin-link", dir);
    T_CASE("a 0600 file is read; one trailing newline is stripped") {
        t_write_file(p, "1234\n", 0600);
        T_RC(hk_pin_read_file(p, &pin), HSMKEYS_OK);
        T_EQ_INT(pin.len, 4);
        T_EQ_MEM(pin.data, "1234", 4);
        hk_secret_free(&pin);
        T_RC(hk_pin_read_file((snprintf(big, sizeof big, "file:%s", p), big), &pin), HSMKEYS_OK);
        hk_secret_free(&pin);
    }
    T_CASE("group- or world-accessible files are refused with the fix") {
        chmod(p, 0640);
        T_RC(hk_pin_read_file(p, &pin), HSMKEYS_E_PIN);
        T_CONTAINS(hsmkeys_last_error(), "mode 0640");
        T_CONTAINS(hsmkeys_last_error(), "chmod 600");
        chmod(p, 0600);
    }
    T_CASE("symlinks, empty files, directories, programs and missing files are refused") {
        T_EQ_INT(symlink(p, link), 0);
        T_RC(hk_pin_read_file(link, &pin), HSMKEYS_E_PIN);
        T_CONTAINS(hsmkeys_last_error(), "symlinks are refused");
        t_write_file(p, "\n", 0600);
        T_RC(hk_pin_read_file(p, &pin), HSMKEYS_E_PIN);
        T_CONTAINS(hsmkeys_last_error(), "is empty");
        chmod(dir, 0700);
        T_RC(hk_pin_read_file(dir, &pin), HSMKEYS_E_PIN);
        T_RC(hk_pin_read_file("|/bin/echo 1234", &pin), HSMKEYS_E_PIN);
        T_CONTAINS(hsmkeys_last_error(), "programs are not supported");
        T_RC(hk_pin_read_file(NULL, &pin), HSMKEYS_E_PIN);
        T_RC(hk_pin_read_file("/nonexistent/pin", &pin), HSMKEYS_E_PIN);
    }
    T_CASE("an over-long file is refused") {
        memset(big, 'x', 300);
        big[300] = 0;
        t_write_file(p, big, 0600);
        T_RC(hk_pin_read_file(p, &pin), HSMKEYS_E_PIN);
        T_CONTAINS(hsmkeys_last_error(), "longer than");
    }
    T_CASE("the prompt reads the terminal with echo off and leaves no copy in the heap") {
        int mfd = posix_openpt(O_RDWR | O_NOCTTY), pfd[2];
        char want[48], got[64], echo[256];
        unsigned char found = 9;
        ssize_t n = 0, e = 0, r;
        pid_t child;
        T_TRUE(mfd >= 0 && grantpt(mfd) == 0 && unlockpt(mfd) == 0 && pipe(pfd) == 0);
        const char *slave = ptsname(mfd);
        child = fork();
        if (child == 0) {
            close(pfd[0]);
            prompt_child(slave, pfd[1]);
        }
        close(pfd[1]);
        /* The PIN exists only in the parent, made after the fork. */
        snprintf(want, sizeof want, "pin-%08d-0123456789abcdefghijklmnopqrstu", (int)child);
        want[40] = 0;
        usleep(200000); /* let the child turn echo off before typing */
        T_TRUE(write(mfd, want, 40) == 40 && write(mfd, "\n", 1) == 1);
        while (n < 40 && (r = read(pfd[0], got + n, (size_t)(40 - n))) > 0)
            n += r;
        (void)!read(pfd[0], &found, 1);
        waitpid(child, NULL, 0);
        int fl = fcntl(mfd, F_GETFL);
        fcntl(mfd, F_SETFL, fl | O_NONBLOCK);
        while ((r = read(mfd, echo + e, sizeof echo - 1 - (size_t)e)) > 0)
            e += r;
        echo[e] = 0;
        T_EQ_INT(n, 40);
        T_EQ_MEM(got, want, 40);
        T_TRUE(strstr(echo, "PIN: ") != NULL);
        T_TRUE(strstr(echo, want + 20) == NULL); /* not echoed */
        T_EQ_INT(found, 0);
        close(mfd);
        close(pfd[0]);
    }
    unlink(p);
    unlink(link);
    rmdir(dir);
    return t_done();
}
