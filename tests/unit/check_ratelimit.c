/* SPDX-License-Identifier: MIT */
/* The token bucket of common/ratelimit.c, its rate parser, and vaultd's default authentication limit. */
#include <errno.h>

#include "ratelimit.h"
#include "unit.h"
#include "vaultd/vaultd.h"

#define SEC ((uint64_t) 1000000)

START_TEST(test_bucket_burst_then_rate) {
        struct tokenbucket tb = { 0 };
        const uint64_t t0 = 1000 * SEC, interval = 10 * SEC;

        for (unsigned i = 0; i < 3; i++)
                ck_assert_uint_eq(tokenbucket_take(&tb, t0, interval, 3), 0);
        /* Empty: the next token comes one interval later; a refusal changes nothing. */
        ck_assert_uint_eq(tokenbucket_take(&tb, t0, interval, 3), interval);
        ck_assert_uint_eq(tokenbucket_take(&tb, t0 + 4 * SEC, interval, 3), 6 * SEC);
        ck_assert_uint_eq(tokenbucket_take(&tb, t0 + interval - 1, interval, 3), 1);
        ck_assert_uint_eq(tokenbucket_take(&tb, t0 + interval, interval, 3), 0);
        ck_assert_uint_eq(tokenbucket_take(&tb, t0 + interval, interval, 3), interval);
        /* A long pause fills the bucket, never beyond the burst. */
        for (unsigned i = 0; i < 3; i++)
                ck_assert_uint_eq(tokenbucket_take(&tb, t0 + 1000 * interval, interval, 3), 0);
        ck_assert_uint_gt(tokenbucket_take(&tb, t0 + 1000 * interval, interval, 3), 0);
}
END_TEST

START_TEST(test_bucket_edges) {
        struct tokenbucket tb = { 0 };

        /* interval 0: no limit. */
        for (unsigned i = 0; i < 1000; i++)
                ck_assert_uint_eq(tokenbucket_take(&tb, 5, 0, 1), 0);
        /* A zeroed bucket is full even at time 0, and a clock near its end saturates. */
        ck_assert_uint_eq(tokenbucket_take(&tb, 0, 7, 2), 0);
        ck_assert_uint_eq(tokenbucket_take(&tb, 0, 7, 2), 0);
        ck_assert_uint_eq(tokenbucket_take(&tb, 0, 7, 2), 7);
        tb = (struct tokenbucket) { 0 };
        ck_assert_uint_eq(tokenbucket_take(&tb, UINT64_MAX - 3, 2, 1), 0);
        ck_assert_uint_gt(tokenbucket_take(&tb, UINT64_MAX - 3, 2, 1), 0);
        tb = (struct tokenbucket) { 0 };
        ck_assert_uint_eq(tokenbucket_take(&tb, 1, UINT64_MAX / 2, 100000), 0);
}
END_TEST

/* Under a steady flood, a bucket lets through exactly burst + elapsed / interval events. */
START_TEST(test_bucket_flood) {
        struct tokenbucket tb = { 0 };
        const uint64_t interval = 3 * SEC + 7;
        uint64_t passed = 0, t;

        for (t = 0; t <= 3600 * SEC; t += SEC / 10)
                passed += tokenbucket_take(&tb, t, interval, 5) == 0;
        ck_assert_uint_eq(passed, 5 + (t - SEC / 10) / interval);
}
END_TEST

START_TEST(test_parse_rate) {
        static const struct {
                const char *text;
                int ret;
                uint64_t interval;
        } cases[] = {
                { "0",          0, 0 },
                { "0/h",        0, 0 },
                { "1/s",        0, SEC },
                { "6/h",        0, 600 * SEC },
                { "60/h",       0, 60 * SEC },
                { "1/min",      0, 60 * SEC },
                { "3/s",        0, 333334 },                    /* rounded up: never faster */
                { "1/d",        0, 86400 * SEC },
                { "1000000/s",  0, 1 },
                { "1000001/s",  -EINVAL, 0 },
                { "6",          -EINVAL, 0 },
                { "6/",         -EINVAL, 0 },
                { "/h",         -EINVAL, 0 },
                { "6/hour",     -EINVAL, 0 },
                { "6/m",        -EINVAL, 0 },
                { "-6/h",       -EINVAL, 0 },
                { " 6/h",       -EINVAL, 0 },
                { "6/h ",       -EINVAL, 0 },
                { "6/h/h",      -EINVAL, 0 },
                { "99999999999999999999/h", -EINVAL, 0 },
                { "",           -EINVAL, 0 },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                uint64_t interval = 12345;
                int r = ratelimit_parse_rate(cases[i].text, &interval);

                ck_assert_msg(r == cases[i].ret, "'%s': %d", cases[i].text, r);
                ck_assert_msg(interval == (r == 0 ? cases[i].interval : 12345), "'%s': interval %" PRIu64,
                              cases[i].text, interval);
        }
}
END_TEST

/*
 * vaultd's default (vaultd.h): 10 authentications at once, then one per 10 minutes, so that a
 * client authenticating flat out writes the TPM's NV counter at most 10 + 6 per hour: 52 606
 * times in the first year, the figure the NV endurance budget of docs/vault-file.md §9 uses.
 */
START_TEST(test_vaultd_default) {
        struct tokenbucket tb = { 0 };
        uint64_t interval = 0, passed = 0, year = (uint64_t) 36525 * 24 * 3600 * SEC / 100;

        ck_assert_int_eq(ratelimit_parse_rate(VAULTD_DEFAULT_AUTH_RATE, &interval), 0);
        ck_assert_uint_eq(interval, 600 * SEC);
        ck_assert_uint_eq(VAULTD_DEFAULT_AUTH_BURST, 10);
        for (unsigned i = 0; i < 10; i++)
                ck_assert_uint_eq(tokenbucket_take(&tb, 5 * SEC, interval, VAULTD_DEFAULT_AUTH_BURST), 0);
        ck_assert_uint_eq(tokenbucket_take(&tb, 5 * SEC, interval, VAULTD_DEFAULT_AUTH_BURST), 600 * SEC);

        /* One attempt a second for a year. */
        tb = (struct tokenbucket) { 0 };
        for (uint64_t t = 0; t < year; t += SEC)
                passed += tokenbucket_take(&tb, t, interval, VAULTD_DEFAULT_AUTH_BURST) == 0;
        ck_assert_uint_le(passed, 10 + 52596 + 1);
        ck_assert_uint_ge(passed, 52596);
}
END_TEST

static Suite *ratelimit_suite(void) {
        Suite *s = suite_create("ratelimit");
        TCase *tc = tcase_create("ratelimit");

        tcase_add_test(tc, test_bucket_burst_then_rate);
        tcase_add_test(tc, test_bucket_edges);
        tcase_add_test(tc, test_bucket_flood);
        tcase_add_test(tc, test_parse_rate);
        tcase_add_test(tc, test_vaultd_default);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ratelimit_suite());
}
