/*
 * pin.c - reading PINs from pin-source files or a terminal prompt.
 *
 * Threat: a PIN leaking through a file others can read, a symlink swapped in
 * by another user, or a buffer left in memory.  Files must be regular, not
 * symlinks, owned by the caller or root (any owner when the caller is
 * root), and not accessible by group or others.  The PIN goes straight into locked memory; the read buffer is
 * wiped on every path.  The prompt reads the terminal with read(2) and echo
 * off, never through stdio (whose buffer would outlive the call).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include "p11.h"

#define HK_PIN_MAX 256

static int pin_from_buffer(char *buf, size_t n, hk_secret *pin, const char *what)
{
    int rc;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        hsmkeys_wipe(buf, HK_PIN_MAX + 1);
        return hk_fail(HSMKEYS_E_PIN, "%s is empty: write the token's user PIN into it", what);
    }
    rc = hk_secret_alloc(pin, n + 1);
    if (rc == HSMKEYS_OK) {
        memcpy(pin->data, buf, n);
        pin->len = n;
    }
    hsmkeys_wipe(buf, HK_PIN_MAX + 1);
    return rc;
}

int hk_pin_read_file(const char *source, hk_secret *pin)
{
    char buf[HK_PIN_MAX + 1];
    const char *path = source;
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd;

    memset(pin, 0, sizeof *pin);
    if (source == NULL || *source == '\0')
        return hk_fail(HSMKEYS_E_PIN, "no PIN source: add pin-source=<file> to the URI "
                       "or set the pin-source option");
    if (strncmp(path, "file:", 5) == 0)
        path += 5;
    if (*path == '|')
        return hk_fail(HSMKEYS_E_PIN, "pin-source \"%s\": programs are not supported; "
                       "use a file readable only by the server's user (mode 0600)", source);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hk_fail(HSMKEYS_E_PIN, "cannot open PIN file %s: %s%s", path, strerror(errno),
                       errno == ELOOP ? " (symlinks are refused: name the file itself)" : "");
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hk_fail(HSMKEYS_E_PIN, "PIN file %s is not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return hk_fail(HSMKEYS_E_PIN, "PIN file %s is accessible by group or others "
                       "(mode %04o): run chmod 600 %s", path,
                       (unsigned)(st.st_mode & 07777), path);
    }
    /* Root reads any file anyway; other users only their own or root's
     * (so nobody else can swap the PIN under them). */
    if (geteuid() != 0 && st.st_uid != geteuid() && st.st_uid != 0) {
        close(fd);
        return hk_fail(HSMKEYS_E_PIN, "PIN file %s belongs to uid %u, not to this "
                       "process (uid %u) or root: chown it", path,
                       (unsigned)st.st_uid, (unsigned)geteuid());
    }
    while (got < sizeof buf) {
        n = read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            hsmkeys_wipe(buf, sizeof buf);
            return hk_fail(HSMKEYS_E_PIN, "cannot read PIN file %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got > HK_PIN_MAX) {
        hsmkeys_wipe(buf, sizeof buf);
        return hk_fail(HSMKEYS_E_PIN, "PIN file %s is longer than %d bytes: it must "
                       "hold only the PIN", path, HK_PIN_MAX);
    }
    return pin_from_buffer(buf, got, pin, path);
}

int hk_pin_prompt(const char *prompt, hk_secret *pin)
{
    char buf[HK_PIN_MAX + 1];
    struct termios old, quiet;
    size_t got = 0;
    ssize_t n;
    char c;
    int fd, have_termios, too_long = 0;

    /* read(2) on the terminal itself, one byte at a time: no stdio FILE
     * buffer, which would keep a copy of the PIN in freed heap memory. */
    memset(pin, 0, sizeof *pin);
    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return hk_fail(HSMKEYS_E_PIN, "no terminal to ask for the PIN: give a PIN "
                       "file with --pin-source (mode 0600)");
    have_termios = tcgetattr(fd, &old) == 0;
    if (have_termios) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        (void)tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    (void)!write(fd, prompt, strlen(prompt));
    memset(buf, 0, sizeof buf);
    for (;;) {
        n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n' || c == '\r')
            break;
        if (got < HK_PIN_MAX)
            buf[got++] = c;
        else
            too_long = 1;
    }
    c = 0;
    if (have_termios)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    (void)!write(fd, "\n", 1);
    close(fd);
    if (too_long) {
        hsmkeys_wipe(buf, sizeof buf);
        return hk_fail(HSMKEYS_E_PIN, "the PIN entered is longer than %d bytes", HK_PIN_MAX);
    }
    return pin_from_buffer(buf, got, pin, "the PIN entered");
}
