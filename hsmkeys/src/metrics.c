/*
 * metrics.c - Prometheus text rendering of context snapshots (hsmkeys.h,
 * "metrics"): the one renderer every integration calls, so nginx, Apache,
 * the HAProxy feeder and the demo server expose the same names.
 *
 * Data: hsmkeys_metrics snapshots (counters, gauges, a fixed-bucket
 * histogram of derivation durations) in, text format 0.0.4 out: for each
 * family one HELP and one TYPE line, then one sample per snapshot labelled
 * with its ticket domain.  Buckets are stored per bucket and made
 * cumulative here, as the format wants.
 *
 * Threat: a scrape is read by whoever can reach the endpoint, so only
 * public values are rendered: counts, epochs, the generation number and
 * its public tag (the tag is in every key name clients send).  Label
 * values (the domain comes from configuration) are escaped, so a domain
 * cannot inject series.  The renderer never allocates and never fails: it
 * reports the length it needed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <hsmkeys/hsmkeys.h>

/* Derivations take ~0.1 ms on SoftHSM2 and up to seconds on a busy network
 * HSM: 100 us .. 10 s. */
static const double bucket_bounds[HSMKEYS_METRICS_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 10,
};

double hsmkeys_metrics_bucket_seconds(unsigned i)
{
    return i < HSMKEYS_METRICS_BUCKETS - 1 ? bucket_bounds[i] : 0;
}

unsigned hsmkeys_metrics_bucket_of(uint64_t ns)
{
    unsigned i;
    for (i = 0; i < HSMKEYS_METRICS_BUCKETS - 1; i++)
        if ((double)ns <= bucket_bounds[i] * 1e9)
            return i;
    return HSMKEYS_METRICS_BUCKETS - 1;
}

void hsmkeys_metrics_add(hsmkeys_metrics *sum, const hsmkeys_metrics *m)
{
    unsigned i;
    int first = sum->domain[0] == '\0';

    sum->tickets_issued += m->tickets_issued;
    sum->tickets_resumed += m->tickets_resumed;
    sum->tickets_renewed += m->tickets_renewed;
    sum->refused_foreign += m->refused_foreign;
    sum->refused_window += m->refused_window;
    sum->refused_unavailable += m->refused_unavailable;
    sum->token_derivations += m->token_derivations;
    sum->token_calls += m->token_calls;
    sum->token_errors += m->token_errors;
    for (i = 0; i < HSMKEYS_METRICS_BUCKETS; i++)
        sum->derivation_buckets[i] += m->derivation_buckets[i];
    sum->derivation_nanoseconds += m->derivation_nanoseconds;
    if (first || m->epoch > sum->epoch)
        sum->epoch = m->epoch;
    if (first || m->encrypt_key_age_seconds > sum->encrypt_key_age_seconds)
        sum->encrypt_key_age_seconds = m->encrypt_key_age_seconds;
    sum->token_up = first ? m->token_up : (sum->token_up && m->token_up);
    if (first) {
        sum->epoch_seconds = m->epoch_seconds;
        sum->generation = m->generation;
        memcpy(sum->tag, m->tag, sizeof sum->tag);
        memcpy(sum->domain, m->domain, sizeof sum->domain);
        sum->domain[sizeof sum->domain - 1] = '\0';
    }
}

