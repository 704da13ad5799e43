/* schedule.c - epoch arithmetic (see schedule.h): the one place for the
 * rules of epochs, the window, active generations and when a generation may
 * be retired; the servers and hsmkeys-tool both use it. */
#include "schedule.h"

uint64_t hk_epoch_of(int64_t t, int64_t p)
{
    return t <= 0 ? 0 : (uint64_t)(t / p);
}

unsigned hk_window_past(int64_t l, int64_t p)
{
    return (unsigned)((l + p - 1) / p);
}

uint64_t hk_window_low(uint64_t e_now, unsigned past)
{
    return e_now > past ? e_now - past : 0;
}

int hk_window_contains(uint64_t e_now, unsigned past, uint64_t e)
{
    return e >= hk_window_low(e_now, past) && e <= e_now + 1;
}

size_t hk_active_generation(const hk_generation *g, size_t n, uint64_t epoch, int64_t p)
{
    int64_t start = (int64_t)(epoch * (uint64_t)p);
    size_t i, active = 0;
    for (i = 0; i < n; i++)
        if (g[i].activation <= start)
            active = i;
    return active;
}

/* First epoch whose start is at or after t. */
static uint64_t epoch_ceil(int64_t t, int64_t p)
{
    return t <= 0 ? 0 : (uint64_t)((t + p - 1) / p);
}

int hk_active_epochs(const hk_generation *g, size_t n, size_t i, int64_t p,
                     uint64_t *first, uint64_t *last)
{
    uint64_t start = i == 0 ? 0 : epoch_ceil(g[i].activation, p);
    uint64_t end = UINT64_MAX; /* first epoch of the next generation */
    if (i + 1 < n)
        end = epoch_ceil(g[i + 1].activation, p);
    if (end <= start)
        return 0;
    *first = start;
    *last = end - 1;
    return 1;
}

int hk_may_encrypt(const hk_generation *g, size_t n, size_t i, uint64_t x, unsigned past,
                   int64_t p)
{
    uint64_t first, last, lo = x > past ? x - past : 0;
    if (i >= n || !hk_active_epochs(g, n, i, p, &first, &last))
        return 0;
    return first <= x + 1 && last >= lo;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t hk_retire_time(int64_t successor_activation, int64_t l, int64_t p, int64_t *last_epoch)
{
    int64_t last = floor_div(successor_activation, p);
    if (last_epoch)
        *last_epoch = last;
    return (last + (int64_t)hk_window_past(l, p) + 2) * p;
}

int hk_generation_unused(int64_t activation, int64_t now, int64_t p)
{
    return activation > now + p;
}
