/* metrics_test.c - hsmkeys/src/metrics.c: the Prometheus rendering of
 * snapshots, their sum over processes, the histogram buckets; and
 * metrics_ctx.c: a real context's snapshot (SoftHSM2), versioned by size.
 * With an
 * argument, prints a rendering of two sample snapshots for
 * `promtool check metrics` (tests/prometheus/test_rules.sh). */
#include "test.h"
#include "softhsm.h"
#include <hsmkeys/hsmkeys.h>
#include <stddef.h>
#include <stdlib.h>

static void context_cases(void)
{
    static t_hsm h;
    hsmkeys_config *c = NULL;
    hsmkeys_ctx *ctx = NULL;
    hsmkeys_metrics m, big[2];
    unsigned char name[16], aes[32], hmac[32];
    char uri[800], tag[19];
    uint64_t in_buckets = 0;
    unsigned i;
    int renew = 0;

    if (t_fleet_setup(&h) != 0) {
        t_skip("a context's snapshot", "SoftHSM2 set-up failed");
        return;
    }
    t_uri(uri, sizeof uri, "S1", h.pin_file);
    T_CASE("a context's snapshot: counters, histogram, tag of the key names, domain") {
        T_RC(hsmkeys_config_new(&c), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(c, "uri", uri), HSMKEYS_OK);
        T_RC(hsmkeys_config_set(c, "domain", "metrics.example"), HSMKEYS_OK);
        T_RC(hsmkeys_open(c, &ctx), HSMKEYS_OK);
        T_RC(hsmkeys_refresh(ctx), HSMKEYS_OK);
        T_RC(hsmkeys_encrypt_key(ctx, name, aes, hmac), HSMKEYS_OK);
        T_RC(hsmkeys_decrypt_key(ctx, name, aes, hmac, &renew), HSMKEYS_OK);
        name[3] ^= 0x55; /* another tag: refused as foreign */
        T_TRUE(hsmkeys_decrypt_key(ctx, name, aes, hmac, &renew) != HSMKEYS_OK);
        name[3] ^= 0x55;
        T_RC(hsmkeys_get_metrics(ctx, &m, sizeof m), HSMKEYS_OK);
        T_EQ_INT(m.tickets_issued, 1);
        T_EQ_INT(m.tickets_resumed, 1);
        T_EQ_INT(m.refused_foreign, 1);
        T_TRUE(m.token_derivations >= 2);
        for (i = 0; i < HSMKEYS_METRICS_BUCKETS; i++)
            in_buckets += m.derivation_buckets[i];
        T_EQ_INT(in_buckets, m.token_derivations);
        T_TRUE(m.derivation_nanoseconds > 0);
        T_EQ_INT(m.token_up, 1);
        T_EQ_INT(m.epoch, hsmkeys_current_epoch(ctx));
        T_EQ_INT(m.epoch_seconds, 3600);
        T_TRUE(m.encrypt_key_age_seconds >= 0 && m.encrypt_key_age_seconds < 3600);
        T_EQ_INT(m.generation, 1);
        T_EQ_MEM(m.tag, name + 1, HSMKEYS_TAG_LEN); /* name = 0x01 || tag || epoch */
        T_EQ_STR(m.domain, "metrics.example");
        t_hex(tag, sizeof tag, m.tag, HSMKEYS_TAG_LEN);
    }
    T_CASE("versioned by size: a smaller caller gets its prefix, a larger one zeros after") {
        hsmkeys_metrics small;
        memset(&small, 0xa5, sizeof small);
        T_RC(hsmkeys_get_metrics(ctx, &small, offsetof(hsmkeys_metrics, refused_foreign)), HSMKEYS_OK);
        T_EQ_INT(small.tickets_issued, 1);
        T_EQ_INT(small.refused_foreign, 0xa5a5a5a5a5a5a5a5ull); /* not written */
        memset(big, 0xa5, sizeof big);
        T_RC(hsmkeys_get_metrics(ctx, big, sizeof big), HSMKEYS_OK);
        T_EQ_INT(big[0].tickets_resumed, 1);
        T_EQ_INT(((unsigned char *)&big[1])[0], 0);
        T_EQ_INT(((unsigned char *)big)[sizeof big - 1], 0);
        T_RC(hsmkeys_get_metrics(ctx, &small, 4), HSMKEYS_E_INVALID);
        T_CONTAINS(hsmkeys_last_error(), "sizeof(hsmkeys_metrics)");
    }
    hsmkeys_close(ctx);
    hsmkeys_config_free(c);
    t_hsm_cleanup(&h);
}

