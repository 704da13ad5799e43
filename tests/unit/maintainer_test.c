/*
 * maintainer_test.c - hsmkeys/src/maintainer.c on a real SoftHSM2 token with
 * an injected clock: keys derived ahead of need (no handshake involved),
 * generations added and destroyed on the token taken up live, the forged-name
 * bound (no token call for any name outside the target set), and expiry.
 *
 * Token "gens" holds four masters of known values:
 *   g1 retired   (active from the start until g2)
 *   g2 active    (since 10 epochs before T0)
 *   g3 scheduled (activates 100 epochs after T0)
 *   g4 destroyed (between g1 and g2; deleted from the token during the test)
 */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys.h>
#include "test.h"
#include "softhsm.h"
#include "refkdf.h"
#include "master.h"

#define EPOCH 60
#define T0 ((int64_t)1700000000 / EPOCH * EPOCH + 5)
#define DOMAIN "maint.test"

static int64_t now_s = T0;

static int64_t clock_fn(void *arg)
{
    (void)arg;
    return __atomic_load_n(&now_s, __ATOMIC_RELAXED);
}

static void tag_of(const char *seed, unsigned char tag[9])
{
    unsigned char m[32], out[32];
    t_master_from_seed(seed, m);
    t_ref_kdf(m, 32, "hsmkeys key name v1", (const unsigned char *)DOMAIN, strlen(DOMAIN), out, 9);
    memcpy(tag, out, 9);
    hsmkeys_wipe(m, sizeof m);
}

static void name_of(const unsigned char tag[9], uint64_t epoch, unsigned char name[16])
{
    int i;
    name[0] = 1;
    memcpy(name + 1, tag, 9);
    for (i = 0; i < 6; i++)
        name[10 + i] = (unsigned char)(epoch >> (8 * (5 - i)));
}

static int import(const char *seed, uint32_t gen, int64_t activation)
{
    unsigned char m[32];
    t_master_opts o = { 0 };
    int rc;
    o.generation = gen;
    o.activation = activation;
    t_master_from_seed(seed, m);
    rc = t_master_import(T_SOFTHSM_MODULE, "gens", T_USER_PIN, m, sizeof m, &o);
    hsmkeys_wipe(m, sizeof m);
    return rc;
}

/* Destroy the master of generation `gen` on token "gens" (as
 * hsmkeys-tool destroy does, through a session of our own). */
static int destroy_generation(uint32_t gen)
{
    hk_module *m = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slots[8];
    CK_ULONG ns = 8, found = 0, i;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE find = { CKA_CLASS, &cls, sizeof cls };
    CK_OBJECT_HANDLE h[16];
    int rc = -1;

    if (hk_module_get(T_SOFTHSM_MODULE, NULL, &m) != HSMKEYS_OK)
        return -1;
    f = hk_module_fns(m);
    if (f->C_GetSlotList(CK_TRUE, slots, &ns) == CKR_OK &&
        f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) == CKR_OK) {
        (void)f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USER_PIN, strlen(T_USER_PIN));
        if (f->C_FindObjectsInit(s, &find, 1) == CKR_OK) {
            (void)f->C_FindObjects(s, h, 16, &found);
            (void)f->C_FindObjectsFinal(s);
        }
        for (i = 0; i < found; i++) {
            unsigned char id[32];
            CK_ATTRIBUTE a = { CKA_ID, id, sizeof id };
            uint32_t g;
            int64_t act;
            if (f->C_GetAttributeValue(s, h[i], &a, 1) == CKR_OK &&
                hk_master_id_decode(id, a.ulValueLen, &g, &act) == HSMKEYS_OK && g == gen)
                rc = f->C_DestroyObject(s, h[i]) == CKR_OK ? 0 : -1;
        }
        (void)f->C_CloseSession(s);
    }
    hk_module_put(m);
    return rc;
}

static uint64_t stat_calls(hsmkeys_ctx *c)
{
    hsmkeys_stats st;
    hsmkeys_get_stats(c, &st);
    return st.token_calls;
}

static uint64_t stat_derivations(hsmkeys_ctx *c)
{
    hsmkeys_stats st;
    hsmkeys_get_stats(c, &st);
    return st.token_derivations;
}

/* Threads of this process named hsmkeys-maint; *blocked (if given) counts
 * those that block every signal servers use to talk to their threads. */
