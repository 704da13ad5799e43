/*
 * chain.h - the forward-erasable chain of per-epoch states in a PKCS#11
 * token (docs/DERIVATION.md, "Forward-erasable epochs"), shared by the
 * chain key source (keysource_chain.c) and hsmkeys-tool.
 *
 * A state S(g, x) is a token secret key (CKK_GENERIC_SECRET, 32 bytes):
 * SENSITIVE, PRIVATE, SIGN only (no DERIVE, ENCRYPT, WRAP...), EXTRACTABLE
 * only under a trusted wrapping key (WRAP_WITH_TRUSTED: the cloning
 * ceremony), not COPYABLE, not MODIFIABLE.  Its attributes:
 *
 *   CKA_LABEL = <master label> " chain"
 *   CKA_ID    = 'H' 'K' 0x02 || [g]32 || [x]64 || nonce[8]   (23 bytes)
 *
 *   S(g, x+1) = KDF(S(g, x), "hsmkeys chain v1", [g]32 || [x+1]64, 32)
 *
 * computed by the token's HMAC (C_Sign) and imported with C_CreateObject;
 * the bytes are wiped at once.  Values are deterministic, so processes and
 * hosts that step at the same time make identical objects.  The first 15
 * bytes of CKA_ID (the chain id, also what a clone blob carries) name the
 * state; the creator's random nonce names the copy, so every process sees
 * the same order of copies (handles are per process and cannot serve): a
 * settler keeps the copy of the smallest nonce and destroys the others, and
 * settlers racing on one state all keep the same one.  Objects whose CKA_ID
 * is the bare 15-byte chain id (made before nonces) count as nonce 0.
 *
 * Threat: a state that outlives its window (it would let anyone with the
 * token recompute that epoch's keys): the chain source destroys it once its
 * epoch left the window plus one epoch; a state that could be derived from
 * (no CKA_DERIVE) or read (SENSITIVE) would defeat the erasure.
 */
#ifndef HSMKEYS_CHAIN_H
#define HSMKEYS_CHAIN_H

#include <stdint.h>
#include "p11.h"
#include "kdf.h"

#define HK_CHAIN_ID_LEN       15 /* the chain id: names the state (g, x) */
#define HK_CHAIN_NONCE_LEN    8  /* the creator's nonce: names the copy */
#define HK_CHAIN_OBJ_ID_LEN   (HK_CHAIN_ID_LEN + HK_CHAIN_NONCE_LEN)
#define HK_CHAIN_ID_VERSION   0x02
#define HK_CHAIN_STATE_LEN    32
#define HK_CHAIN_LABEL_SUFFIX " chain"
#define HK_CHAIN_LABEL_MAX    160

typedef struct hk_chain_state {
    CK_OBJECT_HANDLE handle;
    uint32_t generation;
    uint64_t epoch;
    uint64_t nonce; /* of the copy: the same in every process */
} hk_chain_state;

void hk_chain_id_encode(uint32_t generation, uint64_t epoch, unsigned char id[HK_CHAIN_ID_LEN]);
/* The 15-byte chain id.  Returns HSMKEYS_OK or HSMKEYS_E_MALFORMED. */
int hk_chain_id_decode(const unsigned char *id, size_t len, uint32_t *generation,
                       uint64_t *epoch);
/* A state object's CKA_ID: the chain id and a nonce (23 bytes), or the bare
 * chain id (nonce 0).  Returns HSMKEYS_OK or HSMKEYS_E_MALFORMED. */
int hk_chain_obj_id_decode(const unsigned char *id, size_t len, uint32_t *generation,
                           uint64_t *epoch, uint64_t *nonce);

/* The states' label for a master label (NULL: "hsmkeys-master"). */
int hk_chain_label(const char *master_label, char out[HK_CHAIN_LABEL_MAX]) HK_WARN_UNUSED;

/* Every state under `label`, sorted by (generation, epoch, nonce); *out
 * malloc'd.  Returns HSMKEYS_OK (n may be 0), HSMKEYS_E_TOKEN,
 * HSMKEYS_E_NOMEM. */
int hk_chain_list(hk_module *m, CK_SESSION_HANDLE s, const char *label, hk_chain_state **out,
                  size_t *n, CK_RV *rv) HK_WARN_UNUSED;

/* The state template with a fresh random nonce; the caller appends
 * CKA_VALUE or CKA_VALUE_LEN.  token = 0 makes a session object (a
 * catch-up's intermediate step). */
#define HK_CHAIN_TMPL_MAX 20
typedef struct hk_chain_tmpl {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    CK_BBOOL yes, no, token;
    CK_ULONG value_len;
    unsigned char id[HK_CHAIN_OBJ_ID_LEN];
    CK_ATTRIBUTE a[HK_CHAIN_TMPL_MAX];
    CK_ULONG n;
} hk_chain_tmpl;
void hk_chain_tmpl_init(hk_chain_tmpl *t, const char *label, uint32_t generation,
                        uint64_t epoch, int token);

/* Import S(g, x) from value (wiped by the caller).  Returns HSMKEYS_OK or
 * the checkpoint's code; *rv the raw CKR. */
int hk_chain_import(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t generation,
                    uint64_t epoch, int token, const unsigned char value[HK_CHAIN_STATE_LEN],
                    CK_OBJECT_HANDLE *out, CK_RV *rv) HK_WARN_UNUSED;

/* Generate S(g, x) inside the token (C_GenerateKey: no plaintext ever). */
int hk_chain_generate(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t generation,
                      uint64_t epoch, CK_OBJECT_HANDLE *out, CK_RV *rv) HK_WARN_UNUSED;

/* Make S(g, x+1) from the state `from` = S(g, x): token = 1 leaves exactly
 * one token object of (g, x+1) (creating it if none, destroying extras);
 * token = 0 makes a session object.  *out its handle. */
int hk_chain_step(hk_module *m, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE from,
                  uint32_t generation, uint64_t x, int token, CK_OBJECT_HANDLE *out,
                  CK_RV *rv) HK_WARN_UNUSED;

/* Leave exactly one token object of (g, x) if there is at least one: the
 * copy of the smallest nonce, which every settler keeps; *out its handle,
 * or CK_INVALID_HANDLE if none is left. */
int hk_chain_settle(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t generation,
                    uint64_t x, CK_OBJECT_HANDLE *out, CK_RV *rv) HK_WARN_UNUSED;

/* Destroy one object; one already gone (another process) is success. */
int hk_chain_destroy(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_RV *rv) HK_WARN_UNUSED;
/* Destroy the state (g, x) at handle h.  A module that failed the destroy
 * because another process deleted the object first (SoftHSM2's file store
 * answers CKR_FUNCTION_FAILED when the file is gone) is asked again: if a
 * new search no longer finds h, that is success too. */
int hk_chain_erase(hk_module *m, CK_SESSION_HANDLE s, const char *label, uint32_t generation,
                   uint64_t x, CK_OBJECT_HANDLE h, CK_RV *rv) HK_WARN_UNUSED;

/* Epoch keys in this mode (label: HK_LABEL_TICKET or HK_LABEL_CACHE, the
 * maintainer's kinds):
 *   keys = KDF(M, <v2 label>, D || [e]64, 64) XOR KDF(S(g,e), <state label>, D || [e]64, 64) */
int hk_chain_epoch_keys(hk_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE master,
                        CK_OBJECT_HANDLE state, const char *label, const char *domain,
                        uint64_t epoch, unsigned char out[HK_EPOCH_KEYS_LEN],
                        CK_RV *rv) HK_WARN_UNUSED;

#endif /* HSMKEYS_CHAIN_H */