static hsmkeys_metrics sample(const char *domain, uint64_t base)
{
    hsmkeys_metrics m;
    memset(&m, 0, sizeof m);
    m.tickets_issued = base + 1;
    m.tickets_resumed = base + 2;
    m.tickets_renewed = base + 3;
    m.refused_foreign = base + 4;
    m.refused_window = base + 5;
    m.refused_unavailable = base + 6;
    m.token_derivations = base + 7;
    m.token_calls = base + 8;
    m.token_errors = base + 9;
    m.derivation_buckets[0] = 2;
    m.derivation_buckets[3] = 3;
    m.derivation_buckets[HSMKEYS_METRICS_BUCKETS - 1] = 1;
    m.derivation_nanoseconds = 1500000000ull;
    m.epoch = 498936;
    m.epoch_seconds = 3600;
    m.encrypt_key_age_seconds = 1200;
    m.token_up = 1;
    m.generation = 2;
    memcpy(m.tag, "\x01\x23\x45\x67\x89\xab\xcd\xef\xff", HSMKEYS_TAG_LEN);
    snprintf(m.domain, sizeof m.domain, "%s", domain);
    return m;
}

int main(int argc, char **argv)
{
    hsmkeys_metrics m[2] = { sample("www.example.com", 0), sample("api \"x\"\\\n", 100) };
    static char buf[16384];
    size_t n;

    if (argc > 1 && strcmp(argv[1], "render") == 0) {
        n = hsmkeys_metrics_render(m, 2, buf, sizeof buf);
        fwrite(buf, 1, n, stdout);
        return n < sizeof buf ? 0 : 1;
    }
    T_CASE("counters and gauges carry the domain") {
        n = hsmkeys_metrics_render(m, 1, buf, sizeof buf);
        T_TRUE(n > 0 && n < sizeof buf);
        T_CONTAINS(buf, "# TYPE hsmkeys_tickets_issued_total counter\nhsmkeys_tickets_issued_total{domain=\"www.example.com\"} 1\n");
        T_CONTAINS(buf, "hsmkeys_tickets_resumed_total{domain=\"www.example.com\"} 2\n");
        T_CONTAINS(buf, "hsmkeys_tickets_renewed_total{domain=\"www.example.com\"} 3\n");
        T_CONTAINS(buf, "hsmkeys_tickets_refused_total{domain=\"www.example.com\",reason=\"foreign\"} 4\n");
        T_CONTAINS(buf, "hsmkeys_tickets_refused_total{domain=\"www.example.com\",reason=\"window\"} 5\n");
        T_CONTAINS(buf, "hsmkeys_tickets_refused_total{domain=\"www.example.com\",reason=\"unavailable\"} 6\n");
        T_CONTAINS(buf, "hsmkeys_token_derivations_total{domain=\"www.example.com\"} 7\n");
        T_CONTAINS(buf, "hsmkeys_token_calls_total{domain=\"www.example.com\"} 8\n");
        T_CONTAINS(buf, "hsmkeys_token_errors_total{domain=\"www.example.com\"} 9\n");
        T_CONTAINS(buf, "# TYPE hsmkeys_token_up gauge\nhsmkeys_token_up{domain=\"www.example.com\"} 1\n");
        T_CONTAINS(buf, "hsmkeys_epoch{domain=\"www.example.com\"} 498936\n");
        T_CONTAINS(buf, "hsmkeys_epoch_length_seconds{domain=\"www.example.com\"} 3600\n");
        T_CONTAINS(buf, "hsmkeys_encrypt_key_age_seconds{domain=\"www.example.com\"} 1200\n");
        T_CONTAINS(buf, "hsmkeys_info{domain=\"www.example.com\",generation=\"2\",tag=\"0123456789abcdefff\"} 1\n");
    }
    T_CASE("histogram buckets are cumulative, +Inf = count, sum in seconds") {
        hsmkeys_metrics_render(m, 1, buf, sizeof buf);
        T_CONTAINS(buf, "# TYPE hsmkeys_derivation_duration_seconds histogram\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_bucket{domain=\"www.example.com\",le=\"0.0001\"} 2\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_bucket{domain=\"www.example.com\",le=\"0.0005\"} 2\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_bucket{domain=\"www.example.com\",le=\"0.001\"} 5\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_bucket{domain=\"www.example.com\",le=\"10\"} 5\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_bucket{domain=\"www.example.com\",le=\"+Inf\"} 6\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_sum{domain=\"www.example.com\"} 1.500000000\n");
        T_CONTAINS(buf, "hsmkeys_derivation_duration_seconds_count{domain=\"www.example.com\"} 6\n");
    }
    T_CASE("a domain cannot inject series: \\, \" and newline are escaped") {
        hsmkeys_metrics_render(m + 1, 1, buf, sizeof buf);
        T_CONTAINS(buf, "hsmkeys_tickets_issued_total{domain=\"api \\\"x\\\"\\\\\\n\"} 101\n");
        T_TRUE(strstr(buf, "x\"\\\n") == NULL);
    }
    T_CASE("one HELP/TYPE per family for several snapshots") {
        const char *p;
        int k = 0;
        hsmkeys_metrics_render(m, 2, buf, sizeof buf);
        for (p = buf; (p = strstr(p, "# TYPE hsmkeys_tickets_issued_total ")) != NULL; p++)
            k++;
        T_EQ_INT(k, 1);
        T_CONTAINS(buf, "hsmkeys_tickets_issued_total{domain=\"www.example.com\"} 1\nhsmkeys_tickets_issued_total{domain=\"api");
    }
    T_CASE("a short buffer: cut, NUL-terminated, full length returned") {
        char small[100];
        size_t full = hsmkeys_metrics_render(m, 2, buf, sizeof buf);
        n = hsmkeys_metrics_render(m, 2, small, sizeof small);
        T_EQ_INT(n, full);
        T_EQ_INT(strlen(small), sizeof small - 1);
        T_TRUE(memcmp(small, buf, sizeof small - 1) == 0);
        T_EQ_INT(hsmkeys_metrics_render(m, 2, NULL, 0), full);
    }
    T_CASE("sum over processes: counters add, token_up is the minimum, age the maximum") {
        hsmkeys_metrics sum, w1 = sample("www", 0), w2 = sample("www", 10);
        memset(&sum, 0, sizeof sum);
        w2.token_up = 0;
        w2.encrypt_key_age_seconds = 3700;
        hsmkeys_metrics_add(&sum, &w1);
        hsmkeys_metrics_add(&sum, &w2);
        T_EQ_INT(sum.tickets_issued, 1 + 11);
        T_EQ_INT(sum.refused_unavailable, 6 + 16);
        T_EQ_INT(sum.token_calls, 8 + 18);
        T_EQ_INT(sum.derivation_buckets[3], 6);
        T_EQ_INT(sum.derivation_nanoseconds, 3000000000ull);
        T_EQ_INT(sum.token_up, 0);
        T_EQ_INT(sum.encrypt_key_age_seconds, 3700);
        T_EQ_INT(sum.epoch, 498936);
        T_EQ_INT(sum.generation, 2);
        T_EQ_STR(sum.domain, "www");
    }
    T_CASE("bucket_of: a duration lands in the first bucket whose bound holds it") {
        T_EQ_INT(hsmkeys_metrics_bucket_of(0), 0);
        T_EQ_INT(hsmkeys_metrics_bucket_of(100000), 0);        /* 100 us */
        T_EQ_INT(hsmkeys_metrics_bucket_of(100001), 1);
        T_EQ_INT(hsmkeys_metrics_bucket_of(1000000), 3);       /* 1 ms */
        T_EQ_INT(hsmkeys_metrics_bucket_of(10000000000ull), HSMKEYS_METRICS_BUCKETS - 2);
        T_EQ_INT(hsmkeys_metrics_bucket_of(10000000001ull), HSMKEYS_METRICS_BUCKETS - 1);
        T_TRUE(hsmkeys_metrics_bucket_seconds(0) == 0.0001);
    }
    context_cases();
    return t_done();
}
