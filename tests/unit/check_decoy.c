/* SPDX-License-Identifier: MIT */
/* authserver's decoy shapes (authserver/decoy.c): a keyed hash picks a shape of the fleet. */
#include <errno.h>
#include <stdlib.h>

#include "authserver.h"
#include "unit.h"

static const struct decoy_shape fallback = { .profile = 0, .n = 256, .m = 16, .p = 16, .count = 1 };

static void add(struct decoy_table *t, uint8_t profile, uint16_t n, uint8_t m, uint8_t p, uint64_t count) {
        struct decoy_shape s = { .profile = profile, .n = n, .m = m, .p = p, .count = count, .stand_in = 1 };

        ck_assert_int_eq(decoy_table_add(t, &s), 0);
}

START_TEST(test_add_rejects) {
        static const struct decoy_shape bad[] = {
                { .profile = 3, .n = 256, .m = 16, .p = 16, .count = 1 },
                { .profile = 1, .n = 7, .m = 16, .p = 2, .count = 1 },
                { .profile = 1, .n = 256, .m = 24, .p = 16, .count = 1 },
                { .profile = 1, .n = 8, .m = 16, .p = 5, .count = 1 },
                { .profile = 1, .n = 256, .m = 16, .p = 16, .count = 0 },
        };
        struct decoy_table t;

        decoy_table_init(&t);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_int_eq(decoy_table_add(&t, &bad[i]), -EINVAL);
        ck_assert_uint_eq(t.n_shapes, 0);
        /* An empty table, or no shape of M1's profile: the configured shape. */
        ck_assert_ptr_eq(decoy_shape_pick(&t, SV_PROFILE_HARDENED, 12345, &fallback), &fallback);
        add(&t, SV_PROFILE_PAPER, 64, 32, 4, 3);
        ck_assert_ptr_eq(decoy_shape_pick(&t, SV_PROFILE_HARDENED, 12345, &fallback), &fallback);
        ck_assert_ptr_null(decoy_shape_pick(&t, SV_PROFILE_HARDENED, 12345, NULL));
        decoy_table_free(&t);
}
END_TEST

/* Each hash value maps to one shape; over all residues the shapes come in the fleet's shares. */
START_TEST(test_pick_weighted) {
        struct decoy_table t;
        unsigned seen[3] = { 0 };

        decoy_table_init(&t);
        add(&t, SV_PROFILE_HARDENED, 256, 16, 16, 6);
        add(&t, SV_PROFILE_HARDENED, 4096, 16, 8, 3);
        add(&t, SV_PROFILE_PAPER, 64, 32, 4, 1);
        add(&t, SV_PROFILE_HARDENED, 64, 16, 4, 1);
        ck_assert_uint_eq(t.n_shapes, 4);
        for (uint64_t h = 0; h < 10 * 1000; h++) {
                const struct decoy_shape *s = decoy_shape_pick(&t, SV_PROFILE_HARDENED, h, &fallback);

                ck_assert_ptr_eq(s, decoy_shape_pick(&t, SV_PROFILE_HARDENED, h, &fallback));
                ck_assert_uint_eq(s->profile, SV_PROFILE_HARDENED);
                seen[s == &t.shapes[0] ? 0 : s == &t.shapes[1] ? 1 : 2]++;
                /* The other profile only ever gets its own shape. */
                ck_assert_ptr_eq(decoy_shape_pick(&t, SV_PROFILE_PAPER, h, &fallback), &t.shapes[2]);
        }
        ck_assert_uint_eq(seen[0], 6000);
        ck_assert_uint_eq(seen[1], 3000);
        ck_assert_uint_eq(seen[2], 1000);
        /* Large hash values too: the residue, not the high bits, decides. */
        ck_assert_ptr_eq(decoy_shape_pick(&t, SV_PROFILE_HARDENED, UINT64_MAX, &fallback), &t.shapes[0]);
        ck_assert_ptr_eq(decoy_shape_find(&t, SV_PROFILE_HARDENED, 4096, 16, 8), &t.shapes[1]);
        ck_assert_ptr_null(decoy_shape_find(&t, SV_PROFILE_PAPER, 4096, 16, 8));
        decoy_table_free(&t);
}
END_TEST

static Suite *decoy_suite(void) {
        Suite *s = suite_create("decoy");
        TCase *tc = tcase_create("decoy");

        tcase_add_test(tc, test_add_rejects);
        tcase_add_test(tc, test_pick_weighted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(decoy_suite());
}
