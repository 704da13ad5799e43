/* sni_test.c - engine/src/sni.c: the host name of a raw server_name
 * extension, as OpenSSL 3.0's own parser accepts it, and every malformed
 * form refused without reading past the buffer. */
#include <string.h>
#include "test.h"
#include "../../engine/src/sni.h"

/* ext = u16 list_len | type | u16 name_len | name */
static size_t make(unsigned char *ext, unsigned type, const char *name, size_t extra)
{
    size_t n = strlen(name), list = 3 + n + extra;
    ext[0] = (unsigned char)(list >> 8); ext[1] = (unsigned char)list;
    ext[2] = (unsigned char)type;
    ext[3] = (unsigned char)(n >> 8); ext[4] = (unsigned char)n;
    memcpy(ext + 5, name, n);
    memset(ext + 5 + n, 0x41, extra);
    return 2 + list;
}

int main(void)
{
    unsigned char ext[600];
    char out[HK_SNI_MAX + 1], longname[300];
    size_t len, i;

    T_CASE("a host name is read as sent (case kept)") {
        len = make(ext, 0, "Www.Example.COM", 0);
        T_EQ_INT(hk_sni_parse(ext, len, out), 1);
        T_EQ_STR(out, "Www.Example.COM");
    }
    T_CASE("only the first entry counts; bytes after it inside the list are ignored, as OpenSSL does") {
        len = make(ext, 0, "a.test", 7);
        T_EQ_INT(hk_sni_parse(ext, len, out), 1);
        T_EQ_STR(out, "a.test");
    }
    T_CASE("255 bytes is the longest name; 256 is refused") {
        memset(longname, 'a', 255); longname[255] = '\0';
        len = make(ext, 0, longname, 0);
        T_EQ_INT(hk_sni_parse(ext, len, out), 1);
        T_EQ_INT(strlen(out), 255);
        memset(longname, 'a', 256); longname[256] = '\0';
        len = make(ext, 0, longname, 0);
        T_EQ_INT(hk_sni_parse(ext, len, out), 0);
        T_EQ_STR(out, "");
    }
    T_CASE("malformed extensions give no name") {
        len = make(ext, 1, "a.test", 0);                 /* not host_name */
        T_EQ_INT(hk_sni_parse(ext, len, out), 0);
        len = make(ext, 0, "", 0);                       /* empty name */
        T_EQ_INT(hk_sni_parse(ext, len, out), 0);
        len = make(ext, 0, "a.test", 0);
        T_EQ_INT(hk_sni_parse(ext, len + 1, out), 0);    /* list shorter than the extension */
        ext[4] = 40;                                     /* name longer than the list */
        T_EQ_INT(hk_sni_parse(ext, len, out), 0);
        len = make(ext, 0, "a.te", 0);
        ext[7] = 0;                                      /* NUL inside the name */
        T_EQ_INT(hk_sni_parse(ext, len, out), 0);
        T_EQ_INT(hk_sni_parse(NULL, 0, out), 0);
        T_EQ_STR(out, "");
    }
    T_CASE("every truncation of a valid extension is refused") {
        len = make(ext, 0, "b.example.com", 0);
        for (i = 0; i < len; i++)
            T_EQ_INT(hk_sni_parse(ext, i, out), 0);
    }
    return t_done();
}
