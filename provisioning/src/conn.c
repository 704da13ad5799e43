/*
 * conn.c - open the selected token for one subcommand: module, slot,
 * read-write session, login as user or security officer.
 *
 * Owns: the precedence of options (--module > URI module-path > default;
 * --pin-source > URI pin-source > terminal prompt) and PIN handling.
 * Threat: a PIN kept after login could leak in a core dump or swap; it lives
 * in an hk_secret (locked, undumpable) and is wiped right after C_Login.
 * PINs are never read from argv or the environment.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tool.h"

const char *hkt_module_path(const struct hkt_opts *o)
{
    return o->module ? o->module : HKT_DEFAULT_MODULE;
}

int hkt_uri_for(const char *attr, const char *value, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "pkcs11:%s=", attr);
    if (n >= outlen)
        return -1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (n + 4 > outlen)
            return -1;
        if (plain)
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, 4, "%%%02X", *p);
    }
    out[n] = 0;
    return 0;
}

/* The token's URI, with the master label added when it names no object:
 * hk_uri_parse wants one.  --token T gives pkcs11:token=T;object=LABEL. */
static int token_uri(const struct hkt_opts *o, char *out, size_t outlen)
{
    char obj[256];
    const char *label = o->label ? o->label : HKT_DEFAULT_LABEL;
    if (hkt_uri_for("object", label, obj, sizeof obj) != 0) {
        hkt_err("--label: too long");
        return -1;
    }
    if (o->token) {
        if (hkt_uri_for("token", o->token, out, outlen) != 0 ||
            strlen(out) + strlen(obj) >= outlen) {
            hkt_err("--token: label too long");
            return -1;
        }
        strcat(out, ";");
        strcat(out, obj + strlen("pkcs11:"));
        return 0;
    }
    size_t path = strcspn(o->uri, "?");
    int has_obj = 0;
    for (const char *p = o->uri + 7; p < o->uri + path && strlen(o->uri) > 7; p++)
        if ((p[-1] == ':' || p[-1] == ';') && (!strncmp(p, "object=", 7) || !strncmp(p, "id=", 3)))
            has_obj = 1;
    if (strlen(o->uri) + strlen(obj) + 2 >= outlen) {
        hkt_err("--uri: too long");
        return -1;
    }
    if (has_obj)
        snprintf(out, outlen, "%s", o->uri);
    else
        snprintf(out, outlen, "%.*s%s%s%s", (int)path, o->uri, path > 7 ? ";" : "",
                 obj + strlen("pkcs11:"), o->uri + path);
    return 0;
}

static int have_tty(void)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int hkt_read_pin(const char *source, const char *prompt, hk_secret *pin)
{
    int rc;
    if (source) {
        rc = hk_pin_read_file(source, pin);
        if (rc != HSMKEYS_OK) {
            hkt_err_lib("reading the PIN");
            return -1;
        }
        return 0;
    }
    if (!have_tty()) {
        hkt_err("%s: no PIN source given and no terminal to prompt on; pass %s FILE "
                "(a file of mode 0600 holding the PIN)", prompt,
                strstr(prompt, "security officer") ? "--so-pin-source" : "--pin-source");
        return -1;
    }
    rc = hk_pin_prompt(prompt, pin);
    if (rc != HSMKEYS_OK) {
        hkt_err_lib("reading the PIN");
        return -1;
    }
    return 0;
}

static int login(struct hkt_conn *c, const struct hkt_opts *o, int who)
{
    hk_secret pin;
    memset(&pin, 0, sizeof pin);
    const char *src = who == HKT_LOGIN_SO ? o->so_pin_source
                      : o->pin_source ? o->pin_source : hk_uri_pin_source(c->uri);
    if (hkt_read_pin(src, who == HKT_LOGIN_SO ? "security officer PIN" : "user PIN", &pin) != 0)
        return -1;
    int rc = hk_login(c->module, c->session, who == HKT_LOGIN_SO ? CKU_SO : CKU_USER, &pin);
    hk_secret_free(&pin);
    if (rc != HSMKEYS_OK) {
        hkt_err("%s login to token '%s' refused: %s%s", who == HKT_LOGIN_SO ? "security officer" : "user",
                c->token_label, hsmkeys_last_error(),
                rc == HSMKEYS_E_LOGIN ? " (check the PIN file; several wrong PINs lock the token)" : "");
        return -1;
    }
    return 0;
}

