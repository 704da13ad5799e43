/*
 * chain_test.c - the forward-erasable mode (keysource_chain.c, chain.c) on
 * SoftHSM2 tokens with a test clock:
 *  - known answers: tests/data/chain-vectors.txt (gen-vectors.py --chain,
 *    Python's hmac) for names, ticket keys, session cache keys and epoch
 *    check values, through the chain the token itself steps forward;
 *  - erasure: no state older than the window + 1 epoch stays on the token,
 *    and an erased epoch costs no token call;
 *  - catch-up: a token left behind computes forward from the state it holds
 *    and agrees with the fleet;
 *  - duplicates (a killed or racing creator): settled to one per epoch;
 *  - static and forward-erasable names never resolve in the other mode.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "softhsm.h"
#include "kdf.h"
#include "chain.h"
#include "tls.h"
#include <hsmkeys/hsmkeys_ssl.h>

#define P 3600
#define X0 472222

typedef struct cvec {
    char domain[64];
    uint32_t generation;
    uint64_t epoch;
    unsigned char name[16], aes[32], hmac[32], cache[64], ekcv[8];
} cvec;

static size_t load(const char *path, cvec *v, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[400], key[32], val[300];
    size_t n = 0;
    int bad = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL && n < max) {
        if (sscanf(line, "%31s = %299s", key, val) != 2) {
            if (line[0] == '\n' && v[n].epoch + 1 > 0 && v[n].domain[0])
                n++;
            continue;
        }
        if (!strcmp(key, "domain")) snprintf(v[n].domain, sizeof v[n].domain, "%.63s", val);
        else if (!strcmp(key, "generation")) v[n].generation = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "epoch")) v[n].epoch = strtoull(val, NULL, 10);
        else if (!strcmp(key, "name")) bad |= t_unhex(val, v[n].name, 16);
        else if (!strcmp(key, "aes")) bad |= t_unhex(val, v[n].aes, 32);
        else if (!strcmp(key, "hmac")) bad |= t_unhex(val, v[n].hmac, 32);
        else if (!strcmp(key, "cache")) bad |= t_unhex(val, v[n].cache, 64);
        else if (!strcmp(key, "epoch_kcv")) bad |= t_unhex(val, v[n].ekcv, 8);
    }
    fclose(f);
    return bad ? 0 : n;
}

static int64_t clock_read(void *arg) { return *(int64_t *)arg; }
static void quiet(void *arg, int level, const char *msg) { (void)arg; (void)level; (void)msg; }

static hsmkeys_ctx *open_fe(const t_hsm *h, const char *token, const char *domain, int fe,
                            int64_t *now)
{
    char uri[700];
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    t_uri(uri, sizeof uri, token, h->pin_file);
    if (hsmkeys_config_new(&c) == HSMKEYS_OK && hsmkeys_config_set(c, "uri", uri) == 0 &&
        hsmkeys_config_set(c, "domain", domain) == 0 && hsmkeys_config_set(c, "epoch", "1h") == 0 &&
        hsmkeys_config_set(c, "lifetime", "2h") == 0 &&
        hsmkeys_config_set(c, "session-cache", "yes") == 0 &&
        hsmkeys_config_set(c, "forward-erasable", fe ? "yes" : "no") == 0) {
        hsmkeys_config_set_log(c, quiet, NULL);
        hsmkeys_config_set_clock(c, clock_read, now);
        if (hsmkeys_open(c, &ctx) != HSMKEYS_OK) {
            fprintf(stderr, "# open %s: %s\n", token, hsmkeys_last_error());
            ctx = NULL;
        }
    }
    hsmkeys_config_free(c);
    return ctx;
}

/* States on a token: count, oldest and newest epoch of generation g, and
 * whether some epoch appears twice. */
static void states(const char *token, uint32_t g, size_t *count, uint64_t *lo, uint64_t *hi,
                   int *dup)
{
    uint32_t gens[256];
    uint64_t ep[256];
    size_t n = 0, i;
    *count = 0;
    *lo = UINT64_MAX;
    *hi = 0;
    *dup = 0;
    if (t_chain_list(T_SOFTHSM_MODULE, token, T_USER_PIN, gens, ep, 256, &n) != 0)
        return;
    for (i = 0; i < n; i++) {
        if (gens[i] != g)
            continue;
        (*count)++;
        if (ep[i] < *lo) *lo = ep[i];
        if (ep[i] > *hi) *hi = ep[i];
        if (i > 0 && gens[i - 1] == g && ep[i - 1] == ep[i])
            *dup = 1;
    }
}

