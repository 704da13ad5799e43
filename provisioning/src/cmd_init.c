/*
 * cmd_init.c - "init": initialise a SoftHSM2 token and set its user PIN.
 *
 * Owns: C_InitToken on a free slot and C_InitPIN.  Hardware HSMs are
 * initialised with their vendor's tools (docs/PROVISIONING.md); this is for
 * SoftHSM2 and tests.  Threat: re-initialising an existing token destroys its
 * master, so a label already in use is refused, and only slots without an
 * initialised token are touched.
 */
#include <stdlib.h>
#include <string.h>
#include "tool.h"

/* Tolerated CKRs (raw HK_FN): a listing that fails, or a slot that does not
 * answer, counts as "no such token"/"not free", as hk_token_find skips it. */
static int token_label_exists(hk_module *m, const char *label)
{
    CK_ULONG n = 0;
    if (HK_FN(m, C_GetSlotList)(CK_TRUE, NULL, &n) != CKR_OK || n == 0)
        return 0;
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    int found = 0;
    if (slots && HK_FN(m, C_GetSlotList)(CK_TRUE, slots, &n) == CKR_OK)
        for (CK_ULONG i = 0; i < n && !found; i++) {
            CK_TOKEN_INFO ti;
            char l[33];
            if (HK_FN(m, C_GetTokenInfo)(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
                continue;
            hkt_label_copy(l, ti.label, sizeof ti.label);
            found = !strcmp(l, label);
        }
    free(slots);
    return found;
}

static int free_slot(hk_module *m, CK_SLOT_ID *out)
{
    CK_ULONG n = 0;
    if (HK_FN(m, C_GetSlotList)(CK_TRUE, NULL, &n) != CKR_OK || n == 0)
        return -1;
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    int rc = -1;
    if (slots && HK_FN(m, C_GetSlotList)(CK_TRUE, slots, &n) == CKR_OK)
        for (CK_ULONG i = 0; i < n && rc; i++) {
            CK_TOKEN_INFO ti;
            if (HK_FN(m, C_GetTokenInfo)(slots[i], &ti) == CKR_OK && !(ti.flags & CKF_TOKEN_INITIALIZED)) {
                *out = slots[i];
                rc = 0;
            }
        }
    free(slots);
    return rc;
}

int hkt_cmd_init(struct hkt_opts *o)
{
    hk_module *m = NULL;
    hk_secret so, user;
    memset(&so, 0, sizeof so);
    memset(&user, 0, sizeof user);
    int ret = HKT_EXIT_FAIL;
    unsigned char label[32];
    size_t ll = o->token ? strlen(o->token) : 0;
    if (!o->token || ll == 0 || ll > 32) {
        hkt_err("init needs --token LABEL (1..32 characters) naming the new token");
        return HKT_EXIT_USAGE;
    }
    if (hk_module_get(hkt_module_path(o), o->module_args, &m) != HSMKEYS_OK) {
        hkt_err_lib("loading the PKCS#11 module");
        return HKT_EXIT_FAIL;
    }
    CK_SLOT_ID slot;
    if (token_label_exists(m, o->token)) {
        hkt_err("a token labelled '%s' already exists: re-initialising would destroy its keys; "
                "pick another label, or delete it first (softhsm2-util --delete-token --token '%s')",
                o->token, o->token);
        goto out;
    }
    if (free_slot(m, &slot) != 0) {
        hkt_err("no free slot to initialise: this module offers none (a hardware HSM is "
                "initialised with its vendor's tools, see docs/PROVISIONING.md)");
        goto out;
    }
    if (hkt_read_pin(o->so_pin_source, "security officer PIN", &so) != 0 ||
        hkt_read_pin(o->pin_source, "user PIN", &user) != 0)
        goto out;
    CK_TOKEN_INFO ti;
    if (HK_FN(m, C_GetTokenInfo)(slot, &ti) == CKR_OK && ti.ulMaxPinLen > 0) {
        const char *bad = so.len < ti.ulMinPinLen || so.len > ti.ulMaxPinLen ? "security officer"
                        : user.len < ti.ulMinPinLen || user.len > ti.ulMaxPinLen ? "user" : NULL;
        if (bad) {
            hkt_err("the %s PIN must have %lu to %lu characters on this token; change the PIN file",
                    bad, (unsigned long)ti.ulMinPinLen, (unsigned long)ti.ulMaxPinLen);
            goto out;
        }
    }
    memset(label, ' ', sizeof label);
    memcpy(label, o->token, ll);
    if (hk_p11_check(HK_FN(m, C_InitToken)(slot, so.data, so.len, label), "C_InitToken") != HSMKEYS_OK) {
        hkt_err_lib("initialising the token");
        goto out;
    }
    struct hkt_conn c;
    /* The token moves to a new slot id in SoftHSM2: find it again by label. */
    if (hkt_conn_open(&c, o, HKT_LOGIN_NONE) != 0)
        goto out;
    if (hk_login(c.module, c.session, CKU_SO, &so) != HSMKEYS_OK) {
        hkt_err_lib("security officer login after init");
    } else if (hk_p11_check(HK_FN(c.module, C_InitPIN)(c.session, user.data, user.len), "C_InitPIN") != HSMKEYS_OK) {
        hkt_err_lib("setting the user PIN");
    } else {
        hkt_info("initialised token '%s' (serial %s); user PIN set", c.token_label, c.token_serial);
        hkt_info("next: hsmkeys-tool create --token '%s' --pin-source FILE [--clonable]", c.token_label);
        ret = HKT_EXIT_OK;
    }
    hkt_conn_close(&c);
out:
    hk_secret_free(&so);
    hk_secret_free(&user);
    hk_module_put(m);
    return ret;
}