/* Load the module and find the token (hk_token_find looks again a few times
 * when SoftHSM2 shows no token while another process writes it). */
static int find_token(struct hkt_conn *c, const char *mod, const char *args)
{
    CK_TOKEN_INFO ti;
    int rc;
    if (hk_module_get(mod, args, &c->module) != HSMKEYS_OK) {
        hkt_err_lib("loading the PKCS#11 module");
        return -1;
    }
    c->f = hk_module_fns(c->module);
    rc = hk_token_find(c->module, c->uri, &c->slot);
    if (rc == HSMKEYS_OK)
        rc = hk_p11_check(c->f->C_GetTokenInfo(c->slot, &ti), "C_GetTokenInfo");
    if (rc != HSMKEYS_OK) {
        hkt_err_lib("finding the token");
        return -1;
    }
    hkt_label_copy(c->token_label, ti.label, sizeof ti.label);
    hkt_label_copy(c->token_serial, ti.serialNumber, sizeof ti.serialNumber);
    return 0;
}

int hkt_uri_refuse_pin(const char *uri)
{
    if (uri && strcasestr(uri, "pin-value")) {
        hkt_err("--uri carries pin-value=, which every local user can read in the process "
                "list and which stays in shell history: remove it; put the PIN in a file of "
                "mode 0600 and use pin-source=FILE (or --pin-source FILE), or let the tool "
                "prompt on the terminal");
        return -1;
    }
    return 0;
}

int hkt_conn_open(struct hkt_conn *c, const struct hkt_opts *o, int who)
{
    char buf[512];
    memset(c, 0, sizeof *c);
    c->session = CK_INVALID_HANDLE;
    if (!o->token && !o->uri) {
        hkt_err("no token selected: pass --token LABEL or --uri 'pkcs11:token=LABEL'");
        return -1;
    }
    if (token_uri(o, buf, sizeof buf) != 0)
        goto fail;
    if (hk_uri_parse(buf, &c->uri) != HSMKEYS_OK) {
        hkt_err_lib("token selection");
        goto fail;
    }
    if (hk_uri_has_pin_value(c->uri)) { /* however it was spelled */
        (void)hkt_uri_refuse_pin("pin-value");
        goto fail;
    }
    c->label = o->label ? o->label : hk_uri_object_label(c->uri);
    if (!c->label)
        c->label = HKT_DEFAULT_LABEL;
    if (hkt_uri_for("object", c->label, buf, sizeof buf) != 0 ||
        hk_uri_parse(buf, &c->master_uri) != HSMKEYS_OK) {
        hkt_err("--label %s: not a usable object label", c->label);
        goto fail;
    }
    const char *mod = o->module ? o->module : hk_uri_module_path(c->uri);
    if (!mod)
        mod = HKT_DEFAULT_MODULE;
    if (find_token(c, mod, o->module_args) != 0)
        goto fail;
    if (hk_session_open(c->module, c->slot, 1, &c->session) != HSMKEYS_OK) {
        hkt_err_lib("opening a session");
        goto fail;
    }
    if (who != HKT_LOGIN_NONE && login(c, o, who) != 0)
        goto fail;
    return 0;
fail:
    hkt_conn_close(c);
    return -1;
}

void hkt_conn_close(struct hkt_conn *c)
{
    if (c->module && c->session != CK_INVALID_HANDLE) {
        (void)c->f->C_Logout(c->session);
        hk_session_close(c->module, c->session);
    }
    c->session = CK_INVALID_HANDLE;
    if (c->module)
        hk_module_put(c->module);
    c->module = NULL;
    hk_uri_free(c->uri);
    hk_uri_free(c->master_uri);
    c->uri = c->master_uri = NULL;
}
