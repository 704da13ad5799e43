/*
 * schedule.h - epochs, the decrypt window, and which master generation is
 * active when.  Pure arithmetic: no clock, no token (unit-tested directly).
 *
 *   epoch(t)       = floor(t / P)                  (t < 0 counts as 0)
 *   window(e_now)  = [e_now - ceil(L / P), e_now + 1]
 *   active gen(e)  = the generation with the latest activation <= e * P
 *                    (the earliest one if none is active yet)
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

#endif
