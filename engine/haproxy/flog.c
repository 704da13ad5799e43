/*
 * flog.c - log lines "hsmkeys-haproxy-feeder: <level>: <message>" to stderr,
 * or to syslog when running as a daemon.  Threat: secrets in logs; this file
 * only formats what callers pass (names and epochs, see flog.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include "flog.h"

static int use_syslog;
static int max_level = LOG_NOTICE;

void hf_log_use_syslog(void)
{
    openlog(HF_LOG_IDENT, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    use_syslog = 1;
}

void hf_log_set_verbose(int verbose)
{
    max_level = verbose ? LOG_DEBUG : LOG_NOTICE;
}

static const char *level_name(int level)
{
    switch (level) {
    case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
    case LOG_WARNING: return "warning";
    case LOG_NOTICE: return "notice";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

static void hf_log_v(int level, const char *fmt, va_list ap)
{
    char line[1024];

    if (level > max_level)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    if (use_syslog)
        syslog(level, "%s", line);
    else
        fprintf(stderr, "%s: %s: %s\n", HF_LOG_IDENT, level_name(level), line);
}

void hf_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hf_log_v(level, fmt, ap);
    va_end(ap);
}

void hf_log_hsmkeys(void *arg, int level, const char *msg)
{
    (void)arg;
    hf_log(level, "hsmkeys: %s", msg);
}
