/*
 * fuzz_config.c - configuration and URI parsing with hostile text: the
 * options a server directive passes to hsmkeys_config_set (uri, domain,
 * epoch, lifetime, module, pin-source, ...), and the RFC 7512 URI and
 * duration parsers behind them.
 *
 * Input: lines "name=value" (or a bare value); each line is set on one fresh
 * configuration, and each value also goes to hk_uri_parse and
 * hk_parse_duration, and as a base to hk_uri_build (hsmkeys-tool's URIs).
 * Invariants: only documented codes; a message for every
 * failure; ASan/UBSan find the rest.  No token is touched.
 */
#include <stdlib.h>
#include <string.h>
#include <hsmkeys/hsmkeys.h>
#include "config.h"
#include "p11.h"
#include "fuzz_env.h"

static const char *const names[] = {
    "uri", "domain", "epoch", "lifetime", "module", "module-args", "pin-source",
    "allow-extractable",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsmkeys_config *cfg = NULL;
    char *text, *save = NULL;

    if (size > 4096)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    fz_check(hsmkeys_config_new(&cfg) == HSMKEYS_OK, "config_new");
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        const char *name, *value;
        int rc;
        hk_uri *u = NULL;
        int64_t secs;
        if (eq) {
            *eq = 0;
            name = line;
            value = eq + 1;
        } else {
            name = names[(unsigned char)line[0] % (sizeof names / sizeof names[0])];
            value = line;
        }
        rc = hsmkeys_config_set(cfg, name, value);
        fz_check(rc == HSMKEYS_OK || rc == HSMKEYS_E_INVALID || rc == HSMKEYS_E_URI ||
                 rc == HSMKEYS_E_NOMEM, "config_set result");
        if (rc != HSMKEYS_OK)
            fz_check(hsmkeys_last_error()[0] != 0, "failure has a message");
        rc = hk_uri_parse(value, &u);
        fz_check(rc == HSMKEYS_OK || rc == HSMKEYS_E_URI || rc == HSMKEYS_E_NOMEM,
                 "uri_parse result");
        if (rc == HSMKEYS_OK) {
            size_t idlen = 0;
            (void)hk_uri_module_path(u);
            (void)hk_uri_pin_source(u);
            (void)hk_uri_object_label(u);
            (void)hk_uri_object_id(u, &idlen);
        }
        hk_uri_free(u);
        {
            /* hsmkeys-tool's URI building (p11-kit's formatter): a base that
             * parses still parses once the tool has added token and object. */
            hk_uri_parts parts = { .base = value, .token = "T", .default_object = "m" };
            char *built = NULL;
            int parsed = hk_uri_parse(value, &u) == HSMKEYS_OK;
            hk_uri_free(u);
            u = NULL;
            rc = hk_uri_build(&parts, &built);
            fz_check(rc == HSMKEYS_OK || rc == HSMKEYS_E_URI || rc == HSMKEYS_E_NOMEM,
                     "uri_build result");
            if (rc != HSMKEYS_OK)
                fz_check(hsmkeys_last_error()[0] != 0, "build failure has a message");
            if (rc == HSMKEYS_OK && parsed)
                fz_check(hk_uri_parse(built, &u) == HSMKEYS_OK, "built URI parses");
            hk_uri_free(u);
            hk_uri_string_free(built);
        }
        rc = hk_parse_duration("fuzz", value, &secs);
        fz_check(rc == HSMKEYS_OK || rc == HSMKEYS_E_INVALID, "parse_duration result");
        if (rc == HSMKEYS_OK)
            fz_check(secs >= 0, "duration not negative");
    }
    hsmkeys_config_free(cfg);
    free(text);
    return 0;
}
