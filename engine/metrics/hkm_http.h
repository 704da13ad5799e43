/*
 * hkm_http.h - a loopback HTTP endpoint serving GET /metrics (the
 * Prometheus text of hsmkeys_metrics_render) for the programs that have no
 * web server of their own: hsmkeys-haproxy-feeder and hsmkeys-demo-server.
 *
 * Owns: one listening socket on a loopback address, one thread that
 * answers one request at a time, and the request check.  Threat: the
 * endpoint is reachable by local users and must not be reachable from the
 * network by accident (non-loopback addresses are refused; put a reverse
 * proxy in front to expose it), must not be slowed into blocking the
 * program (own thread, 2 s per client, requests capped at 4 KB), and shows
 * only public values (hsmkeys_get_metrics has no key bytes).
 */
#ifndef HKM_HTTP_H
#define HKM_HTTP_H

#include <stddef.h>
#include <hsmkeys/hsmkeys.h>

typedef struct hkm_http hkm_http;

/* Listen on ADDR:PORT (127.0.0.0/8 or [::1]) and serve ctx's metrics from a
 * thread.  NULL and a message in err on failure. */
hkm_http *hkm_http_start(const char *addr_port, hsmkeys_ctx *ctx, char *err, size_t errlen);

/* Stop the thread and close the socket. */
void hkm_http_stop(hkm_http *h);

/* 1 when buf (len bytes, the start of an HTTP request) asks for GET or HEAD
 * /metrics (optionally with a query string), 0 when it asks for something
 * else, -1 when the request line is not complete yet.  Exposed for the
 * fuzz target. */
int hkm_request_kind(const char *buf, size_t len);

#endif
