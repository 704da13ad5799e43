/*
 * schedule.h - epochs, the decrypt window, and which master generation is
 * active when.  Pure arithmetic: no clock, no token (unit-tested directly).
 *
 *   epoch(t)       = floor(t / P)                  (t < 0 counts as 0)
 *   window(e_now)  = [e_now - ceil(L / P), e_now + 1]
 *   active gen(e)  = the generation with the latest activation <= e * P
 *                    (the earliest one if none is active yet)
 *   may encrypt    generation g "may have encrypted" a ticket of epoch x
 *                  when g was active in some epoch of [x - past, x + 1]:
 *                  the only (g, x) pairs a server decrypts or derives, so
 *                  a forged name of any other pair costs no token call and
 *                  the cache needs at most (past + 2) entries per such g.
 */
#ifndef HSMKEYS_SCHEDULE_H
#define HSMKEYS_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include "keysource.h"

uint64_t hk_epoch_of(int64_t unix_seconds, int64_t epoch_seconds);
unsigned hk_window_past(int64_t lifetime_seconds, int64_t epoch_seconds);
int hk_window_contains(uint64_t e_now, unsigned past, uint64_t e);
/* Lowest epoch still in the window. */
uint64_t hk_window_low(uint64_t e_now, unsigned past);
size_t hk_active_generation(const hk_generation *gens, size_t n, uint64_t epoch,
                            int64_t epoch_seconds);
/* Epochs [*first, *last] in which gens[i] (sorted by activation) is the
 * active generation; returns 0 if there is none (a later generation
 * activates at the same epoch boundary). */
int hk_active_epochs(const hk_generation *gens, size_t n, size_t i, int64_t epoch_seconds,
                     uint64_t *first, uint64_t *last);
/* 1 if gens[i] may have encrypted a ticket of epoch x (see above). */
int hk_may_encrypt(const hk_generation *gens, size_t n, size_t i, uint64_t x, unsigned past,
                   int64_t epoch_seconds);

/* Retiring a generation superseded at `successor_activation` (hsmkeys-tool
 * destroy): the last epoch that may encrypt with it is counted as the one
 * holding the successor's activation (floor: one epoch later than
 * hk_active_epochs when the activation falls on a boundary, so never early);
 * its tickets decrypt for hk_window_past(lifetime) more epochs, and one more
 * epoch covers servers whose clocks run behind.  Returns the first unix
 * second at which no server decrypts its tickets; *last_epoch gets that
 * last epoch.  No clock, no token: the CLI passes the servers' P and L. */
int64_t hk_retire_time(int64_t successor_activation, int64_t lifetime_seconds,
                       int64_t epoch_seconds, int64_t *last_epoch);

/* 1 if a generation activating at `activation` cannot have been used by any
 * server at `now`, even one whose clock runs an epoch ahead (cancelling it is
 * safe). */
int hk_generation_unused(int64_t activation, int64_t now, int64_t epoch_seconds);

#endif
