/*
 * flog.h - the feeder's log sink: stderr in the foreground, syslog as a
 * daemon.  Threat: secrets in logs.  Callers pass key names (public: clients
 * send them in the clear) and epochs only, never key bytes, PINs or base64
 * key lines.
 */
#ifndef HSMKEYS_FEEDER_HF_LOG_H
#define HSMKEYS_FEEDER_HF_LOG_H

#include <syslog.h>

#define HF_LOG_IDENT "hsmkeys-haproxy-feeder"

/* Log to syslog (daemon facility) instead of stderr from now on. */
void hf_log_use_syslog(void);

/* Show LOG_INFO and LOG_DEBUG messages too (default: LOG_NOTICE and worse). */
void hf_log_set_verbose(int verbose);

void hf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* hsmkeys_log_fn that forwards libhsmkeys messages to hf_log. */
void hf_log_hsmkeys(void *arg, int level, const char *msg);

#endif
