/*
 * sc_seal_test.c - engine/sesscache/sc_seal.c: the known answers of
 * tests/data/sesscache-vectors.txt (made independently by
 * gen-sesscache-vectors.py), every byte of every entry flipped, entries
 * under another ID or domain, expired, truncated and oversized entries,
 * and the session ID format.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "test.h"
#include "sc_seal.h"

typedef struct vec {
    unsigned char seal[32], idkey[32], id[64], domain[512], nonce[12];
    unsigned char pt[2048], entry[2048 + SC_OVERHEAD];
    size_t id_len, domain_len, pt_len, entry_len;
    unsigned long long epoch, expiry;
    char storekey[64];
} vec;

static size_t unhex(unsigned char *out, size_t cap, const char *s)
{
    size_t n = strlen(s) / 2;
    if (n > cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            abort();
        out[i] = (unsigned char)v;
    }
    return n;
}

static size_t load(const char *path, vec *v, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    size_t n = 0;

    if (f == NULL)
        return 0;
    memset(v, 0, sizeof *v);
    while (fgets(line, sizeof line, f) != NULL && n < max) {
        char *eq = strchr(line, '='), *val;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#')
            continue;
        if (line[0] == '\0') {
            n++;
            if (n < max)
                memset(&v[n], 0, sizeof v[n]);
            continue;
        }
        if (eq == NULL)
            abort();
        *eq = '\0';
        val = eq + 1;
        vec *c = &v[n];
        if (!strcmp(line, "seal")) unhex(c->seal, 32, val);
        else if (!strcmp(line, "idkey")) unhex(c->idkey, 32, val);
        else if (!strcmp(line, "id")) c->id_len = unhex(c->id, sizeof c->id, val);
        else if (!strcmp(line, "domain")) c->domain_len = unhex(c->domain, sizeof c->domain, val);
        else if (!strcmp(line, "epoch")) c->epoch = strtoull(val, NULL, 10);
        else if (!strcmp(line, "expiry")) c->expiry = strtoull(val, NULL, 10);
        else if (!strcmp(line, "nonce")) unhex(c->nonce, 12, val);
        else if (!strcmp(line, "pt")) c->pt_len = unhex(c->pt, sizeof c->pt, val);
        else if (!strcmp(line, "storekey")) snprintf(c->storekey, sizeof c->storekey, "%s", val);
        else if (!strcmp(line, "entry")) c->entry_len = unhex(c->entry, sizeof c->entry, val);
    }
    fclose(f);
    return n;
}

static sc_binding bind_of(const vec *v)
{
    sc_binding b = { v->id, v->id_len, (const char *)v->domain, v->domain_len,
                     v->epoch, (int64_t)v->expiry };
    return b;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void check_vector(size_t k, const vec *v)
{
    unsigned char out[sizeof v->entry], pt[sizeof v->pt];
    char name[160], key[SC_STORE_KEY_LEN + 1];
    sc_binding b = bind_of(v);
    size_t olen = 0, plen = 0;
    int64_t now = (int64_t)v->expiry - 1;

    snprintf(name, sizeof name, "vector %zu: seal, store key and open give the known answers", k);
    T_CASE(name) {
        T_EQ_INT(sc_seal(v->seal, &b, v->nonce, v->pt, v->pt_len, out, sizeof out, &olen), SC_OK);
        T_EQ_INT(olen, v->entry_len);
        T_EQ_MEM(out, v->entry, v->entry_len);
        T_EQ_INT(sc_store_key(v->idkey, v->id, v->id_len, key), SC_OK);
        T_EQ_STR(key, v->storekey);
        T_EQ_INT(sc_open(v->seal, &b, now, v->entry, v->entry_len, pt, sizeof pt, &plen), SC_OK);
        T_EQ_INT(plen, v->pt_len);
        T_EQ_MEM(pt, v->pt, v->pt_len);
    }

    snprintf(name, sizeof name, "vector %zu: every byte flipped is refused with its reason, nothing left in the buffer", k);
    T_CASE(name) {
        unsigned char e[sizeof v->entry];
        for (size_t i = 0; i < v->entry_len; i++) {
            int rc, want;
            memcpy(e, v->entry, v->entry_len);
            e[i] ^= 0x5a;
            memset(pt, 0, sizeof pt);
            rc = sc_open(v->seal, &b, now, e, v->entry_len, pt, sizeof pt, &plen);
            want = i == 0 ? SC_E_MALFORMED : i < 9 ? SC_E_EPOCH : SC_E_AUTH;
            if (i >= 9 && i < 17) /* expiry: earlier than now, or else the tag */
                want = rc == SC_E_EXPIRED ? SC_E_EXPIRED : SC_E_AUTH;
            if (rc != want)
                t_fail_at(__FILE__, __LINE__, "byte %zu flipped: %d (%s), want %d", i, rc,
                          sc_result_name(rc), want);
            if (!all_zero(pt, sizeof pt))
                t_fail_at(__FILE__, __LINE__, "byte %zu flipped: plaintext left in the buffer", i);
        }
    }

    snprintf(name, sizeof name, "vector %zu: another ID, another domain, another epoch, expired: refused", k);
    T_CASE(name) {
        unsigned char id2[64], dom2[520];
        sc_binding b2 = b;
        memcpy(id2, v->id, v->id_len);
        id2[v->id_len - 1] ^= 1;
        b2.id = id2;
        T_EQ_INT(sc_open(v->seal, &b2, now, v->entry, v->entry_len, pt, sizeof pt, &plen), SC_E_AUTH);
        b2 = b;
        memcpy(dom2, v->domain, v->domain_len);
        dom2[v->domain_len] = 'x';
        b2.domain = (const char *)dom2;
        b2.domain_len = v->domain_len + 1;
        T_EQ_INT(sc_open(v->seal, &b2, now, v->entry, v->entry_len, pt, sizeof pt, &plen), SC_E_AUTH);
        b2 = b;
        b2.epoch = v->epoch + 1;
        T_EQ_INT(sc_open(v->seal, &b2, now, v->entry, v->entry_len, pt, sizeof pt, &plen), SC_E_EPOCH);
        T_EQ_INT(sc_open(v->seal, &b, (int64_t)v->expiry, v->entry, v->entry_len, pt, sizeof pt, &plen),
                 SC_E_EXPIRED);
        unsigned char k2[32];
        memcpy(k2, v->seal, 32);
        k2[0] ^= 1;
        T_EQ_INT(sc_open(k2, &b, now, v->entry, v->entry_len, pt, sizeof pt, &plen), SC_E_AUTH);
    }

    snprintf(name, sizeof name, "vector %zu: every truncation is refused", k);
    T_CASE(name) {
        for (size_t n = 0; n < v->entry_len; n++) {
            int rc = sc_open(v->seal, &b, now, v->entry, n, pt, sizeof pt, &plen);
            if (rc != (n <= SC_OVERHEAD ? SC_E_MALFORMED : SC_E_AUTH))
                t_fail_at(__FILE__, __LINE__, "length %zu: %d (%s)", n, rc, sc_result_name(rc));
        }
    }
}

