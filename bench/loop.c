/*
 * loop.c - the client side of the benchmarks: reconnect again and again,
 * always offering the newest session (as the seed's clients do), over the
 * memory-BIO handshakes of tests/lib/tls.c.
 */
#include <string.h>
#include "bench.h"
#include "tls.h"

int b_client_init(b_client *c, int version)
{
    memset(c, 0, sizeof *c);
    c->ctx = t_client_ctx(version);
    return c->ctx != NULL ? 0 : -1;
}

void b_client_free(b_client *c)
{
    SSL_SESSION_free(c->offer);
    SSL_CTX_free(c->ctx);
    memset(c, 0, sizeof *c);
}

int b_connect(b_client *c, SSL_CTX *server, int resume)
{
    t_hs h;
    int rc;
    if (t_handshake(c->ctx, server, resume ? c->offer : NULL, &h) != 0 || !h.ok) {
        t_hs_clear(&h);
        return -1;
    }
    rc = h.resumed ? 1 : 0;
    c->tickets += h.tickets_received;
    if (h.session != NULL) {
        SSL_SESSION_free(c->offer);
        c->offer = h.session;
        h.session = NULL;
    }
    t_hs_clear(&h);
    return rc;
}

int b_resume_batch(b_client *c, SSL_CTX **servers, int nservers, int64_t cpu_ns,
                   uint64_t *handshakes, int64_t *spent_ns)
{
    int64_t t0, t;
    uint64_t n = 0;
    if (c->offer == NULL && b_connect(c, servers[0], 0) < 0)
        return -1;
    t0 = b_cpu_ns();
    do {
        int i;
        for (i = 0; i < 25; i++, n++) {
            if (b_connect(c, servers[n % (uint64_t)nservers], 1) != 1)
                return -1;
        }
        t = b_cpu_ns();
    } while (t - t0 < cpu_ns);
    *handshakes += n;
    *spent_ns += t - t0;
    return 0;
}

double b_resume_rate(b_client *c, SSL_CTX **servers, int nservers, int64_t cpu_ns,
                     double *tickets_per_hs)
{
    uint64_t n = 0, tickets0 = c->tickets;
    int64_t t = 0;
    if (b_resume_batch(c, servers, nservers, cpu_ns, &n, &t) != 0)
        return -1;
    if (tickets_per_hs != NULL)
        *tickets_per_hs = (double)(c->tickets - tickets0) / (double)n;
    return (double)n * 1e9 / (double)t;
}

double b_full_rate(b_client *c, SSL_CTX *server, int64_t cpu_ns)
{
    int64_t t0 = b_cpu_ns(), t;
    uint64_t n = 0;
    do {
        if (b_connect(c, server, 0) != 0)
            return -1;
        n++;
        t = b_cpu_ns();
    } while (t - t0 < cpu_ns);
    return (double)n * 1e9 / (double)(t - t0);
}
