/*
 * sc_conf.h - the session cache store's settings, parsed from a server
 * directive: an address URL plus key=value options.
 *
 *   redis://IP[:PORT]      TCP (IPv4, or [IPv6]); port 6379 by default
 *   unix:/PATH             unix socket
 *   password-file=PATH     Redis AUTH password (first line); the file must be
 *                          a regular file readable by its owner only (0600)
 *   timeout=DUR            most a lookup waits for a reply          [5ms]
 *   connect-timeout=DUR    most a (re)connect waits                 [5ms]
 *   DUR: N (ms), Nms or Ns, 1 ms .. 10 s.
 *   ("password_file" and "connect_timeout" are accepted too, nginx-style.)
 *
 * Owns: sc_conf and its password bytes (wiped by sc_conf_clear).
 * Threat handled: a Redis password in argv, the environment or a
 * world-readable file; host names (a name would be resolved with a blocking
 * DNS query inside a handshake when the connection is re-made, so only IP
 * literals are accepted); and settings that would let a lookup stall a
 * worker (timeouts are bounded).
 */
#ifndef HSMKEYS_SC_CONF_H
#define HSMKEYS_SC_CONF_H

#include <stddef.h>

#define SC_PASSWORD_MAX 512

typedef struct sc_conf {
    int unix_socket;           /* 1: path, 0: host/port */
    char host[64];             /* IP literal */
    int port;
    char path[108];            /* sun_path */
    char *password;            /* NULL: no AUTH */
    size_t password_len;
    unsigned timeout_ms;
    unsigned connect_timeout_ms;
} sc_conf;

#define SC_DEFAULT_TIMEOUT_MS 5
#define SC_MAX_TIMEOUT_MS     10000

/* Defaults, no address. */
void sc_conf_init(sc_conf *c);

/* Parse the address.  Returns 0, or -1 with a message in err. */
int sc_conf_url(sc_conf *c, const char *url, char *err, size_t errlen);

/* Apply one "name=value" option.  Returns 0, or -1 with a message in err
 * (unknown option, bad duration, unusable password file). */
int sc_conf_option(sc_conf *c, const char *opt, char *err, size_t errlen);

/* Copy src into dst (the password is duplicated).  Returns 0 or -1. */
int sc_conf_copy(sc_conf *dst, const sc_conf *src);

/* Wipe and free the password. */
void sc_conf_clear(sc_conf *c);

/* "redis://127.0.0.1:6379" / "unix:/run/redis.sock", for log lines. */
const char *sc_conf_addr(const sc_conf *c, char *buf, size_t buflen);

#endif /* HSMKEYS_SC_CONF_H */