int main(void)
{
    static vec v[8];
    char path[512];
    const char *root = getenv("HSMKEYS_ROOT") ? getenv("HSMKEYS_ROOT") : ".";
    size_t n;

    snprintf(path, sizeof path, "%s/tests/data/sesscache-vectors.txt", root);
    n = load(path, v, 8);
    T_CASE("the vector file loads") { T_EQ_INT(n, 4); }
    for (size_t i = 0; i < n; i++)
        check_vector(i + 1, &v[i]);

    T_CASE("session IDs carry their epoch; other IDs are not ours") {
        unsigned char a[SC_ID_LEN], b[SC_ID_LEN];
        uint64_t e = 0;
        T_EQ_INT(sc_id_make(a, UINT64_C(0x0102030405060708)), SC_OK);
        T_EQ_INT(sc_id_make(b, UINT64_C(0x0102030405060708)), SC_OK);
        T_EQ_INT(a[0], SC_ID_VERSION);
        T_EQ_INT(sc_id_epoch(a, sizeof a, &e), SC_OK);
        T_EQ_INT(e, UINT64_C(0x0102030405060708));
        T_TRUE(memcmp(a + 9, b + 9, SC_ID_LEN - 9) != 0);
        T_EQ_INT(sc_id_epoch(a, 31, &e), SC_E_NOTOURS);
        a[0] = 0x02;
        T_EQ_INT(sc_id_epoch(a, sizeof a, &e), SC_E_NOTOURS);
        T_EQ_INT(sc_id_epoch(NULL, 0, &e), SC_E_NOTOURS);
    }

    T_CASE("random nonces: two seals of one session differ and both open") {
        unsigned char e1[200], e2[200], pt[200], id[SC_ID_LEN];
        unsigned char key[32] = { 7 };
        size_t l1 = 0, l2 = 0, pl = 0;
        sc_id_make(id, 5);
        sc_binding b = { id, sizeof id, "d", 1, 5, 2000 };
        T_EQ_INT(sc_seal(key, &b, NULL, (const unsigned char *)"session", 7, e1, sizeof e1, &l1), SC_OK);
        T_EQ_INT(sc_seal(key, &b, NULL, (const unsigned char *)"session", 7, e2, sizeof e2, &l2), SC_OK);
        T_TRUE(memcmp(e1, e2, l1) != 0);
        T_EQ_INT(sc_open(key, &b, 1999, e1, l1, pt, sizeof pt, &pl), SC_OK);
        T_EQ_INT(sc_open(key, &b, 1999, e2, l2, pt, sizeof pt, &pl), SC_OK);
        T_EQ_MEM(pt, "session", 7);
    }

    T_CASE("sizes: empty and oversized sessions, oversized entries, small buffers") {
        static unsigned char big[SC_ENTRY_MAX + 64], out[SC_ENTRY_MAX + 64];
        unsigned char key[32] = { 1 }, id[SC_ID_LEN] = { 1 };
        size_t l = 0, pl = 0;
        sc_binding b = { id, sizeof id, "d", 1, 0, 10 };
        T_EQ_INT(sc_seal(key, &b, NULL, big, 0, out, sizeof out, &l), SC_E_MALFORMED);
        T_EQ_INT(sc_seal(key, &b, NULL, big, SC_SESSION_MAX + 1, out, sizeof out, &l), SC_E_MALFORMED);
        T_EQ_INT(sc_seal(key, &b, NULL, big, SC_SESSION_MAX, out, sizeof out, &l), SC_OK);
        T_EQ_INT(l, SC_ENTRY_MAX);
        T_EQ_INT(sc_open(key, &b, 0, out, l, big, sizeof big, &pl), SC_OK);
        T_EQ_INT(sc_open(key, &b, 0, out, l, big, SC_SESSION_MAX - 1, &pl), SC_E_INTERNAL);
        memcpy(big, out, l);
        T_EQ_INT(sc_open(key, &b, 0, big, l + 1, out, sizeof out, &pl), SC_E_MALFORMED);
        T_EQ_INT(sc_seal(key, &b, NULL, big, 10, out, 10 + SC_OVERHEAD - 1, &l), SC_E_INTERNAL);
    }
    return t_done();
}
