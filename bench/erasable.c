/*
 * erasable.c - item 9: the cost per epoch of the forward-erasable mode next
 * to the static mode, on SoftHSM2: token calls and wall time of
 * hsmkeys_refresh right after the clock moved one epoch on (the maintainer
 * cycle of an epoch boundary: re-read, advance the chain (list, one step,
 * one erasure), derive the new look-ahead epoch), and the catch-up of a
 * token left 100 epochs behind (per epoch stepped).  Default schedule:
 * epoch 1h, lifetime 2h (window [e-2, e+1], states kept for [e-3, e+1]).
 */
#include <stdio.h>
#include <string.h>
#include "bench.h"

#define B_FE_CATCHUP 100

static int per_epoch(hsmkeys_ctx *hk, int n, double *us, double *calls)
{
    int i;
    for (i = 0; i < n; i++) {
        uint64_t c0 = b_token_calls(hk);
        int64_t t0;
        b_clock_fixed += 3600;
        t0 = b_mono_ns();
        if (hsmkeys_refresh(hk) != HSMKEYS_OK) {
            fprintf(stderr, "hsmkeys-bench: refresh: %s\n", hsmkeys_last_error());
            return -1;
        }
        us[i] = (double)(b_mono_ns() - t0) / 1000.0;
        calls[i] = (double)(b_token_calls(hk) - c0);
    }
    return 0;
}

int bench_erasable(int runs)
{
    t_hsm h;
    char uri[700];
    unsigned char st[32];
    double us[256], calls[256], t_catch, c_catch;
    hsmkeys_ctx *fe, *sm;
    uint64_t c0;
    int64_t t0;
    int n = runs * 10 > 256 ? 256 : runs * 10;

    b_clock_follow = 0;
    b_clock_fixed = 1700000000 / 3600 * 3600 + 1800; /* mid-epoch */
    t_state_from_seed("fleet", st);
    if (t_fleet_setup(&h) != 0 ||
        t_chain_import(T_SOFTHSM_MODULE, "S1", T_USER_PIN, st, 1,
                       (uint64_t)(b_clock_fixed / 3600)) != 0)
        return -1;
    t_uri(uri, sizeof uri, "S1", h.pin_file);
    fe = b_open_uri_fe(uri, "bench.example", NULL, NULL, 1);
    sm = b_open(&h, "S2", NULL, NULL);
    if (fe == NULL || sm == NULL)
        return -1;
    if (hsmkeys_refresh(fe) != HSMKEYS_OK || hsmkeys_refresh(sm) != HSMKEYS_OK)
        return -1;

    if (per_epoch(sm, n, us, calls) != 0)
        return -1;
    b_row("9 forward-erasable", "static mode: token calls per epoch change (refresh)", calls, n, "calls");
    b_row("9 forward-erasable", "static mode: hsmkeys_refresh across an epoch change", us, n, "us wall");
    if (per_epoch(fe, n, us, calls) != 0)
        return -1;
    b_row("9 forward-erasable", "forward-erasable: token calls per epoch change (refresh)", calls, n, "calls");
    b_row("9 forward-erasable", "forward-erasable: hsmkeys_refresh across an epoch change", us, n, "us wall");

    /* A token left 100 epochs behind: one refresh steps it to the window. */
    c0 = b_token_calls(fe);
    b_clock_fixed += (int64_t)B_FE_CATCHUP * 3600;
    t0 = b_mono_ns();
    if (hsmkeys_refresh(fe) != HSMKEYS_OK)
        return -1;
    t_catch = (double)(b_mono_ns() - t0) / 1000.0 / B_FE_CATCHUP;
    c_catch = (double)(b_token_calls(fe) - c0) / B_FE_CATCHUP;
    b_row1("9 forward-erasable", "forward-erasable: catch-up of 100 epochs, token calls per epoch", c_catch, "calls");
    b_row1("9 forward-erasable", "forward-erasable: catch-up of 100 epochs, time per epoch", t_catch, "us wall");

    hsmkeys_close(fe);
    hsmkeys_close(sm);
    t_hsm_cleanup(&h);
    return 0;
}
