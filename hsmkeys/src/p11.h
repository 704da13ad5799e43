/*
 * p11.h - the PKCS#11 layer: modules, the CKR checkpoint, tokens, sessions.
 *
 * Modules are loaded by path with dlopen + C_GetFunctionList (no link-time
 * tie to any module) and shared process-wide: PKCS#11 allows one
 * C_Initialize per process, so every context using the same module path
 * shares one hk_module, reference counted.  After fork() the first caller in
 * the child calls C_Initialize again (network and PCIe HSMs need it; a module
 * that kept its state, like SoftHSM2, answers ALREADY_INITIALIZED and is then
 * never finalized by this process) and bumps the module's generation so each
 * context knows to open a new session and log in again.
 *
 * Every CK_RV passes through hk_p11_check(), the one checkpoint that turns
 * return values into hsmkeys_result codes with the function's name; tolerated
 * codes are handled there or named where they are tolerated.
 */
#ifndef HSMKEYS_P11_H
#define HSMKEYS_P11_H

#include <stdint.h>
#include <p11-kit/pkcs11.h>
#include "error.h"
#include "secret.h"

typedef struct hk_module hk_module;

/* Load (or share) the module at `path` and C_Initialize it, with `init_args`
 * (may be NULL) as CK_C_INITIALIZE_ARGS.pReserved.  Transient failures are
 * retried with backoff.  Returns HSMKEYS_OK, HSMKEYS_E_MODULE, HSMKEYS_E_NOMEM. */
int hk_module_get(const char *path, const char *init_args, hk_module **out) HK_WARN_UNUSED;
void hk_module_put(hk_module *m);
CK_FUNCTION_LIST_PTR hk_module_fns(const hk_module *m);
const char *hk_module_path(const hk_module *m);

/* If this process is a fork child of the one that initialised the module,
 * call C_Initialize again (never C_Finalize: see p11.c).  *generation
 * receives the module's generation: it changes on every re-initialisation.
 * Returns HSMKEYS_OK or HSMKEYS_E_MODULE. */
int hk_module_check_fork(hk_module *m, unsigned *generation) HK_WARN_UNUSED;

/* Every PKCS#11 call of the library goes through HK_FN, which counts it in
 * a per-thread counter: a caller reads the counter before and after an
 * operation to know exactly how many token calls it made (statistics). */
extern _Thread_local uint64_t hk_p11_thread_calls;
#define HK_FN(m, name) (hk_p11_thread_calls++, hk_module_fns(m)->name)

/* If this process is the module's only user and initialised it itself
 * (its C_Initialize returned CKR_OK in this process; after fork, a module
 * answering CKR_CRYPTOKI_ALREADY_INITIALIZED is not ours), finalize and
 * initialise it again (a token list read while another process was
 * writing the token can come back empty).  Otherwise do nothing: another
 * library in the process (libp11's engine) may hold sessions.
 * Returns HSMKEYS_OK or HSMKEYS_E_MODULE. */
int hk_module_reset_if_sole(hk_module *m) HK_WARN_UNUSED;

/* The checkpoint: HSMKEYS_OK for CKR_OK, else a code and a message naming
 * `fn` and the CKR.  Mapping: PIN_INCORRECT/PIN_LOCKED/PIN_EXPIRED/PIN_INVALID
 * -> E_LOGIN; TOKEN_NOT_PRESENT/DEVICE_REMOVED/DEVICE_ERROR/SESSION_* and
 * other runtime failures -> E_TOKEN; HOST_MEMORY -> E_NOMEM;
 * ARGUMENTS_BAD/ATTRIBUTE_* -> E_INVALID; KEY_* / MECHANISM_* -> E_NO_MASTER;
 * USER_NOT_LOGGED_IN / SESSION_READ_ONLY -> E_STATE. */
int hk_p11_check(CK_RV rv, const char *fn) HK_WARN_UNUSED;

/* True for codes after which a new session (and maybe re-initialisation)
 * may succeed: the session or device was lost, not the request refused. */
int hk_p11_rv_is_connection_lost(CK_RV rv);

/* Symbolic name of a CKR, e.g. "CKR_PIN_INCORRECT". */
const char *hk_ckr_name(CK_RV rv);

