/*
 * sni.h - the server name a client sent, read from the raw server_name
 * extension of its ClientHello (RFC 6066 section 3).  Internal to the
 * library.
 *
 * Why: OpenSSL 3.0 decrypts a session ticket (TLS 1.2 and 1.3) inside
 * ssl_get_prev_session(), before it parses server_name and before the
 * application's servername callback runs, so SSL_get_servername() is still
 * NULL then.  The raw extension is available (SSL_client_hello_get0_ext)
 * while the ClientHello is processed, and this parser reads the name from
 * it.  Threat: the bytes come from the network; every length is checked
 * against what remains, and a malformed or oversized extension gives no
 * name (OpenSSL then aborts the handshake itself).
 */
#ifndef HSMKEYS_ENGINE_SNI_H
#define HSMKEYS_ENGINE_SNI_H

#include <stddef.h>

/* Longest host name OpenSSL accepts (TLSEXT_MAXLEN_host_name). */
#define HK_SNI_MAX 255

/*
 * Parse the extension_data of a server_name extension: a u16-prefixed list
 * that must fill the extension, whose first entry must be of type host_name
 * (0) with a u16-prefixed name of 1..255 bytes containing no NUL byte, as
 * OpenSSL's own parser demands.  On success writes the name NUL-terminated
 * to out and returns 1; otherwise returns 0 and out is "".
 */
int hk_sni_parse(const unsigned char *ext, size_t len, char out[HK_SNI_MAX + 1]);

#endif /* HSMKEYS_ENGINE_SNI_H */
