/*
 * cmd_status.c - "status" (tokens, masters, generations, attributes,
 * schedule, current key names) and "verify"/"kcv" (key check values).
 *
 * Owns: the operator's view of a token.  Threat: status must show what is
 * dangerous (an extractable master, one without WRAP_WITH_TRUSTED) without
 * revealing anything secret: it prints attributes, public key fingerprints,
 * key check values and key names (public, sent in clear by clients); the
 * epoch keys fetched to learn the names are wiped at once.
 */
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static const char *yn(int v)
{
    return v == 1 ? "yes" : v == 0 ? "no" : "?";
}

static int list_tokens(const struct hkt_opts *o)
{
    hk_module *m = NULL;
    if (hk_module_get(hkt_module_path(o), o->module_args, &m) != HSMKEYS_OK) {
        hkt_err_lib("loading the PKCS#11 module");
        return HKT_EXIT_FAIL;
    }
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    int ret = HKT_EXIT_FAIL;
    if (hk_p11_check(HK_FN(m, C_GetSlotList)(CK_TRUE, NULL, &n), "C_GetSlotList") != HSMKEYS_OK ||
        !(slots = calloc(n + 1, sizeof *slots)) ||
        hk_p11_check(HK_FN(m, C_GetSlotList)(CK_TRUE, slots, &n), "C_GetSlotList") != HSMKEYS_OK) {
        hkt_err_lib("listing tokens");
        goto out;
    }
    hkt_info("module %s", hkt_module_path(o));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char l[33], s[17], mo[17];
        /* tolerated: a slot that does not answer is not listed */
        if (HK_FN(m, C_GetTokenInfo)(slots[i], &ti) != CKR_OK)
            continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
            hkt_info("  slot %lu: free (not initialised)", (unsigned long)slots[i]);
            continue;
        }
        hkt_label_copy(l, ti.label, 32);
        hkt_label_copy(s, ti.serialNumber, 16);
        hkt_label_copy(mo, ti.model, 16);
        hkt_info("  token '%s' serial %s model %s%s", l, s, mo,
                 (ti.flags & CKF_USER_PIN_INITIALIZED) ? "" : " (user PIN not set)");
    }
    hkt_info("select one with --token LABEL to see its masters");
    ret = HKT_EXIT_OK;
out:
    free(slots);
    hk_module_put(m);
    return ret;
}

static void list_transport(struct hkt_conn *c)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}};
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    if (hkt_find(c, t, 2, h, 64, &n) != 0)
        return;
    for (CK_ULONG i = 0; i < n; i++) {
        char label[80] = "", hex[2 * HKT_FP_LEN + 1];
        unsigned char fp[HKT_FP_LEN];
        CK_ATTRIBUTE la = {CKA_LABEL, label, sizeof label - 1};
        if (HK_FN(c->module, C_GetAttributeValue)(c->session, h[i], &la, 1) != CKR_OK)
            continue;
        label[la.ulValueLen] = 0;
        if (strncmp(label, "hsmkeys-", 8) || hkt_pubkey_fingerprint(c, h[i], fp) != 0)
            continue;
        hkt_hex(hex, fp, sizeof fp);
        hkt_info("  %s %s trusted=%s wrap=%s", label, hex,
                 yn(hk_attr_bool(c->module, c->session, h[i], CKA_TRUSTED)),
                 yn(hk_attr_bool(c->module, c->session, h[i], CKA_WRAP)));
    }
}

/* The library's "ready" notice repeats what status prints; keep warnings. */
static void quiet_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= HSMKEYS_LOG_WARNING)
        fprintf(stderr, "hsmkeys: %s\n", msg);
}

static int64_t fixed_clock(void *arg)
{
    return *(const int64_t *)arg;
}

/* The fleet's key names now, through the public API as a server sees them.
 * Returns 0, or -1 (error printed) when a server could not open the master:
 * status then fails, since what it printed is not what servers can use. */
