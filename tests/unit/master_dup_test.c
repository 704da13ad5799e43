/* master_dup_test.c - hsmkeys/src/master.c: hk_master_duplicate finds two
 * keys of one generation wherever they sit in the list (it is sorted by
 * activation, so they need not be neighbours). */
#include "test.h"
#include "master.h"

int main(void)
{
    hk_master m[4];
    uint32_t g = 99;

    T_CASE("distinct generations: none") {
        memset(m, 0, sizeof m);
        m[0].generation = 1; m[1].generation = 2; m[2].generation = 3;
        T_EQ_INT(hk_master_duplicate(m, 3, &g), 0);
        T_EQ_INT(g, 99);
        T_EQ_INT(hk_master_duplicate(m, 0, &g), 0);
    }
    T_CASE("two of generation 1, not neighbours") {
        m[0].generation = 1; m[1].generation = 2; m[2].generation = 1;
        m[0].activation = 0; m[1].activation = 100; m[2].activation = 200;
        T_EQ_INT(hk_master_duplicate(m, 3, &g), 1);
        T_EQ_INT(g, 1);
    }
    T_CASE("two vendor keys read as generation 0") {
        m[0].generation = 0; m[1].generation = 0;
        T_EQ_INT(hk_master_duplicate(m, 2, &g), 1);
        T_EQ_INT(g, 0);
    }
    return t_done();
}
