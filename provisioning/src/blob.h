/*
 * blob.h - the wrapped-master file that host A sends to host B.
 *
 * Layout, version 2 (all integers big-endian):
 *   off  len
 *   0    4    magic "HKWB"
 *   4    1    version HKT_BLOB_VERSION (2)
 *   5    1    mechanism: 1 = CKM_RSA_PKCS_OAEP, SHA-1, MGF1-SHA1, no label
 *   6    32   target: SHA-256 of the transport public key's SubjectPublicKeyInfo
 *   38   15   master CKA_ID (master.h: 'HK' 01 || generation || activation)
 *   53   4    master CKA_KEY_TYPE
 *   57   8    key check value of the master (kdf.h)
 *   65   1    label length L (1..64)
 *   66   L    label
 *   66+L 2    wrapped length W (1..1024)
 *   68+L W    wrapped key (C_WrapKey output)
 *   ...  32   header MAC: computed by the token with the master itself,
 *             SP 800-108 (kdf.h) with label HKT_BLOB_MAC_LABEL and context
 *             SHA-256(every byte before the MAC) ("the body")
 *   ...  32   SHA-256 of everything before it
 * Threat: the blob travels by mail.  Only the target token can open it
 * (RSA-OAEP to its non-extractable private key).  The trailing checksum
 * detects corruption, not forgery.  Anyone can wrap a master of their own
 * for B's public key, so B checks the key check value against the one A's
 * operator reads out over another channel (unwrap --expect-kcv).  Anyone
 * can also edit the header (generation, activation, label, key type,
 * version) and recompute the checksum: the header MAC, which only a holder
 * of the master can compute, catches that.  B unwraps into a session
 * object, checks the key check value and the MAC with it, and only then
 * creates the token object.  Version 1 had no MAC and is refused.
 * SoftHSM2 2.6.1 offers OAEP with no label only, so the header cannot be
 * bound as the OAEP label.
 */
#ifndef HKT_BLOB_H
#define HKT_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include "tool.h"

#define HKT_BLOB_VERSION 0x02
#define HKT_BLOB_MAC_LABEL "hsmkeys wrapped blob header v2"
#define HKT_BLOB_MAC_LEN 32
#define HKT_BLOB_MECH_OAEP_SHA1 0x01
#define HKT_BLOB_MAX_LABEL 64
#define HKT_BLOB_MAX_WRAPPED 1024
#define HKT_BLOB_MAX (4 + 1 + 1 + HKT_FP_LEN + HK_MASTER_ID_LEN + 4 + HK_CHECK_VALUE_LEN + 1 + \
                      HKT_BLOB_MAX_LABEL + 2 + HKT_BLOB_MAX_WRAPPED + HKT_BLOB_MAC_LEN + 32)

struct hkt_blob {
    unsigned char mech;
    unsigned char target[HKT_FP_LEN];
    unsigned char id[HK_MASTER_ID_LEN];
    uint32_t key_type;
    unsigned char kcv[HK_CHECK_VALUE_LEN];
    char label[HKT_BLOB_MAX_LABEL + 1];
    unsigned char wrapped[HKT_BLOB_MAX_WRAPPED];
    size_t wrapped_len;
    unsigned char mac[HKT_BLOB_MAC_LEN];   /* header MAC (layout above) */
    unsigned char body_digest[32];         /* SHA-256 of the body: the MAC's context */
};

/* Serialize the body (everything before the MAC) into out (HKT_BLOB_MAX
 * bytes) and set b->body_digest; returns the body length or 0. */
size_t hkt_blob_encode_body(struct hkt_blob *b, unsigned char *out);
/* Serialize the whole file (body, b->mac, checksum); returns its length
 * or 0.  Sets b->body_digest too. */
size_t hkt_blob_encode(struct hkt_blob *b, unsigned char *out);
/* Parse; returns 0, or -1 with a message naming what is wrong.  Sets
 * b->mac and b->body_digest; the MAC itself is checked by the caller with
 * the unwrapped key (it needs the token). */
int hkt_blob_decode(const unsigned char *in, size_t len, struct hkt_blob *b);

/* cmd_wrap.c, shared with cmd_chain.c (chain states travel in the same
 * format; their CKA_ID has version byte 0x02, chain.h): the header MAC
 * computed by the token with `key`; this token's transport private key for
 * the blob (error printed if none); the check value and header MAC of an
 * unwrapped key against the blob's.  0 or -1 (error printed). */
int hkt_blob_mac(struct hkt_conn *c, CK_OBJECT_HANDLE key, const struct hkt_blob *b,
                 unsigned char mac[HKT_BLOB_MAC_LEN]);
int hkt_unwrap_key(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE *priv);
int hkt_check_unwrapped(struct hkt_conn *c, const struct hkt_blob *b, CK_OBJECT_HANDLE h);
/* unwrap of a chain-state blob (cmd_chain.c) */
int hkt_chain_unwrap(struct hkt_opts *o, const struct hkt_blob *b);

#endif /* HKT_BLOB_H */
