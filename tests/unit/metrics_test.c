/* metrics_test.c - hsmkeys/src/metrics.c: the Prometheus rendering of
 * snapshots, their sum over processes, the histogram buckets.  With an
 * argument, prints a rendering of two sample snapshots for
 * `promtool check metrics` (tests/prometheus/test_rules.sh). */
#include "test.h"
#include <hsmkeys/hsmkeys.h>
#include <stdlib.h>

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
    return t_done();
}
