/* schedule_test.c - hsmkeys/src/schedule.c: epochs, window, active generation. */
#include "test.h"
#include "schedule.h"

int main(void)
{
    hk_generation g[3] = { { 1, 0, { 0 } }, { 2, 7200, { 0 } }, { 3, 100000, { 0 } } };

    T_CASE("epoch = floor(t / P); negative clocks count as 0") {
        T_EQ_INT(hk_epoch_of(0, 3600), 0);
        T_EQ_INT(hk_epoch_of(3599, 3600), 0);
        T_EQ_INT(hk_epoch_of(3600, 3600), 1);
        T_EQ_INT(hk_epoch_of(1700000000, 3600), 472222);
        T_EQ_INT(hk_epoch_of(-5, 3600), 0);
    }
    T_CASE("past window = ceil(lifetime / epoch)") {
        T_EQ_INT(hk_window_past(7200, 3600), 2);
        T_EQ_INT(hk_window_past(7201, 3600), 3);
        T_EQ_INT(hk_window_past(1, 3600), 1);
        T_EQ_INT(hk_window_past(604800, 3600), 168);
    }
    T_CASE("window is [e - past, e + 1], clamped at 0") {
        T_TRUE(hk_window_contains(10, 2, 8));
        T_TRUE(hk_window_contains(10, 2, 10));
        T_TRUE(hk_window_contains(10, 2, 11));
        T_TRUE(!hk_window_contains(10, 2, 7));
        T_TRUE(!hk_window_contains(10, 2, 12));
        T_TRUE(hk_window_contains(1, 5, 0));
        T_EQ_INT(hk_window_low(1, 5), 0);
    }
    T_CASE("active generation: latest activation at or before the epoch's start") {
        T_EQ_INT(hk_active_generation(g, 3, 0, 3600), 0);
        T_EQ_INT(hk_active_generation(g, 3, 1, 3600), 0);
        T_EQ_INT(hk_active_generation(g, 3, 2, 3600), 1);   /* starts at 7200 */
        T_EQ_INT(hk_active_generation(g, 3, 27, 3600), 1);  /* 97200 < 100000 */
        T_EQ_INT(hk_active_generation(g, 3, 28, 3600), 2);  /* 100800 */
        T_EQ_INT(hk_active_generation(g + 1, 2, 0, 3600), 0); /* none active yet: earliest */
    }
    return t_done();
}