static int fleet_names(const struct hkt_opts *o, const char *token, const char *label,
                        const char *module, const char *pin)
{
    char *uri = NULL, num[32];
    hsmkeys_config *cfg = NULL;
    hsmkeys_ctx *ctx = NULL;
    hk_uri_parts parts = { .token = token, .object = label };
    if (!pin || !o->domain || hk_uri_build(&parts, &uri) != HSMKEYS_OK) {
        hkt_info("key names: pass --domain D and --pin-source FILE to show the names servers use now");
        return 0;
    }
    int rc = hsmkeys_config_new(&cfg);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "uri", uri);
    hk_uri_string_free(uri);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "module", module);
    if (rc == HSMKEYS_OK && o->module_args) rc = hsmkeys_config_set(cfg, "module-args", o->module_args);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "pin-source", pin);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "domain", o->domain);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "allow-extractable", "yes");
    snprintf(num, sizeof num, "%lld", (long long)o->epoch_seconds);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "epoch", num);
    snprintf(num, sizeof num, "%lld", (long long)o->lifetime_seconds);
    if (rc == HSMKEYS_OK) rc = hsmkeys_config_set(cfg, "lifetime", num);
    int64_t now = o->now;
    if (rc == HSMKEYS_OK)
        hsmkeys_config_set_log(cfg, quiet_log, NULL);
    if (rc == HSMKEYS_OK && now >= 0)
        hsmkeys_config_set_clock(cfg, fixed_clock, &now);
    if (rc == HSMKEYS_OK)
        rc = hsmkeys_open(cfg, &ctx);
    hsmkeys_config_free(cfg);
    if (rc != HSMKEYS_OK) {
        hkt_err_lib("opening the master as a server would (hsmkeys_open)");
        return -1;
    }
    uint64_t e = hsmkeys_current_epoch(ctx);
    for (uint64_t k = e; k <= e + 1; k++) {
        unsigned char name[HSMKEYS_KEY_NAME_LEN], aes[HSMKEYS_AES_KEY_LEN], mac[HSMKEYS_HMAC_KEY_LEN];
        char hex[2 * HSMKEYS_KEY_NAME_LEN + 1];
        rc = hsmkeys_epoch_key(ctx, k, name, aes, mac);
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
        if (rc != HSMKEYS_OK) {
            hkt_err_lib("deriving the epoch's key name");
            break;
        }
        hkt_hex(hex, name, sizeof name);
        hkt_info("key name epoch %llu%s: %s", (unsigned long long)k, k == e ? " (encrypting now)" : " (next)", hex);
    }
    hsmkeys_close(ctx);
    return rc == HSMKEYS_OK ? 0 : -1;
}

static void show_master(struct hkt_conn *c, const hk_master *mk, const hk_master *active,
                        const char *domain)
{
    char when[40], kcvhex[2 * HK_CHECK_VALUE_LEN + 1] = "?", taghex[2 * HK_TAG_LEN + 1];
    unsigned char kcv[HK_CHECK_VALUE_LEN];
    hkt_fmt_time(mk->activation, when, sizeof when);
    if (hkt_kcv(c, mk->handle, kcv) == 0)
        hkt_hex(kcvhex, kcv, sizeof kcv);
    hkt_info("  generation %u%s: active from %s (%lld), type %s, kcv %s", mk->generation,
             mk == active ? " [current]" : mk->activation > active->activation ? " [scheduled]" : " [old]",
             when, (long long)mk->activation,
             mk->key_type == CKK_GENERIC_SECRET ? "generic-secret" :
             mk->key_type == CKK_SHA256_HMAC ? "sha256-hmac" : "other", kcvhex);
    hkt_info("    sensitive=%s extractable=%s always-sensitive=%s never-extractable=%s "
             "wrap-with-trusted=%s", yn(mk->sensitive), yn(mk->extractable), yn(mk->always_sensitive),
             yn(mk->never_extractable), yn(mk->wrap_with_trusted));
    if (hk_master_check_policy(mk, 1, hkt_warn_cb, NULL) != HSMKEYS_OK)
        hkt_info("    DANGER: %s", hsmkeys_last_error());
    else if (mk->extractable == 1)
        hkt_info("    clonable: seal it once every clone holds it (hsmkeys-tool seal)");
    if (domain) {
        struct hk_master_prf prf;
        unsigned char tag[HK_TAG_LEN];
        memset(&prf, 0, sizeof prf);
        prf.module = c->module;
        prf.session = c->session;
        prf.key = mk->handle;
        if (hk_kdf_name_tag(hk_master_prf, &prf, domain, tag) == HSMKEYS_OK) {
            hkt_hex(taghex, tag, sizeof tag);
            hkt_info("    key names for domain '%s': %02x%s + epoch", domain, HK_NAME_VERSION, taghex);
        }
    }
}

