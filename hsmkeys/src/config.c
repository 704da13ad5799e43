/*
 * config.c - hsmkeys_config: named options as server directives set them.
 *
 * Every value is checked when set, so a server's config test (nginx -t,
 * apachectl -t) reports the directive that is wrong; hk_config_validate
 * then checks the combination.  The URI may carry a pin-value (tests only):
 * the stored copy is wiped when replaced or freed.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "kdf.h"

static void free_wiped(char *s)
{
    if (s != NULL) {
        hsmkeys_wipe(s, strlen(s));
        free(s);
    }
}

int hsmkeys_config_new(hsmkeys_config **out)
{
    hsmkeys_config *c = calloc(1, sizeof *c);
    *out = c;
    if (c == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    c->epoch_seconds = HSMKEYS_DEFAULT_EPOCH_SECONDS;
    c->lifetime_seconds = HSMKEYS_DEFAULT_LIFETIME_SECONDS;
    return HSMKEYS_OK;
}

void hsmkeys_config_free(hsmkeys_config *c)
{
    if (c == NULL)
        return;
    free_wiped(c->uri);
    free(c->domain);
    free(c->module);
    free(c->module_args);
    free(c->pin_source);
    free(c);
}

int hk_parse_duration(const char *what, const char *v, int64_t *out)
{
    const char *p = v;
    int64_t total = 0;

    if (v == NULL || *v == '\0')
        return hk_fail(HSMKEYS_E_INVALID, "%s: empty value; give seconds or a duration "
                       "such as 3600, 90s, 30m, 1h, 2d", what);
    while (*p != '\0') {
        int64_t n = 0, unit;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > 100000000)
                goto bad;
        }
        switch (*p) {
        case '\0': unit = 1; break;
        case 's': unit = 1; p++; break;
        case 'm': unit = 60; p++; break;
        case 'h': unit = 3600; p++; break;
        case 'd': unit = 86400; p++; break;
        default: goto bad;
        }
        total += n * unit;
        if (total > INT64_C(100000000))
            goto bad;
    }
    *out = total;
    return HSMKEYS_OK;
bad:
    return hk_fail(HSMKEYS_E_INVALID, "%s \"%s\" is not a duration: give seconds or a "
                   "duration such as 3600, 90s, 30m, 1h, 2d", what, v);
}

static int set_string(char **slot, const char *v, int wipe_old)
{
    char *copy = strdup(v);
    if (copy == NULL)
        return hk_fail(HSMKEYS_E_NOMEM, "out of memory");
    if (wipe_old)
        free_wiped(*slot);
    else
        free(*slot);
    *slot = copy;
    return HSMKEYS_OK;
}

/* epoch and lifetime: a duration from 1 s to 7 days. */
static int set_schedule_duration(const char *what, const char *v, const char *note, int64_t *out)
{
    int64_t s;
    HK_TRY(hk_parse_duration(what, v, &s));
    if (s < 1 || s > HSMKEYS_MAX_LIFETIME_SECONDS)
        return hk_fail(HSMKEYS_E_INVALID, "%s \"%s\" is out of range: 1s to 7d (%s)",
                       what, v, note);
    *out = s;
    return HSMKEYS_OK;
}

int hsmkeys_config_set(hsmkeys_config *c, const char *name, const char *v)
{
    if (c == NULL || name == NULL || v == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "hsmkeys_config_set: NULL argument");
    if (strcmp(name, "uri") == 0) {
        if (strncmp(v, "pkcs11:", 7) != 0)
            return hk_fail(HSMKEYS_E_URI, "uri \"%.60s\" is not a PKCS#11 URI: it must start "
                           "with \"pkcs11:\" (e.g. pkcs11:token=S1;object=hsmkeys-master"
                           "?pin-source=/etc/hsmkeys/pin)", v);
        return set_string(&c->uri, v, 1);
    }
    if (strcmp(name, "domain") == 0) {
        size_t n = strlen(v), i;
        if (n == 0 || n > HK_DOMAIN_MAX)
            return hk_fail(HSMKEYS_E_INVALID, "domain must be 1 to %d characters: name the "
                           "service whose servers share tickets (e.g. www.example.com)",
                           HK_DOMAIN_MAX);
        for (i = 0; i < n; i++)
            if (!isprint((unsigned char)v[i]))
                return hk_fail(HSMKEYS_E_INVALID, "domain must be printable text");
        return set_string(&c->domain, v, 0);
    }
    if (strcmp(name, "epoch") == 0)
        return set_schedule_duration("epoch", v, "default 1h", &c->epoch_seconds);
    if (strcmp(name, "lifetime") == 0)
        return set_schedule_duration("lifetime", v, "RFC 8446 caps ticket lifetime at 7 days; "
                                     "default 2h", &c->lifetime_seconds);
    if (strcmp(name, "module") == 0)
        return set_string(&c->module, v, 0);
    if (strcmp(name, "module-args") == 0)
        return set_string(&c->module_args, v, 0);
    if (strcmp(name, "pin-source") == 0)
        return set_string(&c->pin_source, v, 0);
    if (strcmp(name, "allow-extractable") == 0) {
        if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
            c->allow_extractable = v[0] == 'y';
            return HSMKEYS_OK;
        }
        return hk_fail(HSMKEYS_E_INVALID, "allow-extractable takes yes or no");
    }
    if (strcmp(name, "session-cache") == 0) {
        if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
            c->session_cache = v[0] == 'y';
            return HSMKEYS_OK;
        }
        return hk_fail(HSMKEYS_E_INVALID, "session-cache takes yes or no");
    }
    if (strcmp(name, "forward-erasable") == 0) {
        if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
            c->forward_erasable = v[0] == 'y';
            return HSMKEYS_OK;
        }
        return hk_fail(HSMKEYS_E_INVALID, "forward-erasable takes yes or no (yes: past epochs' "
                       "keys are erased from the token; every server of the fleet must agree)");
    }
    return hk_fail(HSMKEYS_E_INVALID, "unknown option \"%.40s\": options are uri, domain, "
                   "epoch, lifetime, module, module-args, pin-source, allow-extractable, "
                   "session-cache, forward-erasable", name);
}

void hsmkeys_config_set_log(hsmkeys_config *c, hsmkeys_log_fn fn, void *arg)
{
    c->log = fn;
    c->log_arg = arg;
}

void hsmkeys_config_set_clock(hsmkeys_config *c, hsmkeys_clock_fn fn, void *arg)
{
    c->clock = fn;
    c->clock_arg = arg;
}

int hk_config_validate(const struct hsmkeys_config *c)
{
    int64_t window;
    if (c->uri == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "no uri configured: set the pkcs11: URI of the "
                       "master (e.g. pkcs11:token=S1;object=hsmkeys-master?pin-source=FILE)");
    if (c->domain == NULL)
        return hk_fail(HSMKEYS_E_INVALID, "no ticket domain configured: every server of one "
                       "service sets the same domain (e.g. www.example.com)");
    window = (c->lifetime_seconds + c->epoch_seconds - 1) / c->epoch_seconds;
    if (window > HK_MAX_WINDOW_PAST)
        return hk_fail(HSMKEYS_E_INVALID, "lifetime %llds spans %lld epochs of %llds: at most %d "
                       "are kept; lengthen the epoch", (long long)c->lifetime_seconds,
                       (long long)window, (long long)c->epoch_seconds, HK_MAX_WINDOW_PAST);
    return HSMKEYS_OK;
}
