/*
 * config.h - the configuration object behind hsmkeys_config (opaque in the
 * public header) and the parsing of its values.
 */
#ifndef HSMKEYS_CONFIG_H
#define HSMKEYS_CONFIG_H

#include <stdint.h>
#include "error.h"

/* Keep the ring bounded: a window of more epochs than this is refused. */
#define HK_MAX_WINDOW_PAST 512

struct hsmkeys_config {
    char *uri;
    char *domain;
    char *module;
    char *module_args;
    char *pin_source;
    int64_t epoch_seconds;
    int64_t lifetime_seconds;
    int allow_extractable;
    int session_cache;            /* also derive the session cache keys */
    int forward_erasable;         /* epoch keys also depend on the token's chain */
    hsmkeys_log_fn log;
    void *log_arg;
    hsmkeys_clock_fn clock;
    void *clock_arg;
};

/* Parse "3600", "90s", "30m", "1h", "2d", "1h30m" into seconds.
 * Returns HSMKEYS_OK or HSMKEYS_E_INVALID naming `what`. */
int hk_parse_duration(const char *what, const char *v, int64_t *out) HK_WARN_UNUSED;

/* Check the whole configuration before opening: required options present,
 * schedule consistent.  Returns HSMKEYS_OK or HSMKEYS_E_INVALID. */
int hk_config_validate(const struct hsmkeys_config *c) HK_WARN_UNUSED;

#endif