static int maint_threads(int *blocked)
{
    char path[80], line[256];
    int maint = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    if (blocked != NULL)
        *blocked = 0;
    while (d != NULL && (de = readdir(d)) != NULL) {
        FILE *f;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/comm", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        line[0] = '\0';
        if (fgets(line, sizeof line, f) == NULL || strncmp(line, "hsmkeys-maint", 13) != 0) {
            fclose(f);
            continue; /* this thread, or a sanitizer's */
        }
        fclose(f);
        maint++;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/status", de->d_name);
        if (blocked == NULL || (f = fopen(path, "r")) == NULL)
            continue;
        while (fgets(line, sizeof line, f)) {
            unsigned long long mask;
            if (strncmp(line, "SigBlk:", 7) != 0 || sscanf(line + 7, "%llx", &mask) != 1)
                continue;
            /* bit n-1 is signal n */
            if ((mask >> (SIGHUP - 1) & 1) && (mask >> (SIGINT - 1) & 1) &&
                (mask >> (SIGQUIT - 1) & 1) && (mask >> (SIGTERM - 1) & 1) &&
                (mask >> (SIGUSR1 - 1) & 1) && (mask >> (SIGUSR2 - 1) & 1) &&
                (mask >> (SIGWINCH - 1) & 1) && (mask >> (SIGCHLD - 1) & 1))
                (*blocked)++;
        }
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return maint;
}

/* Registered before the first open, so it runs after hsmkeys' own exit
 * handler (and where OpenSSL's cleanup would): in the exit test's child it
 * reports how many maintainer threads are left. */
static int exit_probe_fd = -1;
static void exit_probe(void)
{
    char c;
    if (exit_probe_fd < 0)
        return;
    c = (char)('0' + maint_threads(NULL));
    if (write(exit_probe_fd, &c, 1) != 1) {
        /* the parent sees no answer and fails */
    }
    _exit(0); /* the rest of exit() (LeakSanitizer's report of what the test kept) is not ours */
}

int main(void)
{
    t_hsm h;
    hsmkeys_ctx *ctx = NULL;
    unsigned char tags[4][9], name[16], aes[32], mac[32];
    uint64_t e0 = (uint64_t)(T0 / EPOCH), calls0, der0;
    char uri[700];
    int renew, i;

    atexit(exit_probe);
    if (t_hsm_setup(&h) != 0 || t_token_init(T_SOFTHSM_MODULE, "gens", T_SO_PIN, T_USER_PIN) != 0 ||
        import("g1", 1, 0) != 0 || import("g4", 4, T0 - 20 * EPOCH) != 0 ||
        import("g2", 2, T0 - 10 * EPOCH) != 0 || import("g3", 3, T0 + 100 * EPOCH) != 0) {
        printf("not ok 1 - set-up: token with four generations\n");
        return 1;
    }
    tag_of("g1", tags[0]); tag_of("g2", tags[1]); tag_of("g3", tags[2]); tag_of("g4", tags[3]);
    t_uri(uri, sizeof uri, "gens", h.pin_file);

    T_CASE("open on a token of four generations") {
        hsmkeys_config *c;
        T_RC(hsmkeys_config_new(&c), HSMKEYS_OK);
        hsmkeys_config_set(c, "uri", uri);
        hsmkeys_config_set(c, "domain", DOMAIN);
        hsmkeys_config_set(c, "epoch", "60");
        hsmkeys_config_set(c, "lifetime", "120");
        hsmkeys_config_set_clock(c, clock_fn, NULL);
        T_RC(hsmkeys_open(c, &ctx), HSMKEYS_OK);
        hsmkeys_config_free(c);
    }
    if (ctx == NULL)
        return t_done();

    T_CASE("the window [e-2, e+1] is cached at open: 4 derivations, 0 calls to read it") {
        T_EQ_INT(stat_derivations(ctx), 4);
        calls0 = stat_calls(ctx);
        for (i = -2; i <= 1; i++) {
            T_RC(hsmkeys_epoch_key(ctx, e0 + (uint64_t)i, name, aes, mac), HSMKEYS_OK);
            T_EQ_MEM(name + 1, tags[1], 9); /* under the active generation g2 */
        }
        T_EQ_INT(stat_calls(ctx) - calls0, 0);
    }

    T_CASE("10,000 forged names over four generations and every window epoch: 0 token calls") {
        int ok = 0, foreign = 0, other = 0;
        T_RC(hsmkeys_start(ctx, 1000), HSMKEYS_OK);
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK); /* one settled cycle first */
        T_RC(destroy_generation(4), 0);         /* g4 leaves the token ... */
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK); /* ... and the fleet's view */
        calls0 = stat_calls(ctx);
        der0 = stat_derivations(ctx);
        for (i = 0; i < 10000; i++) {
            int g = i % 4;
            uint64_t x = e0 - 2 + (uint64_t)((i / 4) % 4); /* e-2 .. e+1 */
            int rc;
            name_of(tags[g], x, name);
            rc = hsmkeys_decrypt_key(ctx, name, aes, mac, &renew);
            if (rc == HSMKEYS_OK && g == 1)
                ok++;
            else if (rc == HSMKEYS_E_FOREIGN && g != 1)
                foreign++;
            else
                other++;
        }
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
        printf("# forged names: %d resumed (active g2), %d refused (g1 retired, g3 scheduled, "
               "g4 destroyed), %d other; token calls %llu, derivations %llu\n", ok, foreign,
               other, (unsigned long long)(stat_calls(ctx) - calls0),
               (unsigned long long)(stat_derivations(ctx) - der0));
        T_EQ_INT(ok, 2500);
        T_EQ_INT(foreign, 7500);
        T_EQ_INT(other, 0);
        T_EQ_INT(stat_calls(ctx) - calls0, 0);
        T_EQ_INT(stat_derivations(ctx) - der0, 0);
    }

    T_CASE("a generation added on the token encrypts from its activation, no restart") {
        T_RC(import("g5", 5, (int64_t)(e0 + 2) * EPOCH), 0); /* at the boundary of e+2 */
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        T_RC(hsmkeys_encrypt_key(ctx, name, aes, mac), HSMKEYS_OK);
        T_EQ_MEM(name + 1, tags[1], 9);              /* still g2 now */
        __atomic_store_n(&now_s, T0 + 2 * EPOCH, __ATOMIC_RELAXED);                      /* the activation epoch */
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        T_RC(hsmkeys_encrypt_key(ctx, name, aes, mac), HSMKEYS_OK);
        {
            unsigned char t5[9];
            tag_of("g5", t5);
            T_EQ_MEM(name + 1, t5, 9);               /* now g5 */
        }
        /* a ticket of g2 from the epoch before still resumes, renewed */
        name_of(tags[1], e0 + 1, name);
        T_RC(hsmkeys_decrypt_key(ctx, name, aes, mac, &renew), HSMKEYS_OK);
        T_EQ_INT(renew, 1);
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
    }

    T_CASE("the next epoch is derived ahead of need by the maintainer, with no handshake") {
        __atomic_store_n(&now_s, T0 + 3 * EPOCH, __ATOMIC_RELAXED);
        der0 = stat_derivations(ctx);
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);      /* one cycle at the new time */
        T_TRUE(stat_derivations(ctx) > der0);
        calls0 = stat_calls(ctx);
        T_RC(hsmkeys_epoch_key(ctx, e0 + 4, name, aes, mac), HSMKEYS_OK);
        T_EQ_INT(stat_calls(ctx) - calls0, 0);       /* was already cached */
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
    }

    T_CASE("destroying the active generation's predecessor: no error, no backoff") {
        hsmkeys_stats st;
        T_RC(destroy_generation(2), 0);
        __atomic_store_n(&now_s, T0 + 6 * EPOCH, __ATOMIC_RELAXED);                      /* g2 has left every window */
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        hsmkeys_get_stats(ctx, &st);
        T_EQ_INT(st.token_errors, 0);
        T_RC(hsmkeys_encrypt_key(ctx, name, aes, mac), HSMKEYS_OK);
        name_of(tags[1], e0 + 5, name);
        T_RC(hsmkeys_decrypt_key(ctx, name, aes, mac, &renew), HSMKEYS_E_FOREIGN);
        hsmkeys_wipe(aes, sizeof aes);
        hsmkeys_wipe(mac, sizeof mac);
    }

    T_CASE("the maintainer thread (named hsmkeys-maint) blocks every signal the server uses") {
        int blocked = 0;
        T_EQ_INT(maint_threads(&blocked), 1); /* one context, one maintainer in this process */
        T_EQ_INT(blocked, 1);
    }

    if (T_UNDER_TSAN)
        t_skip("exit() with the maintainer running", "a maintainer started in a fork child (TSan)");
    else T_CASE("exit() with the maintainer running: no maintainer thread is left for later exit handlers") {
        int fd[2] = { -1, -1 }, st = 0;
        char got[8] = "";
        pid_t pid = -1;
        T_TRUE(pipe(fd) == 0);
        t_quiesce(ctx, NULL);
        if (fd[0] >= 0)
            pid = fork();
        if (pid == 0) {
            close(fd[0]);
            /* the child starts its own maintainer, then leaves by exit() */
            int named = 0;
            if (hsmkeys_start(ctx, 5000) != HSMKEYS_OK)
                _exit(3);
            for (int k = 0; k < 200 && !named; k++) { /* it names itself */
                named = maint_threads(NULL) == 1;
                if (!named)
                    usleep(10000);
            }
            if (!named)
                _exit(4);
            exit_probe_fd = fd[1];
            exit(0);
        }
        T_TRUE(pid > 0);
        if (pid > 0) {
            close(fd[1]);
            T_TRUE(read(fd[0], got, sizeof got - 1) > 0);
            close(fd[0]);
            waitpid(pid, &st, 0);
        }
        T_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
        T_EQ_STR(got, "0"); /* maintainer threads left when OpenSSL's cleanup would run */
    }

    hsmkeys_close(ctx);
    t_hsm_cleanup(&h);
    return t_done();
}