typedef struct out {
    char *buf;
    size_t len, used;   /* used: bytes the whole text needs so far */
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    int n;
    int room = o->used < o->len;

    va_start(ap, fmt);
    n = vsnprintf(room ? o->buf + o->used : NULL, room ? o->len - o->used : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->used += (size_t)n;
}

/* Label value escaping of the text format: \\, \" and \n. */
static void escape(char *dst, size_t dlen, const char *src)
{
    size_t j = 0;
    for (; *src != '\0' && j + 3 < dlen; src++) {
        if (*src == '\\' || *src == '"') {
            dst[j++] = '\\';
            dst[j++] = *src;
        } else if (*src == '\n') {
            dst[j++] = '\\';
            dst[j++] = 'n';
        } else {
            dst[j++] = *src;
        }
    }
    dst[j] = '\0';
}

typedef enum { U64, I64, U32 } kind;
typedef struct family {
    const char *name, *type, *help;
    size_t off;
    kind k;
} family;

#define F(n, t, h, field, k) { n, t, h, offsetof(hsmkeys_metrics, field), k }

static const family families[] = {
    F("hsmkeys_tickets_issued_total", "counter",
      "Ticket encryptions: keys handed out for new tickets.", tickets_issued, U64),
    F("hsmkeys_tickets_resumed_total", "counter",
      "Tickets decrypted for resumption.", tickets_resumed, U64),
    F("hsmkeys_tickets_renewed_total", "counter",
      "Resumed tickets replaced by one under the current epoch's key.", tickets_renewed, U64),
    F("hsmkeys_token_calls_total", "counter",
      "PKCS#11 calls made after open.", token_calls, U64),
    F("hsmkeys_token_derivations_total", "counter",
      "Epoch keys derived in the token.", token_derivations, U64),
    F("hsmkeys_token_errors_total", "counter",
      "Failed token operations.", token_errors, U64),
    F("hsmkeys_token_up", "gauge",
      "1 when the last token operation worked (every process), else 0.", token_up, U32),
    F("hsmkeys_epoch", "gauge",
      "Current epoch number.", epoch, U64),
    F("hsmkeys_epoch_length_seconds", "gauge",
      "Length of an epoch.", epoch_seconds, I64),
    F("hsmkeys_encrypt_key_age_seconds", "gauge",
      "Time since the start of the epoch whose key encrypts new tickets (-1: none).",
      encrypt_key_age_seconds, I64),
};

static void sample(out *o, const family *f, const hsmkeys_metrics *m, const char *dom)
{
    const char *p = (const char *)m + f->off;
    uint64_t u;
    int64_t i;
    uint32_t w;

    switch (f->k) {
    case U64: memcpy(&u, p, sizeof u); put(o, "%s{domain=\"%s\"} %" PRIu64 "\n", f->name, dom, u); break;
    case I64: memcpy(&i, p, sizeof i); put(o, "%s{domain=\"%s\"} %" PRId64 "\n", f->name, dom, i); break;
    case U32: memcpy(&w, p, sizeof w); put(o, "%s{domain=\"%s\"} %" PRIu32 "\n", f->name, dom, w); break;
    }
}

size_t hsmkeys_metrics_render(const hsmkeys_metrics *m, size_t n, char *buf, size_t len)
{
    out o = { buf, len, 0 };
    char dom[3 * 256];
    size_t f, j;
    unsigned b;

    if (buf != NULL && len > 0)
        buf[0] = '\0';
    else
        o.len = 0;
    for (f = 0; f < sizeof families / sizeof families[0]; f++) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
            families[f].name, families[f].type);
        for (j = 0; j < n; j++) {
            escape(dom, sizeof dom, m[j].domain);
            sample(&o, &families[f], &m[j], dom);
        }
        if (f == 2) { /* after the ticket counters: refusals by reason */
            put(&o, "# HELP hsmkeys_tickets_refused_total Tickets not resumed, by reason: "
                    "foreign (another master or domain), window (outside the decrypt "
                    "window), unavailable (key not cached while the token fails).\n"
                    "# TYPE hsmkeys_tickets_refused_total counter\n");
            for (j = 0; j < n; j++) {
                escape(dom, sizeof dom, m[j].domain);
                put(&o, "hsmkeys_tickets_refused_total{domain=\"%s\",reason=\"foreign\"} %" PRIu64 "\n"
                        "hsmkeys_tickets_refused_total{domain=\"%s\",reason=\"window\"} %" PRIu64 "\n"
                        "hsmkeys_tickets_refused_total{domain=\"%s\",reason=\"unavailable\"} %" PRIu64 "\n",
                    dom, m[j].refused_foreign, dom, m[j].refused_window,
                    dom, m[j].refused_unavailable);
            }
        }
    }
    put(&o, "# HELP hsmkeys_derivation_duration_seconds Time one epoch key derivation took in the token.\n"
            "# TYPE hsmkeys_derivation_duration_seconds histogram\n");
    for (j = 0; j < n; j++) {
        uint64_t cum = 0;
        escape(dom, sizeof dom, m[j].domain);
        for (b = 0; b < HSMKEYS_METRICS_BUCKETS - 1; b++) {
            cum += m[j].derivation_buckets[b];
            put(&o, "hsmkeys_derivation_duration_seconds_bucket{domain=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                dom, bucket_bounds[b], cum);
        }
        cum += m[j].derivation_buckets[HSMKEYS_METRICS_BUCKETS - 1];
        put(&o, "hsmkeys_derivation_duration_seconds_bucket{domain=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
                "hsmkeys_derivation_duration_seconds_sum{domain=\"%s\"} %.9f\n"
                "hsmkeys_derivation_duration_seconds_count{domain=\"%s\"} %" PRIu64 "\n",
            dom, cum, dom, (double)m[j].derivation_nanoseconds / 1e9, dom, cum);
    }
    put(&o, "# HELP hsmkeys_info The active master generation and its public tag (as in key names), per domain.\n"
            "# TYPE hsmkeys_info gauge\n");
    for (j = 0; j < n; j++) {
        char tag[2 * HSMKEYS_TAG_LEN + 1];
        for (b = 0; b < HSMKEYS_TAG_LEN; b++)
            snprintf(tag + 2 * b, 3, "%02x", m[j].tag[b]);
        escape(dom, sizeof dom, m[j].domain);
        put(&o, "hsmkeys_info{domain=\"%s\",generation=\"%" PRIu32 "\",tag=\"%s\"} 1\n",
            dom, m[j].generation, tag);
    }
    return o.used;
}