/* Retry a transient failure of `call` (CKR_DEVICE_ERROR, CKR_GENERAL_ERROR,
 * CKR_FUNCTION_FAILED, CKR_DEVICE_MEMORY, CKR_CANT_LOCK) up to a few times with
 * exponential backoff from 10 ms.  SoftHSM2 fails this way when many processes
 * initialise and log in at once (SoftHSMv2 #757). */
#define HK_P11_RETRIES 6
int hk_p11_transient(CK_RV rv);
void hk_p11_backoff_sleep(int attempt);

/* ---- URIs (RFC 7512) and PINs --------------------------------------------- */

typedef struct hk_uri hk_uri;

/* Parse a "pkcs11:" URI with p11-kit.  Accepted: token, manufacturer, model,
 * serial, object, id, type (secret-key), and the query attributes
 * module-path, module-name, pin-source, pin-value (tests only: a warning is
 * logged).  Returns HSMKEYS_OK, HSMKEYS_E_URI, HSMKEYS_E_NOMEM. */
int hk_uri_parse(const char *text, hk_uri **out) HK_WARN_UNUSED;
void hk_uri_free(hk_uri *u);
const char *hk_uri_module_path(const hk_uri *u); /* NULL if absent */
const char *hk_uri_pin_source(const hk_uri *u);  /* NULL if absent */
int hk_uri_has_pin_value(const hk_uri *u);
/* Copy the URI's pin-value (if any) into locked memory. */
int hk_uri_pin_value(const hk_uri *u, hk_secret *pin) HK_WARN_UNUSED;
/* Object selection: label (NULL if absent) and id (NULL/0 if absent). */
const char *hk_uri_object_label(const hk_uri *u);
const unsigned char *hk_uri_object_id(const hk_uri *u, size_t *len);
/* True if the token in slot matches the URI's token attributes. */
int hk_uri_match_token(const hk_uri *u, const CK_TOKEN_INFO *info);

/* Read a PIN file: refuses files that are not regular, that group or others
 * can read or write, or that are empty; strips one trailing newline.  The
 * PIN goes into locked memory; every temporary is wiped.
 * Returns HSMKEYS_OK, HSMKEYS_E_PIN, HSMKEYS_E_NOMEM. */
int hk_pin_read_file(const char *path, hk_secret *pin) HK_WARN_UNUSED;

/* Prompt on /dev/tty with echo off.  Returns HSMKEYS_OK, HSMKEYS_E_PIN. */
int hk_pin_prompt(const char *prompt, hk_secret *pin) HK_WARN_UNUSED;

/* ---- tokens and sessions ------------------------------------------------- */

/* Find the one slot whose token matches the URI.  When none is found, or
 * the listing fails, it looks again a few times with backoff, re-reading a
 * module only this process's caller uses (hk_module_reset_if_sole: callers
 * must re-read the module's generation afterwards).  Returns HSMKEYS_OK,
 * HSMKEYS_E_NO_TOKEN (none, or several: the message lists them),
 * HSMKEYS_E_TOKEN, HSMKEYS_E_MODULE. */
int hk_token_find(hk_module *m, const hk_uri *u, CK_SLOT_ID *slot) HK_WARN_UNUSED;

/* Open a session (read-write if rw), retrying transient failures. */
int hk_session_open(hk_module *m, CK_SLOT_ID slot, int rw,
                    CK_SESSION_HANDLE *out) HK_WARN_UNUSED;
void hk_session_close(hk_module *m, CK_SESSION_HANDLE s);

/* Log in as `user` (CKU_USER or CKU_SO), retrying transient failures;
 * CKR_USER_ALREADY_LOGGED_IN is success.  Returns HSMKEYS_OK, HSMKEYS_E_LOGIN,
 * HSMKEYS_E_TOKEN. */
int hk_login(hk_module *m, CK_SESSION_HANDLE s, CK_USER_TYPE user,
             const hk_secret *pin) HK_WARN_UNUSED;

/* Read one attribute of CK_BBOOL type: 1, 0, or -1 if unavailable. */
int hk_attr_bool(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                 CK_ATTRIBUTE_TYPE type);

/* HMAC-SHA256 of data with key `key` on the token (C_SignInit + C_Sign).
 * Returns HSMKEYS_OK or the checkpoint's code; *rv_out gets the raw CKR. */
int hk_hmac_sha256(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                   const unsigned char *data, size_t len, unsigned char out[32],
                   CK_RV *rv_out) HK_WARN_UNUSED;

#endif /* HSMKEYS_P11_H */
