/*
 * sni.c - read the host name from a raw server_name extension.  See sni.h.
 *
 * Layout (RFC 6066 3):  u16 list_len | { u8 name_type | u16 len | name }...
 * Only the first entry is read, as OpenSSL does.  Threat: hostile lengths;
 * each is checked against the bytes that remain before it is used.
 */
#include <string.h>
#include "sni.h"

int hk_sni_parse(const unsigned char *ext, size_t len, char out[HK_SNI_MAX + 1])
{
    size_t list, name;

    out[0] = '\0';
    if (ext == NULL || len < 2)
        return 0;
    list = (size_t)ext[0] << 8 | ext[1];
    if (list != len - 2 || list < 3)
        return 0;
    if (ext[2] != 0) /* host_name */
        return 0;
    name = (size_t)ext[3] << 8 | ext[4];
    if (name == 0 || name > HK_SNI_MAX || name > list - 3)
        return 0;
    if (memchr(ext + 5, 0, name) != NULL)
        return 0;
    memcpy(out, ext + 5, name);
    out[name] = '\0';
    return 1;
}
