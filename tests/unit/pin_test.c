/* pin_test.c - hsmkeys/src/pin.c: PIN files and the checks on them. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "softhsm.h"
#include "p11.h"

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
    unlink(p);
    unlink(link);
    rmdir(dir);
    return t_done();
}
