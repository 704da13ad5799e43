/*
 * haproxy_cli.h - one request to HAProxy's runtime API over its unix socket.
 *
 * The feeder speaks the non-interactive CLI: connect, send one line (several
 * commands may be joined with "; "), read the reply until HAProxy closes.
 * Threat: a hung or hostile peer stalling the feeder (every step has a
 * deadline), and key lines leaking: the request buffer is the caller's
 * locked memory and this file makes no copy of it.
 */
#ifndef HSMKEYS_FEEDER_HAPROXY_CLI_H
#define HSMKEYS_FEEDER_HAPROXY_CLI_H

#include <stddef.h>

/*
 * Send req (req_len bytes, ending in '\n') to the socket at path and read the
 * reply into reply[reply_cap] (NUL-terminated).  Returns 0, or -1 with a
 * one-line reason in err (connection refused, timeout, reply too long...).
 */
int hf_cli_request(const char *path, const char *req, size_t req_len,
                   char *reply, size_t reply_cap, int timeout_ms,
                   char *err, size_t err_len);

/* Find "Key: value" at a line start in a `show info` reply; copies the value
 * (up to the end of line) into out.  Returns 0, or -1 if absent. */
int hf_info_field(const char *reply, const char *key, char *out, size_t out_len);

#endif
