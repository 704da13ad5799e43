/*
 * fork_test.c - a server that opens its context and then forks workers
 * (nginx, Apache): the child re-initialises PKCS#11 by itself, keeps
 * serving from the parent's cached keys, and its own maintainer derives new
 * epochs.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys_ssl.h>
#include "test.h"
#include "softhsm.h"
#include "tls.h"

static int64_t clock_now = 1700000000;

int main(void)
{
    t_hsm h;
    hsmkeys_ctx *a, *b;
    SSL_CTX *sa, *sb, *c;
    t_hs h1;
    pid_t pid;
    int status = -1;

    if (t_fleet_setup(&h) != 0)
        return 1;
    a = t_open(&h, "S1", "www.example.com", "60", "120", &clock_now);
    b = t_open(&h, "S2", "www.example.com", "60", "120", &clock_now);
    if (a == NULL || b == NULL)
        return 1;
    sa = t_server_ctx(TLS1_3_VERSION, "EC");
    sb = t_server_ctx(TLS1_3_VERSION, "EC");
    c = t_client_ctx(TLS1_3_VERSION);
    hsmkeys_ssl_attach(sa, a);
    hsmkeys_ssl_attach(sb, b);
    if (t_handshake(c, sa, NULL, &h1) != 0)
        return 1;

    if (T_UNDER_TSAN)
        t_skip("a forked child serves, then derives", "a maintainer started in a fork child (TSan)");
    else T_CASE("a forked child serves from cached keys, then derives new epochs itself") {
        fflush(stdout);
        t_quiesce(a, b);
        pid = fork();
        if (pid == 0) {
            /* child: exit code says what failed */
            hsmkeys_stats s0, s1;
            t_hs h2, h3;
            hsmkeys_get_stats(b, &s0);
            if (t_handshake(c, sb, h1.session, &h2) != 0 || !h2.resumed)
                _exit(10);
            hsmkeys_get_stats(b, &s1);
            if (s1.token_calls != s0.token_calls)
                _exit(11); /* cached keys: no token call needed */
            __atomic_add_fetch(&clock_now, 5 * 60, __ATOMIC_RELAXED); /* five epochs later: all new keys */
            /* the child's own maintainers (the injected clock jumped: let
             * them finish a cycle, as real time would) */
            if (hsmkeys_refresh(a) != HSMKEYS_OK || hsmkeys_refresh(b) != HSMKEYS_OK)
                _exit(15);
            if (t_handshake(c, sb, NULL, &h3) != 0 || h3.resumed || !h3.has_ticket)
                _exit(12);
            hsmkeys_get_stats(b, &s1);
            if (s1.token_derivations <= s0.token_derivations || s1.token_errors != 0)
                _exit(13);
            t_hs_clear(&h2);
            if (t_handshake(c, sa, h3.session, &h2) != 0 || !h2.resumed)
                _exit(14); /* the child's ticket resumes on the other server */
            _exit(0);
        }
        T_TRUE(pid > 0);
        T_EQ_INT(waitpid(pid, &status, 0), pid);
        T_TRUE(WIFEXITED(status));
        T_EQ_INT(WEXITSTATUS(status), 0);
    }
    T_CASE("the parent is unaffected by its child's re-initialisation") {
        t_hs h4;
        __atomic_add_fetch(&clock_now, 10 * 60, __ATOMIC_RELAXED);
        T_RC(hsmkeys_refresh(a), HSMKEYS_OK);
        T_EQ_INT(t_handshake(c, sa, NULL, &h4), 0);
        T_TRUE(h4.has_ticket);
        t_hs_clear(&h4);
    }
    t_hs_clear(&h1);
    SSL_CTX_free(sa); SSL_CTX_free(sb); SSL_CTX_free(c);
    hsmkeys_close(a);
    hsmkeys_close(b);
    t_hsm_cleanup(&h);
    return t_done();
}