int hkt_cmd_status(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    char when[40];
    if (!o->token && !o->uri)
        return list_tokens(o);
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    int ret = HKT_EXIT_FAIL;
    int64_t now = hkt_now(o);
    char token[33], label[200], module[512], pin[512] = "";
    hkt_info("token '%s' serial %s, module %s", c.token_label, c.token_serial,
             hk_module_path(c.module));
    hkt_info("transport keys:");
    list_transport(&c);
    if (hkt_masters_all(&c, &m, &n) != 0)
        goto out;
    hkt_fmt_time(now, when, sizeof when);
    hkt_info("master '%s': %zu generation%s; now %s, epoch %lld (epoch %llds, lifetime %llds)",
             c.label, n, n == 1 ? "" : "s", when, (long long)(now / o->epoch_seconds),
             (long long)o->epoch_seconds, (long long)o->lifetime_seconds);
    const hk_master *active = NULL;
    for (size_t i = 0; i < n; i++)
        if (m[i].activation <= now && (!active || m[i].activation > active->activation))
            active = &m[i];
    if (n && !active) {
        hkt_info("  WARNING: no generation is active yet");
        active = &m[0];
    }
    for (size_t i = 0; i < n; i++)
        show_master(&c, &m[i], active, o->domain);
    hkt_chain_status(&c, o, m, n);
    uint32_t dup;
    if (hkt_report_duplicate(&c, m, n, &dup))
        goto out;
    snprintf(token, sizeof token, "%s", c.token_label);
    snprintf(label, sizeof label, "%s", c.label);
    snprintf(module, sizeof module, "%s", hk_module_path(c.module));
    if (o->pin_source || hk_uri_pin_source(c.uri))
        snprintf(pin, sizeof pin, "%s", o->pin_source ? o->pin_source : hk_uri_pin_source(c.uri));
    ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    if (ret == HKT_EXIT_OK && n && fleet_names(o, token, label, module, *pin ? pin : NULL) != 0)
        ret = HKT_EXIT_FAIL;
    return ret;
}

int hkt_cmd_kcv(struct hkt_opts *o)
{
    struct hkt_conn c;
    hk_master *m = NULL;
    size_t n = 0;
    unsigned char expect[HK_CHECK_VALUE_LEN];
    int ret = HKT_EXIT_FAIL, matched = 0, shown = 0;
    if (o->epoch_arg)
        return hkt_cmd_kcv_epoch(o); /* kcv --epoch E (cmd_chain.c) */
    if (o->expect_kcv && hkt_unhex(o->expect_kcv, expect, sizeof expect) != 0) {
        hkt_err("--expect-kcv %s: expected %d hex digits", o->expect_kcv, 2 * HK_CHECK_VALUE_LEN);
        return HKT_EXIT_USAGE;
    }
    if (hkt_conn_open(&c, o, HKT_LOGIN_USER) != 0)
        return HKT_EXIT_FAIL;
    if (hkt_masters(&c, &m, &n) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        unsigned char kcv[HK_CHECK_VALUE_LEN];
        char hex[2 * HK_CHECK_VALUE_LEN + 1];
        if (o->generation >= 0 && m[i].generation != (uint32_t)o->generation)
            continue;
        if (hkt_kcv(&c, m[i].handle, kcv) != 0)
            goto out;
        hkt_hex(hex, kcv, sizeof kcv);
        hkt_info("kcv %u %s", m[i].generation, hex);
        shown++;
        if (o->expect_kcv && hk_ct_memcmp(kcv, expect, sizeof kcv) == 0)
            matched++;
    }
    if (!shown) {
        hkt_err("token '%s' holds no master '%s'%s", c.token_label, c.label,
                o->generation >= 0 ? " of that generation" : "");
        goto out;
    }
    if (o->expect_kcv && !matched) {
        hkt_err("no generation has key check value %s: this token does not hold that master",
                o->expect_kcv);
        goto out;
    }
    ret = HKT_EXIT_OK;
out:
    free(m);
    hkt_conn_close(&c);
    return ret;
}