int main(void)
{
    t_hsm h;
    cvec v[8];
    char path[512];
    const char *root = getenv("HSMKEYS_ROOT") ? getenv("HSMKEYS_ROOT") : ".";
    unsigned char st[32], name[16], aes[32], hmac[32], seal[32], idk[32], keys[64], kcv[8];
    int64_t now = (int64_t)X0 * P + 10, now2;
    size_t nv, count;
    uint64_t lo, hi;
    int dup;
    hsmkeys_ctx *a = NULL, *b = NULL;
    hsmkeys_stats s1, s2;

    snprintf(path, sizeof path, "%s/tests/data/chain-vectors.txt", root);
    nv = load(path, v, 8);
    T_CASE("chain vectors load (gen-vectors.py --chain)") { T_EQ_INT(nv, 5); }
    if (t_fleet_setup(&h) != 0 || t_hsm_reset_on_fork(&h) != 0) {
        t_skip("forward-erasable suite", "SoftHSM2 set-up failed");
        return t_done();
    }
    t_state_from_seed("fleet", st);

    T_CASE("a state's CKA_ID: the chain id and the creator's nonce; the bare chain id is nonce 0") {
        unsigned char id[HK_CHAIN_OBJ_ID_LEN];
        uint32_t g = 0;
        uint64_t x = 0, nonce = 1;
        hk_chain_id_encode(3, 123456789, id);
        for (int k = 0; k < HK_CHAIN_NONCE_LEN; k++)
            id[HK_CHAIN_ID_LEN + k] = (unsigned char)(0xa0 + k);
        T_RC(hk_chain_obj_id_decode(id, sizeof id, &g, &x, &nonce), HSMKEYS_OK);
        T_EQ_INT(g, 3);
        T_EQ_INT(x, 123456789);
        T_TRUE(nonce == 0xa0a1a2a3a4a5a6a7ULL);
        T_RC(hk_chain_obj_id_decode(id, HK_CHAIN_ID_LEN, &g, &x, &nonce), HSMKEYS_OK);
        T_TRUE(nonce == 0);
        T_RC(hk_chain_obj_id_decode(id, HK_CHAIN_ID_LEN + 1, &g, &x, &nonce), HSMKEYS_E_MALFORMED);
        id[2] = 0x01; /* a master's id */
        T_RC(hk_chain_obj_id_decode(id, sizeof id, &g, &x, &nonce), HSMKEYS_E_MALFORMED);
    }

    T_CASE("open refuses a token with no chain state, naming the fix") {
        T_TRUE(open_fe(&h, "S1", "www.example.com", 1, &now) == NULL);
        T_CONTAINS(hsmkeys_last_error(), "hsmkeys-tool create --forward-erasable");
    }

    T_CASE("known answers: names, ticket keys, cache keys, epoch check values") {
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, st, 1, X0), 0);
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S2", T_USER_PIN, st, 1, X0), 0);
        a = open_fe(&h, "S1", "www.example.com", 1, &now);
        T_TRUE(a != NULL);
        for (size_t i = 0; a != NULL && i < nv; i++) {
            if (strcmp(v[i].domain, "www.example.com") != 0)
                continue;
            now = (int64_t)v[i].epoch * P + 10; /* the token steps the chain itself */
            T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
            T_RC(hsmkeys_epoch_key(a, v[i].epoch, name, aes, hmac), HSMKEYS_OK);
            T_EQ_MEM(name, v[i].name, 16);
            T_EQ_MEM(aes, v[i].aes, 32);
            T_EQ_MEM(hmac, v[i].hmac, 32);
            T_RC(hsmkeys_cache_key(a, v[i].epoch, seal, idk), HSMKEYS_OK);
            T_EQ_MEM(seal, v[i].cache, 32);
            T_EQ_MEM(idk, v[i].cache + 32, 32);
            memcpy(keys, aes, 32);
            memcpy(keys + 32, hmac, 32);
            T_RC(hk_epoch_check_value(keys, kcv), HSMKEYS_OK);
            T_EQ_MEM(kcv, v[i].ekcv, 8);
        }
    }

    T_CASE("the token holds exactly the states of [e - past - 1, e + 1], one each") {
        /* past = 2 (lifetime 2h, epoch 1h); e = X0 + 2 after the vectors */
        states("S1", 1, &count, &lo, &hi, &dup);
        T_EQ_INT(lo, X0);          /* X0 + 2 - 2 - 1 < X0: nothing older existed */
        T_EQ_INT(hi, X0 + 3);
        T_EQ_INT(count, 4);
        T_EQ_INT(dup, 0);
        now = (int64_t)(X0 + 10) * P + 10;
        T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
        states("S1", 1, &count, &lo, &hi, &dup);
        T_EQ_INT(lo, X0 + 10 - 2 - 1);
        T_EQ_INT(hi, X0 + 11);
        T_EQ_INT(count, 5);
        T_EQ_INT(dup, 0);
    }

    if (T_UNDER_TSAN)
        t_skip("a forked child derives the parent's keys", "a maintainer started in a fork child (TSan)");
    else T_CASE("a forked child derives the parent's keys although its module numbers the objects afresh") {
        /* SoftHSM2 resets itself in a child (as a p11-kit remote restarted
         * does): handles the parent held may name other objects there, so
         * the child must look the master up again, not reuse its handle */
        unsigned char pa[32], ph[32], pn[16];
        uint64_t e = (uint64_t)(now / P);
        int fd[2] = { -1, -1 }, ws = -1;
        char verdict = '?';
        pid_t pid = -1;
        T_RC(hsmkeys_epoch_key(a, e, pn, pa, ph), HSMKEYS_OK);
        T_TRUE(pipe(fd) == 0);
        t_quiesce(a, NULL);
        if (fd[0] >= 0)
            pid = fork();
        if (pid == 0) {
            char r;
            close(fd[0]);
            hsmkeys_forget(a); /* nothing cached: the child derives for itself */
            if (hsmkeys_epoch_key(a, e, name, aes, hmac) != HSMKEYS_OK)
                r = 'E';
            else
                r = memcmp(name, pn, 16) == 0 && memcmp(aes, pa, 32) == 0 &&
                    memcmp(hmac, ph, 32) == 0 ? '=' : '!';
            if (write(fd[1], &r, 1) != 1)
                _exit(3);
            _exit(0);
        }
        T_TRUE(pid > 0);
        if (pid > 0) {
            close(fd[1]);
            T_TRUE(read(fd[0], &verdict, 1) == 1);
            close(fd[0]);
            waitpid(pid, &ws, 0);
        }
        T_EQ_INT(verdict, '=');
        hsmkeys_wipe(pa, sizeof pa);
        hsmkeys_wipe(ph, sizeof ph);
    }

    T_CASE("an erased epoch: refused with no token call") {
        hsmkeys_get_stats(a, &s1);
        T_RC(hsmkeys_epoch_key(a, X0, name, aes, hmac), HSMKEYS_E_EXPIRED);
        hsmkeys_get_stats(a, &s2);
        T_EQ_INT(s2.token_calls, s1.token_calls);
    }

    T_CASE("a TLS 1.2 ticket of an erased epoch: full handshake, no token call") {
        SSL_CTX *srv = t_server_ctx(TLS1_2_VERSION, "EC"), *cli = t_client_ctx(TLS1_2_VERSION);
        t_hs h1, h2, h3;
        memset(&h1, 0, sizeof h1);
        memset(&h2, 0, sizeof h2);
        memset(&h3, 0, sizeof h3);
        T_TRUE(srv != NULL && cli != NULL && hsmkeys_ssl_attach(srv, a) == HSMKEYS_OK);
        T_EQ_INT(t_handshake(cli, srv, NULL, &h1), 0);
        T_TRUE(h1.has_ticket);
        T_EQ_INT(t_handshake(cli, srv, h1.session, &h2), 0);
        T_EQ_INT(h2.resumed, 1); /* in the window: resumes */
        now += 4 * P;            /* its epoch left the window and the slack */
        T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
        hsmkeys_get_stats(a, &s1);
        T_EQ_INT(t_handshake(cli, srv, h1.session, &h3), 0);
        hsmkeys_get_stats(a, &s2);
        T_EQ_INT(h3.resumed, 0);
        T_EQ_INT(s2.token_calls, s1.token_calls);
        T_EQ_INT(s2.refused_window, s1.refused_window + 1);
        t_hs_clear(&h1);
        t_hs_clear(&h2);
        t_hs_clear(&h3);
        SSL_CTX_free(srv);
        SSL_CTX_free(cli);
    }

    T_CASE("catch-up: a token left alone for fourteen epochs computes forward and agrees") {
        /* S2 still holds only S(1, X0); S1 is at X0 + 14 */
        unsigned char aes2[32], hmac2[32], name2[16];
        b = open_fe(&h, "S2", "www.example.com", 1, &now);
        T_TRUE(b != NULL);
        T_RC(hsmkeys_epoch_key(a, X0 + 14, name, aes, hmac), HSMKEYS_OK);
        T_RC(b ? hsmkeys_epoch_key(b, X0 + 14, name2, aes2, hmac2) : -1, HSMKEYS_OK);
        T_EQ_MEM(name, name2, 16);
        T_EQ_MEM(aes, aes2, 32);
        T_EQ_MEM(hmac, hmac2, 32);
        states("S2", 1, &count, &lo, &hi, &dup);
        T_EQ_INT(lo, X0 + 14 - 3); /* the old state is gone, the steps between never stored */
        T_EQ_INT(count, 5);
    }

    T_CASE("duplicates a killed creator left are settled to one per epoch") {
        /* plant a second copy of the next epoch's and an expired state */
        unsigned char v2[32];
        t_state_from_seed("fleet", v2); /* the value does not matter for the count */
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, v2, 1, X0 + 16), 0);
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, v2, 1, X0 + 16), 0);
        T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, v2, 1, X0 + 1), 0);
        states("S1", 1, &count, &lo, &hi, &dup);
        T_EQ_INT(dup, 1);
        now = (int64_t)(X0 + 15) * P + 10;
        T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
        states("S1", 1, &count, &lo, &hi, &dup);
        T_EQ_INT(dup, 0);
        T_EQ_INT(lo, X0 + 15 - 3);
        T_EQ_INT(hi, X0 + 16);
        T_EQ_INT(count, 5);
    }

    T_CASE("settlers in racing processes all keep one copy: the smallest creator nonce") {
        unsigned char v3[32];
        uint64_t before[8], after[8];
        size_t nb = 0, na = 0, k;
        int go[2] = { -1, -1 }, ws, okc = 1;
        pid_t kids[3];
        t_state_from_seed("fleet", v3);
        for (k = 0; k < 4; k++)
            T_EQ_INT(t_chain_import(T_SOFTHSM_MODULE, "S2", T_USER_PIN, v3, 7, X0 + 40), 0);
        T_EQ_INT(t_chain_copies(T_SOFTHSM_MODULE, "S2", T_USER_PIN, 7, X0 + 40, before, 8, &nb), 0);
        T_EQ_INT(nb, 4); /* four copies, four distinct nonces */
        T_TRUE(nb == 4 && before[0] < before[1] && before[1] < before[2] && before[2] < before[3]);
        T_TRUE(pipe(go) == 0);
        t_quiesce(a, b);
        for (k = 0; k < 3; k++) {
            kids[k] = fork();
            if (kids[k] == 0) { /* three processes settle at the same moment */
                char c;
                int tries, ok = 0;
                close(go[1]);
                if (read(go[0], &c, 1) < 0)
                    _exit(2);
                /* SoftHSM2's file store can lose the token for good in a
                 * process that reads it while another rewrites it (see
                 * PROVISIONING.md); then this child starts its module again */
                for (tries = 0; tries < 3 && !ok; tries++) {
                    ok = t_chain_settle(T_SOFTHSM_MODULE, "S2", T_USER_PIN, 7, X0 + 40) == 0;
                    if (!ok && t_module_restart(T_SOFTHSM_MODULE) != 0)
                        break;
                }
                _exit(ok ? 0 : 1);
            }
        }
        close(go[0]);
        close(go[1]); /* EOF: all go */
        for (k = 0; k < 3; k++) {
            ws = -1;
            if (kids[k] > 0)
                waitpid(kids[k], &ws, 0);
            okc &= kids[k] > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
        }
        T_TRUE(okc);
        T_EQ_INT(t_chain_copies(T_SOFTHSM_MODULE, "S2", T_USER_PIN, 7, X0 + 40, after, 8, &na), 0);
        T_EQ_INT(na, 1);
        T_TRUE(na == 1 && after[0] == before[0]);
    }

    T_CASE("static and forward-erasable fleets never take each other's names") {
        int renew = 0;
        hsmkeys_ctx *st_ctx;
        now2 = now;
        st_ctx = open_fe(&h, "S1", "www.example.com", 0, &now2);
        T_TRUE(st_ctx != NULL);
        T_RC(hsmkeys_encrypt_key(a, name, aes, hmac), HSMKEYS_OK);
        if (st_ctx != NULL) {
            hsmkeys_get_stats(st_ctx, &s1);
            T_RC(hsmkeys_decrypt_key(st_ctx, name, aes, hmac, &renew), HSMKEYS_E_FOREIGN);
            hsmkeys_get_stats(st_ctx, &s2);
            T_EQ_INT(s2.token_calls, s1.token_calls);
            T_RC(hsmkeys_encrypt_key(st_ctx, name, aes, hmac), HSMKEYS_OK);
            T_RC(hsmkeys_decrypt_key(a, name, aes, hmac, &renew), HSMKEYS_E_FOREIGN);
            hsmkeys_close(st_ctx);
        }
    }

    hsmkeys_close(a);
    hsmkeys_close(b);
    t_hsm_cleanup(&h);
    return t_done();
}
